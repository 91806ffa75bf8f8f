"""What reading the transactions from a CSV file costs, against the same rows in Parquet.

    python bench/bench_csv_input.py --customers 1000000 --runs 3

Writes the generator's transactions for ``--customers`` customers (cached in bench/out) as
Parquet and as one UTF-8 CSV file, then builds the two steps that read the input, the staging
view and the parsed table (`stg_clv__transactions`, `int_clv__transactions_checked`), ``--runs``
times each way, in turn: from the Parquet file; from the CSV with ``clv_csv_encoding: auto``
(the default: the build reads the file's bytes once to choose the encoding); from the CSV with
``utf-8`` (no such read). Each way keeps its own target directory, so dbt reuses its saved
parse after a first, untimed run. Prints the file sizes, each way's median and range, and the
CSV's cost over Parquet.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import duckdb
from common import OUT_DIR, dbt_command, generate, measure

STEPS = "stg_clv__transactions int_clv__transactions_checked"


def csv_file(parquet: str) -> str:
    path = Path(parquet).with_suffix(".csv")
    if not path.exists():
        with duckdb.connect() as connection:
            connection.execute(
                f"copy (select * from read_parquet('{parquet}')) to '{path}' (header)")
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    parquet = generate(args.customers)
    csv = csv_file(parquet)
    ways = {
        "Parquet": {"clv_transactions": parquet},
        "CSV, clv_csv_encoding auto": {"clv_transactions": csv, "clv_csv_encoding": "auto"},
        "CSV, clv_csv_encoding utf-8": {"clv_transactions": csv, "clv_csv_encoding": "utf-8"},
    }
    database = OUT_DIR / "bench_csv_input.duckdb"
    times: dict[str, list[float]] = {name: [] for name in ways}
    for run in range(args.runs + 1):
        for index, (name, vars_) in enumerate(ways.items()):
            command = dbt_command("build", "--select", STEPS, "--vars", json.dumps(vars_),
                                  "--target-path", str(OUT_DIR / f"target_csv_input_{index}"))
            measurement = measure(command, env={"CLV_DUCKDB_PATH": str(database)})
            if run:  # the first run of each way saves its parse
                times[name].append(measurement.seconds)
    database.unlink(missing_ok=True)

    sizes = ", ".join(f"{Path(p).suffix[1:]} {Path(p).stat().st_size / 1e6:,.0f} MB"
                      for p in (parquet, csv))
    print(f"{args.customers:,} customers ({sizes}); dbt build --select {STEPS}, "
          f"{args.runs} runs each: median (min to max)")
    parquet_median = statistics.median(times["Parquet"])
    for name, seconds in times.items():
        median = statistics.median(seconds)
        print(f"  {name:<28} {median:6.2f} s ({min(seconds):.2f} to {max(seconds):.2f}), "
              f"{median / parquet_median:.2f}x Parquet's")


if __name__ == "__main__":
    main()
