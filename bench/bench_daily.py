"""Daily re-score benchmark: a full build against the next day's build with the saved model.

    python bench/bench_daily.py --customers 1000000 --runs 3

Generates transactions with the project's generator, runs a full `dbt build` (features for the
as-of date and every training cutoff, training, export, scoring, history) into a fresh DuckDB
file and model directory at as-of 2023-12-30, then re-scores the next day (as-of 2023-12-31)
with `clv_retrain: never`: only that date's features are computed and the saved model scores.
The re-score runs `--runs` times (the history replaces the same rows each time), with the
explanations on (the default) and off (`clv_explanations: false`), and as the README advises a
scheduled job: the same vars every day (the as-of date left to its default, the last
transaction day), so that dbt reuses its saved parse after a first, untimed run, and the unit
tests left out (`--exclude-resource-type unit_test`). Prints wall time, peak
memory and the re-score's share of the full build, and the slowest nodes of each. With
`--backfill-months N`, then times `clv-backfill` over the N monthly as-of dates ending at the
re-score's date, with the same saved model.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from datetime import date
from pathlib import Path

import duckdb
from bench_features import row_count
from common import DBT, OUT_DIR, PROJECT_DIR, Measurement, dbt_command, generate, measure

from clv.pipeline.backfill import months_back

FULL_AS_OF, NEXT_AS_OF = "2023-12-30", "2023-12-31"
TARGET_SHARE = 0.15


def run_dbt(vars_: dict, database, tag: str, *extra: str) -> Measurement:
    command = dbt_command("build", "--vars", json.dumps(vars_), "--target-path",
                          str(OUT_DIR / f"target_{tag}"), "--log-path", str(OUT_DIR / "logs"),
                          *extra)
    return measure(command, env={"CLV_DUCKDB_PATH": str(database)})


def _results(tag: str) -> list[dict]:
    return json.loads((OUT_DIR / f"target_{tag}" / "run_results.json").read_text())["results"]


def slowest_nodes(tag: str, count: int = 6) -> str:
    times = sorted(((r["unique_id"].split(".")[-1], r["execution_time"]) for r in _results(tag)),
                   key=lambda item: -item[1])[:count]
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times)


def node_time_by_kind(tag: str) -> str:
    """Summed node seconds per resource type (model, test, unit_test, ...) and their count."""
    kinds: dict[str, list[float]] = {}
    for result in _results(tag):
        kinds.setdefault(result["unique_id"].split(".")[0], []).append(result["execution_time"])
    return ", ".join(f"{kind} {sum(times):.1f} s ({len(times)})"
                     for kind, times in sorted(kinds.items(), key=lambda item: -sum(item[1])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="re-scores per variant")
    parser.add_argument("--backfill-months", type=int, default=0,
                        help="then time clv-backfill over this many monthly as-of dates")
    args = parser.parse_args()

    path = generate(args.customers)
    database = OUT_DIR / f"bench_daily_{args.customers}.duckdb"
    model_dir = OUT_DIR / f"bench_daily_{args.customers}_onnx"
    database.unlink(missing_ok=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    base = {"clv_transactions": path, "clv_model_dir": str(model_dir),
            "clv_export_path": str(OUT_DIR / "bench_daily_predictions.parquet")}
    full = run_dbt({**base, "clv_as_of_date": FULL_AS_OF}, database, "daily_full")
    daily = {"clv_retrain": "never", "clv_as_of_date": NEXT_AS_OF}
    variants = {
        "re-score, explanations on": [run_dbt({**base, **daily}, database, "daily_on")
                                      for _ in range(args.runs)],
        "re-score, explanations off": [
            run_dbt({**base, **daily, "clv_explanations": False}, database, "daily_off")
            for _ in range(args.runs)],
        # what the README advises a scheduled job: the same vars every day (the as-of date by
        # default, the last transaction day, NEXT_AS_OF here), so dbt reuses its saved parse
        # after the first run, and the unit tests left to CI
        "re-score as a scheduled job": [
            run_dbt({**base, "clv_retrain": "never"}, database, "daily_job",
                    "--exclude-resource-type", "unit_test")
            for _ in range(args.runs + 1)][1:],
    }
    with duckdb.connect(str(database), read_only=True) as connection:
        job_as_of = connection.sql("select max(as_of_date) from clv_predictions").fetchall()[0][0]
    assert str(job_as_of) == NEXT_AS_OF, f"the scheduled job scored {job_as_of}"
    print(f"\n{args.customers:,} customers, {row_count(path):,} transactions; full build at "
          f"{FULL_AS_OF}, re-score at {NEXT_AS_OF} with clv_retrain: never (median of "
          f"{args.runs})\n")
    print("| build | wall s | peak MB | share of the full build |")
    print("|---|---|---|---|")
    print(f"| full build (fresh model) | {full.seconds:.1f} | {full.peak_mb:,.0f} | 100% |")
    for name, runs in variants.items():
        seconds = statistics.median(r.seconds for r in runs)
        peak = statistics.median(r.peak_mb for r in runs)
        share = seconds / full.seconds
        print(f"| {name} | {seconds:.1f} | {peak:,.0f} | {share:.1%} "
              f"({'meets' if share <= TARGET_SHARE else 'misses'} {TARGET_SHARE:.0%}) |")
    for tag in ("daily_full", "daily_on", "daily_off", "daily_job"):
        print(f"\nslowest nodes, {tag}: {slowest_nodes(tag)}")
        print(f"node time by kind, {tag} (the last run; 2 threads): {node_time_by_kind(tag)}")
    if args.backfill_months:
        end = date.fromisoformat(NEXT_AS_OF)
        start = months_back(end, args.backfill_months - 1, end.day)  # the earliest as-of date
        command = [str(Path(DBT).with_name("clv-backfill")), "--start", start.isoformat(),
                   "--end", NEXT_AS_OF, "--every", "month", "--vars", json.dumps(base),
                   "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
        backfill = measure(command, env={"CLV_DUCKDB_PATH": str(database)})
        per_date = backfill.seconds / args.backfill_months
        print(f"\nclv-backfill, {args.backfill_months} monthly as-of dates from {start} to "
              f"{NEXT_AS_OF}: {backfill.seconds:.1f} s ({per_date:.1f} s per date), peak "
              f"{backfill.peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
