"""End-to-end benchmark: `dbt build` from raw transactions to clv_predictions, and scoring memory.

    python bench/bench_end_to_end.py --customers 100000 1000000 --runs 1

For each size: generates transactions with the project's generator, then runs `dbt build`
(every model and test: staging, features, training with a fresh model directory, scoring,
predictions, evaluation tables) into a fresh DuckDB file with clv_as_of_date 2023-12-31, and
reports wall time and peak memory of the dbt process, plus the slowest nodes from dbt's
run_results.json.

Scoring memory: after each build, `dbt run --select int_clv__scores` scores every customer again
with the saved model (streamed in batches); its peak memory should barely depend on the number of
customers. `dbt run --select clv_cutoffs` (a one-row table) is the baseline for what a dbt process
needs by itself. With `--scoring-scale 10`, a copy of the largest database gets its
clv_scoring_examples repeated 10 times under new customer ids (10 million rows from 1 million)
and the scoring step runs on that too, without generating and building ten times the data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess

import duckdb
from bench_features import generate, row_count
from common import OUT_DIR, PYTHON, Measurement, dbt_command, measure

AS_OF = "2023-12-31"
TARGET_SECONDS = 600
TARGET_MB = 8 * 1024


def run_dbt(args: list[str], vars_: dict, database, tag: str) -> Measurement:
    target = OUT_DIR / f"target_{tag}"
    command = dbt_command(*args, "--vars", json.dumps(vars_), "--target-path", str(target),
                          "--log-path", str(OUT_DIR / "logs"))
    return measure(command, env={"CLV_DUCKDB_PATH": str(database)})


def slowest_nodes(tag: str, count: int = 6) -> list[tuple[str, float]]:
    results = json.loads((OUT_DIR / f"target_{tag}" / "run_results.json").read_text())["results"]
    times = [(r["unique_id"].split(".")[-1], r["execution_time"]) for r in results]
    return sorted(times, key=lambda item: -item[1])[:count]


SCALE_SQL = """
    create or replace table clv_scoring_examples as
    select examples.* replace (examples.customer_id || '-' || copies.k as customer_id)
    from clv_scoring_examples as examples
    cross join range({factor}) as copies(k)
    order by customer_id
"""


def scaled_scoring_database(database, factor: int):
    """A copy of ``database`` whose clv_scoring_examples holds every row ``factor`` times
    (customer ids suffixed -0, -1, ...), stored in customer_id order like the original.

    Built in a child process: a process started from this one counts this one's resident
    memory at the moment it starts in its own peak, so the gigabytes of this build must never
    live here.
    """
    target = OUT_DIR / f"{database.stem}_scoring_x{factor}.duckdb"
    target.unlink(missing_ok=True)
    shutil.copyfile(database, target)
    script = ("import duckdb, sys\n"
              "with duckdb.connect(sys.argv[1]) as connection:\n"
              "    connection.execute('set enable_progress_bar = false')\n"
              "    connection.execute(sys.argv[2])\n"
              "    print(connection.sql('select count(*) from clv_scoring_examples')"
              ".fetchall()[0][0])\n")
    result = subprocess.run([PYTHON, "-c", script, str(target), SCALE_SQL.format(factor=factor)],
                            check=True, capture_output=True, text=True)
    return target, int(result.stdout.strip())


def median(values) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=1, help="dbt builds per size")
    parser.add_argument("--scoring-runs", type=int, default=3)
    parser.add_argument("--scoring-scale", type=int, default=0,
                        help="also score the largest size's customers this many times over")
    args = parser.parse_args()

    rows: list[tuple] = []
    for customers in args.customers:
        path = generate(customers)
        database = OUT_DIR / f"bench_end_to_end_{customers}.duckdb"
        model_dir = OUT_DIR / f"bench_end_to_end_{customers}_onnx"
        vars_ = {"clv_transactions": path, "clv_as_of_date": AS_OF,
                 "clv_model_dir": str(model_dir)}
        builds = []
        for _ in range(args.runs):
            database.unlink(missing_ok=True)
            shutil.rmtree(model_dir, ignore_errors=True)
            builds.append(run_dbt(["build"], vars_, database, f"e2e_{customers}"))
        nodes = slowest_nodes(f"e2e_{customers}")
        scoring = [run_dbt(["run", "--select", "int_clv__scores"], vars_, database,
                           f"score_{customers}") for _ in range(args.scoring_runs)]
        baseline = [run_dbt(["run", "--select", "clv_cutoffs"], vars_, database,
                            f"base_{customers}") for _ in range(args.scoring_runs)]
        with duckdb.connect(str(database), read_only=True) as connection:
            predicted = connection.sql("select count(*) from clv_predictions").fetchall()[0][0]
        rows.append((customers, row_count(path), predicted, builds, nodes, scoring, baseline))
    scaled = None
    if args.scoring_scale > 1:
        customers = args.customers[-1]
        vars_ = {"clv_transactions": generate(customers), "clv_as_of_date": AS_OF,
                 "clv_model_dir": str(OUT_DIR / f"bench_end_to_end_{customers}_onnx")}
        database, scored = scaled_scoring_database(
            OUT_DIR / f"bench_end_to_end_{customers}.duckdb", args.scoring_scale)
        runs = [run_dbt(["run", "--select", "int_clv__scores"], vars_, database,
                        f"score_x{args.scoring_scale}") for _ in range(args.scoring_runs)]
        scaled = (scored, runs)
        database.unlink()

    print(f"\ndbt build from raw transactions to clv_predictions, clv_as_of_date {AS_OF}, fresh "
          f"DuckDB file and model directory; median of {args.runs} build(s), "
          f"{args.scoring_runs} scoring runs\n")
    print("| customers | transactions | predictions | build wall s | build peak MB | "
          "scoring step wall s | scoring step peak MB | dbt baseline peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for customers, transactions, predicted, builds, _, scoring, baseline in rows:
        print(f"| {customers:,} | {transactions:,} | {predicted:,} "
              f"| {median([b.seconds for b in builds]):.1f} "
              f"| {median([b.peak_mb for b in builds]):,.0f} "
              f"| {median([s.seconds for s in scoring]):.1f} "
              f"| {median([s.peak_mb for s in scoring]):,.0f} "
              f"| {median([b.peak_mb for b in baseline]):,.0f} |")
    for customers, _, _, _, nodes, _, _ in rows:
        print(f"\nslowest nodes at {customers:,} customers (last build): "
              + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in nodes))
    largest = rows[-1]
    wall = median([b.seconds for b in largest[3]])
    peak = median([b.peak_mb for b in largest[3]])
    print(f"\nat {largest[0]:,} customers: {wall:.0f} s "
          f"({'meets' if wall < TARGET_SECONDS else 'misses'} the {TARGET_SECONDS} s target), "
          f"peak {peak:,.0f} MB ({'meets' if peak < TARGET_MB else 'misses'} the "
          f"{TARGET_MB:,} MB target)")
    if scaled is not None:
        scored, runs = scaled
        print(f"\nscoring step on {scored:,} customers (clv_scoring_examples of the largest size "
              f"repeated {args.scoring_scale} times): {median([r.seconds for r in runs]):.1f} s, "
              f"peak {median([r.peak_mb for r in runs]):,.0f} MB")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        ratio = (median([s.peak_mb for s in large[5]]) / median([s.peak_mb for s in small[5]]))
        print(f"scoring step peak memory at {large[2]:,} vs {small[2]:,} customers: "
              f"{ratio:.2f}x for {large[2] / small[2]:.0f}x the customers")


if __name__ == "__main__":
    main()
