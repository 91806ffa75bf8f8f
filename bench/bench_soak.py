"""Months of daily runs: consecutive daily as-of dates on one warehouse.

    python bench/bench_soak.py --days 60 --customers 300 [--cli]

Generates transactions with the project's generator, then builds one as-of date per day into
one DuckDB file and model directory: the saved model scores (`clv_retrain: never`) and every
seventh day retrains (`auto`). Each day builds only what a daily run needs (the history and
the registry; the seeds on the first day only). By default the days run in this process on one
parse of the project (dbt reads the vars when it compiles); `--cli` starts one `dbt build`
process per day as a scheduler would, which adds the same parse (about 10 s) to every day.
Prints each day's wall time, database size and model directory, the wall-time trend of the
re-scores, and the checks of tests/test_soak.py over the whole run: history rows missing or
twice, models beyond the history and `clv_keep_models`, scoring runs per day, and the database
against a compacted copy of itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from datetime import date, timedelta

import duckdb
import numpy as np
from common import OUT_DIR, PROJECT_DIR, dbt_command, measure

from clv.synthetic import GeneratorSettings, generate

SELECT = ["--select", "+clv_predictions_history", "+clv_model_registry",
          "--exclude-resource-type", "test", "unit_test"]
FAST = {"clv_horizon_days": 60, "clv_training_cutoffs": 3, "clv_ensemble_size": 1,
        "clv_explanations": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--keep-models", type=int, default=2)
    parser.add_argument("--first-day", default="2023-09-01")
    parser.add_argument("--cli", action="store_true", help="one dbt build process per day")
    args = parser.parse_args()

    workdir = OUT_DIR / "soak"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    first = date.fromisoformat(args.first_day)
    data = generate(GeneratorSettings(n_customers=args.customers, start_date=date(2022, 1, 1),
                                      end_date=first + timedelta(days=args.days), seed=11,
                                      with_events=False, bad_rows=False)).transactions
    data.to_csv(workdir / "transactions.csv", index=False)
    database, models = workdir / "soak.duckdb", workdir / "models"
    base = {**FAST, "clv_transactions": str(workdir / "transactions.csv"),
            "clv_model_dir": str(models), "clv_keep_models": args.keep_models,
            "clv_export_path": str(workdir / "p.parquet")}

    print(f"{args.customers} customers, {len(data):,} transactions; {args.days} daily as-of "
          f"dates from {first}, retrained every 7th day, clv_keep_models {args.keep_models}\n")
    print("| day | as of | retrain | wall s | customers | database MB | models | runs |")
    print("|---|---|---|---|---|---|---|---|")
    days = []
    build = cli_build if args.cli else parsed_build(workdir, database)
    for k in range(args.days):
        as_of = first + timedelta(days=k)
        retrain = "auto" if k % 7 == 0 else "never"
        run_vars = {**base, "clv_as_of_date": as_of.isoformat(), "clv_retrain": retrain}
        arguments = [*SELECT, *(["seed"] if k else []), "--vars", json.dumps(run_vars),
                     "--target-path", str(workdir / "target"), "--log-path",
                     str(workdir / "logs")]
        seconds = build(arguments, database)
        with duckdb.connect(str(database)) as connection:
            customers, model = connection.execute("select count(*), min(model_version) "
                                                  "from clv_predictions").fetchone()
        day = {"as_of": as_of, "retrain": retrain, "seconds": seconds, "customers": customers,
               "model": model, "bytes": on_disk(database),
               "models": len(list(models.glob("clv_model_*.onnx"))),
               "runs": len(list((models / "runs").glob("*.json")))}
        days.append(day)
        print(f"| {k + 1} | {as_of} | {retrain} | {seconds:.1f} | {customers} | "
              f"{day['bytes'] / 1e6:.1f} | {day['models']} | {day['runs']} |", flush=True)
    summarize(days, database, models, args.keep_models)


def on_disk(database) -> int:
    """The database file and its write-ahead log, in bytes."""
    log = database.with_name(database.name + ".wal")
    return database.stat().st_size + (log.stat().st_size if log.exists() else 0)


def cli_build(arguments: list[str], database) -> float:
    """One day as its own `dbt build` process; its wall seconds."""
    command = dbt_command("build", *arguments)
    return measure(command, env={"CLV_DUCKDB_PATH": str(database)}).seconds


def parsed_build(workdir, database):
    """One day in this process on one parse of the project; its wall seconds."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    os.environ["CLV_DUCKDB_PATH"] = str(database)
    common = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
              "--quiet"]
    parsed = dbtRunner().invoke(["parse", *common, "--target-path", str(workdir / "target")])
    if not parsed.success:
        raise SystemExit(f"dbt parse failed: {parsed.exception}")
    runner = dbtRunner(manifest=parsed.result)

    def build(arguments: list[str], _database) -> float:
        started = time.perf_counter()
        result = runner.invoke(["build", *common, *arguments])
        # close the database as the end of a dbt process does (DuckDB writes its log into the
        # file), and count that in the day's time
        with DuckDBConnectionManager._LOCK:
            if DuckDBConnectionManager._ENV is not None:
                DuckDBConnectionManager._ENV.close()
                DuckDBConnectionManager._ENV = None
        if not result.success:
            raise SystemExit(f"dbt build failed: {result.exception or result.result}")
        return time.perf_counter() - started

    return build


def summarize(days: list[dict], database, models, keep_models: int) -> None:
    rescores = [(i, d["seconds"]) for i, d in enumerate(days) if d["retrain"] == "never"]
    slope = np.polyfit([i for i, _ in rescores], [s for _, s in rescores], 1)[0]
    week = [s for _, s in rescores[:6]], [s for _, s in rescores[-6:]]
    print(f"\nre-score wall time: median {statistics.median(week[0]):.1f} s in the first week, "
          f"{statistics.median(week[1]):.1f} s in the last; trend {slope * 1000:+.0f} ms per "
          f"day over {len(days)} days")
    with duckdb.connect(str(database)) as connection:
        twice = connection.execute("select count(*) from (select customer_id, as_of_date, "
                                   "model_version from clv_predictions_history group by all "
                                   "having count(*) > 1)").fetchone()[0]
        per_day = dict(connection.execute("select as_of_date, count(*) from "
                                          "clv_predictions_history group by all").fetchall())
        behind = {v for (v,) in connection.execute("select distinct model_version "
                                                   "from clv_predictions_history").fetchall()}
        compacted = database.with_name("compacted.duckdb")
        compacted.unlink(missing_ok=True)
        connection.execute(f"attach '{compacted}' as compacted")
        connection.execute(f"copy from database {database.stem} to compacted")
        connection.execute("detach compacted")
    missing = [d["as_of"] for d in days if per_day.get(d["as_of"]) != d["customers"]]
    saved = {p.stem.removeprefix("clv_model_") for p in models.glob("clv_model_*.json")}
    runs = len(list((models / "runs").glob("*.json")))
    print(f"history: {sum(per_day.values()):,} rows over {len(per_day)} as-of dates; rows "
          f"twice {twice}; days missing or short {len(missing)}")
    print(f"model directory: {len(saved)} models ({len(behind)} behind the history, "
          f"{len(saved - behind)} others, clv_keep_models {keep_models}); {runs} scoring runs "
          f"for {len(days)} days")
    print(f"database: {on_disk(database) / 1e6:.1f} MB with its log; a compacted copy of its "
          f"content {compacted.stat().st_size / 1e6:.1f} MB; growth over the last week "
          f"{(days[-1]['bytes'] - days[max(0, len(days) - 8)]['bytes']) / 1e6:+.1f} MB")


if __name__ == "__main__":
    main()
