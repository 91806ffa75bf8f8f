"""Feature layer benchmark: every feature, time-window and example table vs lifetimes' summary.

    python bench/bench_features.py --customers 110000 --runs 3

Generates transactions with the project's generator (about 9 rows per customer, 0.5 % bad),
then times, each in its own process and in turn:
  - `dbt run` of all feature tables (staging through clv_training_examples and
    clv_scoring_examples, five cutoffs, every window and the sequences) into a fresh DuckDB file;
  - lifetimes.utils.summary_data_from_transaction_data at one cutoff (four of our columns);
  - a plain DuckDB query of the same four columns.
Prints the median wall time and peak memory of each and the ratios.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess

from common import (
    OUT_DIR,
    PROJECT_DIR,
    PYTHON,
    dbt_command,
    measure,
    median_peak_mb,
    median_seconds,
)

AS_OF = "2023-12-31"
FEATURE_SELECTION = ["+clv_training_examples", "+clv_scoring_examples", "+clv_data_quality"]


def generate(customers: int) -> str:
    path = OUT_DIR / f"transactions_{customers}.parquet"
    if not path.exists():
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([PYTHON, "-m", "clv.generate", "--customers", str(customers),
                        "--no-events", "--out", str(path)], check=True)
    return str(path)


def row_count(path: str) -> int:
    import duckdb

    return duckdb.sql(f"select count(*) from '{path}'").fetchall()[0][0]


def run_peer(kind: str, path: str) -> tuple[float, float, float]:
    """(wall seconds, peak MB, seconds of the summary step itself) of one peer run."""
    command = [PYTHON, str(PROJECT_DIR / "bench" / "btyd_summary_peers.py"), kind, path, AS_OF]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    inner = float(re.search(r"summary_seconds=([0-9.]+)", output).group(1))
    outer = measure(command)
    return outer.seconds, outer.peak_mb, inner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=110_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    path = generate(args.customers)
    rows = row_count(path)
    database = OUT_DIR / "bench_features.duckdb"
    vars_ = {"clv_transactions": path, "clv_as_of_date": AS_OF}
    dbt = dbt_command("run", "--select", *FEATURE_SELECTION, "--vars", json.dumps(vars_),
                      "--target-path", str(OUT_DIR / "target"), "--log-path", str(OUT_DIR / "logs"))

    ours, lifetimes_runs, duckdb_runs = [], [], []
    for _ in range(args.runs):
        database.unlink(missing_ok=True)
        ours.append(measure(dbt, env={"CLV_DUCKDB_PATH": str(database)}))
        lifetimes_runs.append(run_peer("lifetimes", path))
        duckdb_runs.append(run_peer("duckdb", path))

    def med(values):
        values = sorted(values)
        return values[len(values) // 2]

    ours_s, ours_mb = median_seconds(ours), median_peak_mb(ours)
    life_s, life_mb, life_inner = (med([r[i] for r in lifetimes_runs]) for i in range(3))
    duck_s, duck_mb, duck_inner = (med([r[i] for r in duckdb_runs]) for i in range(3))
    print(f"\n{rows:,} transaction rows, {args.customers:,} customers, "
          f"median of {args.runs} runs\n")
    print("| step | wall s (process) | summary step s | peak MB |")
    print("|---|---|---|---|")
    print(f"| dbt run: all feature tables, 5 cutoffs | {ours_s:.1f} | - | {ours_mb:.0f} |")
    print(f"| lifetimes summary, 1 cutoff | {life_s:.1f} | {life_inner:.2f} | {life_mb:.0f} |")
    print(f"| DuckDB query of the 4 BTYD columns, 1 cutoff | {duck_s:.1f} | {duck_inner:.2f} "
          f"| {duck_mb:.0f} |")
    print(f"\nall feature tables / lifetimes summary step: {ours_s / life_inner:.2f}x")
    print(f"lifetimes summary step / DuckDB BTYD query: {life_inner / duck_inner:.1f}x")


if __name__ == "__main__":
    main()
