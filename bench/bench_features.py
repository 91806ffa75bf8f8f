"""Feature layer benchmark: every feature, time-window and example table vs lifetimes' summary.

    python bench/bench_features.py --customers 110000 --runs 3

Generates transactions with the project's generator (about 9 rows per customer, 0.5 % bad),
then times, each in its own process and in turn:
  - `dbt run` of all feature tables (staging through clv_training_examples and
    clv_scoring_examples, every cutoff, window and sequence) into a fresh DuckDB file;
  - lifetimes.utils.summary_data_from_transaction_data at one cutoff (four of our columns);
  - a plain DuckDB query of the same four columns;
  - this project's own SQL for the same four columns at that cutoff, from the raw text and
    from the parsed rows.
Prints the median wall time and peak memory of each and the ratios. For the dbt run it also
prints the summed execution time of the SQL nodes from dbt's run_results.json: the SQL work
without dbt's start-up, parsing and compilation (nodes overlap on dbt's 2 threads, so the sum
can exceed the wall time). The lifetimes and DuckDB peers start their clocks after the text
has been parsed and filtered; our layer's figures include that parsing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

from common import (
    OUT_DIR,
    PROJECT_DIR,
    PYTHON,
    dbt_command,
    generate,
    measure,
    median_peak_mb,
    median_seconds,
)

AS_OF = "2023-12-31"
FEATURE_SELECTION = ["+clv_training_examples", "+clv_scoring_examples", "+clv_data_quality"]


def row_count(path: str) -> int:
    import duckdb

    return duckdb.sql(f"select count(*) from '{path}'").fetchall()[0][0]


def sql_node_seconds(run_results: Path) -> float:
    """Summed execution time of the SQL models in one dbt run (dbt's own timing per node)."""
    results = json.loads(run_results.read_text())["results"]
    return sum(result["execution_time"] for result in results)


def run_peer(kind: str, path: str, *extra: str) -> tuple[float, float, float]:
    """(wall seconds, peak MB, seconds of the summary step itself) of one peer run."""
    command = [PYTHON, str(PROJECT_DIR / "bench" / "btyd_summary_peers.py"), kind, path, AS_OF,
               *extra]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    inner = float(re.search(r"summary_seconds=([0-9.]+)", output).group(1))
    outer = measure(command)
    return outer.seconds, outer.peak_mb, inner


def cutoff_count(database: Path) -> int:
    import duckdb

    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute("select count(*) from int_clv__cutoffs").fetchall()[0][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=110_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    path = generate(args.customers)
    rows = row_count(path)
    database = OUT_DIR / "bench_features.duckdb"
    vars_ = {"clv_transactions": path, "clv_as_of_date": AS_OF}
    target = OUT_DIR / "target"
    dbt = dbt_command("run", "--select", *FEATURE_SELECTION, "--vars", json.dumps(vars_),
                      "--target-path", str(target), "--log-path", str(OUT_DIR / "logs"))
    compiled = target / "compiled" / "clv" / "models"
    customer_days_sql = compiled / "2_intermediate" / "int_clv__customer_days.sql"

    ours, node_seconds, lifetimes_runs, duckdb_runs, project_runs, parsed_runs = (
        [], [], [], [], [], [])
    for _ in range(args.runs):
        database.unlink(missing_ok=True)
        ours.append(measure(dbt, env={"CLV_DUCKDB_PATH": str(database)}))
        node_seconds.append(sql_node_seconds(target / "run_results.json"))
        lifetimes_runs.append(run_peer("lifetimes", path))
        duckdb_runs.append(run_peer("duckdb", path))
        project_runs.append(run_peer("ours", str(database), str(customer_days_sql)))
        parsed_runs.append(run_peer("ours_parsed", str(database), str(customer_days_sql)))

    def med(values):
        values = sorted(values)
        return values[len(values) // 2]

    ours_s, ours_mb = median_seconds(ours), median_peak_mb(ours)
    life_s, life_mb, life_inner = (med([r[i] for r in lifetimes_runs]) for i in range(3))
    duck_s, duck_mb, duck_inner = (med([r[i] for r in duckdb_runs]) for i in range(3))
    proj_s, proj_mb, proj_inner = (med([r[i] for r in project_runs]) for i in range(3))
    pars_s, pars_mb, pars_inner = (med([r[i] for r in parsed_runs]) for i in range(3))
    nodes_s = med(node_seconds)
    cutoffs = cutoff_count(database)
    print(f"\n{rows:,} transaction rows, {args.customers:,} customers, "
          f"median of {args.runs} runs\n")
    print("| step | input | wall s (process) | SQL / summary step s | peak MB |")
    print("|---|---|---|---|---|")
    print(f"| dbt run: all feature tables, {cutoffs} cutoffs | raw text | {ours_s:.1f} "
          f"| {nodes_s:.1f} (sum of dbt node times) | {ours_mb:.0f} |")
    print(f"| our SQL for the 4 BTYD columns, 1 cutoff | raw text | {proj_s:.1f} "
          f"| {proj_inner:.2f} | {proj_mb:.0f} |")
    print(f"| our SQL for the 4 BTYD columns, 1 cutoff | parsed, classified rows | {pars_s:.1f} "
          f"| {pars_inner:.2f} | {pars_mb:.0f} |")
    print(f"| lifetimes summary, 1 cutoff | parsed, filtered purchases | {life_s:.1f} "
          f"| {life_inner:.2f} | {life_mb:.0f} |")
    print(f"| plain DuckDB query of the 4 BTYD columns, 1 cutoff | parsed, filtered purchases "
          f"| {duck_s:.1f} | {duck_inner:.2f} | {duck_mb:.0f} |")
    print("\nThe peers' clocks start after parsing and filtering the text; ours include it.")
    print(f"all feature tables, process wall / lifetimes summary step: {ours_s / life_inner:.2f}x")
    print(f"all feature tables, summed SQL node time / lifetimes summary step: "
          f"{nodes_s / life_inner:.2f}x")
    print(f"lifetimes summary step / our BTYD SQL from raw text: {life_inner / proj_inner:.1f}x")
    print(f"lifetimes summary step / our BTYD SQL from parsed rows (same start as the peers): "
          f"{life_inner / pars_inner:.1f}x")
    print(f"lifetimes summary step / plain DuckDB BTYD query: {life_inner / duck_inner:.1f}x")


if __name__ == "__main__":
    main()
