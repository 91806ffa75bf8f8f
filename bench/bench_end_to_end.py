"""End-to-end benchmark: `dbt build` from raw transactions to clv_predictions, and scoring memory.

    python bench/bench_end_to_end.py --customers 100000 1000000 --runs 1

For each size: generates transactions with the project's generator, then runs `dbt build`
(every model and test: staging, features, training with a fresh model directory, scoring,
predictions, evaluation tables) into a fresh DuckDB file with clv_as_of_date 2023-12-31, and
reports wall time and peak memory of the dbt process, plus the slowest nodes from dbt's
run_results.json.

Scoring memory: after each build, `dbt run --select int_clv__scoring_plan+,+int_clv__scoring_run`
(the scoring steps: plan, scores, scoring run) scores every customer again with the saved model
(streamed in batches); its peak memory should barely depend on the number of
customers. `dbt run --select int_clv__cutoffs` (a table of a few rows) is the baseline for what a
dbt process needs by itself. With `--scoring-memory-limit 1GB`, every scoring step also runs
with DuckDB's memory limit (`CLV_DUCKDB_MEMORY_LIMIT`) at that value: DuckDB keeps the table
blocks a scan has read cached up to its limit (80% of the machine by default), and bounding it
shows how much of a scoring step's growth with the table is that cache.

With `--scoring-scale 10`, a copy of the largest database gets its clv_scoring_examples repeated
10 times under new customer ids (10 million rows from 1 million) and the scoring step runs on
that too, without generating and building ten times the data.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess

import duckdb
from bench_features import row_count
from common import OUT_DIR, PYTHON, Measurement, dbt_command, generate, measure

AS_OF = "2023-12-31"
TARGET_SECONDS = 600
TARGET_MB = 8 * 1024


def run_dbt(args: list[str], vars_: dict, database, tag: str,
            memory_limit: str | None = None) -> Measurement:
    target = OUT_DIR / f"target_{tag}"
    command = dbt_command(*args, "--vars", json.dumps(vars_), "--target-path", str(target),
                          "--log-path", str(OUT_DIR / "logs"))
    env = {"CLV_DUCKDB_PATH": str(database)}
    if memory_limit:
        env["CLV_DUCKDB_MEMORY_LIMIT"] = memory_limit
    return measure(command, env=env)


# The scoring steps of a build: the plan (BTYD fit), the scores, the scoring run.
SCORING_STEPS = "int_clv__scoring_plan+,+int_clv__scoring_run"


def scoring_runs(vars_: dict, database, tag: str, runs: int,
                 memory_limit: str | None) -> tuple[list[Measurement], list[Measurement]]:
    """The scoring step ``runs`` times with DuckDB's default memory limit, and as often with
    ``memory_limit`` (none when it is None)."""
    score = ["run", "--select", SCORING_STEPS]
    default = [run_dbt(score, vars_, database, tag) for _ in range(runs)]
    bounded = [run_dbt(score, vars_, database, tag, memory_limit)
               for _ in range(runs if memory_limit else 0)]
    return default, bounded


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
    parser.add_argument("--scoring-memory-limit", default=None,
                        help="also run each scoring step with this DuckDB memory limit, e.g. 1GB")
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
        scoring = scoring_runs(vars_, database, f"score_{customers}", args.scoring_runs,
                               args.scoring_memory_limit)
        baseline = [run_dbt(["run", "--select", "int_clv__cutoffs"], vars_, database,
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
        scaled = (scored, scoring_runs(vars_, database, f"score_x{args.scoring_scale}",
                                       args.scoring_runs, args.scoring_memory_limit))
        database.unlink()

    print(f"\ndbt build from raw transactions to clv_predictions, clv_as_of_date {AS_OF}, fresh "
          f"DuckDB file and model directory; median of {args.runs} build(s), "
          f"{args.scoring_runs} scoring runs\n")
    print("| customers | transactions | predictions | build wall s | build peak MB |")
    print("|---|---|---|---|---|")
    for customers, transactions, predicted, builds, _, _, _ in rows:
        print(f"| {customers:,} | {transactions:,} | {predicted:,} "
              f"| {median([b.seconds for b in builds]):.1f} "
              f"| {median([b.peak_mb for b in builds]):,.0f} |")
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

    # The scoring step alone, by number of customers scored.
    steps = [(predicted, scoring, median([b.peak_mb for b in baseline]))
             for _, _, predicted, _, _, scoring, baseline in rows]
    if scaled is not None:
        steps.append((scaled[0], scaled[1], None))
    limit = args.scoring_memory_limit
    note = "" if scaled is None else (f"; the last row is the largest size repeated "
                                      f"{args.scoring_scale} times")
    print(f"\nscoring step (`dbt run --select {SCORING_STEPS}`), median of {args.scoring_runs} "
          f"runs{note}\n")
    print("| customers scored | wall s | customers/s | peak MB | "
          + (f"peak MB, DuckDB limit {limit} | " if limit else "") + "dbt baseline peak MB |")
    print("|---|---|---|---|" + ("---|" if limit else "") + "---|")
    for scored, (default, bounded), baseline_mb in steps:
        seconds = median([r.seconds for r in default])
        print(f"| {scored:,} | {seconds:.1f} | {scored / seconds:,.0f} "
              f"| {median([r.peak_mb for r in default]):,.0f} "
              + (f"| {median([r.peak_mb for r in bounded]):,.0f} " if limit else "")
              + f"| {'' if baseline_mb is None else f'{baseline_mb:,.0f}'} |")
    if len(steps) > 1:
        (small, (small_runs, small_bounded), _), (large, (large_runs, large_bounded), _) = (
            steps[0], steps[-1])
        ratio = (median([r.peak_mb for r in large_runs]) / median([r.peak_mb for r in small_runs]))
        line = (f"\nscoring step peak memory at {large:,} vs {small:,} customers: {ratio:.2f}x "
                f"for {large / small:.0f}x the customers")
        if limit:
            bounded = (median([r.peak_mb for r in large_bounded])
                       / median([r.peak_mb for r in small_bounded]))
            line += f"; {bounded:.2f}x with DuckDB's memory limit at {limit}"
        print(line)


if __name__ == "__main__":
    main()
