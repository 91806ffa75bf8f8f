"""Months of daily runs, shortened: consecutive daily as-of dates on generated data, scored
with the saved model (``clv_retrain: never``) and retrained weekly (``auto``), each day's build
selecting only what a daily run needs (the history and the registry).

Checked after the last day: the history holds every day's customers exactly once, each day
with the model that was current that day; the model directory holds no model beyond those
behind the history and the ``clv_keep_models`` most recent, and one scoring run per day; the
database is no larger than a compacted copy of its own content allows. Each day's wall time is
printed with its trend (tests assert no timings; ``bench/bench_soak.py`` runs 60 days by default
and prints the same figures).

The test runs 15 days (three weekly models: two weeks and a day), a few seconds each: the
builds re-use one parse of the project (see ``production.ParsedProject``), which a cron job
running ``dbt build`` would not, and which takes the same time every day
(``bench/bench_soak.py --cli`` starts one dbt process per day).
"""

from __future__ import annotations

import itertools
import statistics
import time
from datetime import date, timedelta

import duckdb
import numpy as np
import pytest
from production import FAST_VARS, ParsedProject, transactions

DAYS = 15
FIRST_DAY = date(2023, 9, 1)
KEEP_MODELS = 2
# What a daily run needs: the history and the registry (the seeds are loaded on the first day
# only, as clv-backfill does; the data tests change no table).
DAILY = ["--select", "+clv_predictions_history", "+clv_model_registry",
         "--exclude-resource-type", "test", "unit_test"]


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("soak")
    transactions(n_customers=300, seed=11, end=date(2023, 12, 31)).to_csv(
        workdir / "transactions.csv", index=False)
    project = ParsedProject(workdir)
    base = {**FAST_VARS, "clv_transactions": str(workdir / "transactions.csv"),
            "clv_model_dir": str(workdir / "models"), "clv_keep_models": KEEP_MODELS,
            "clv_export_path": str(workdir / "p.parquet")}
    days = []
    for k in range(DAYS):
        as_of = FIRST_DAY + timedelta(days=k)
        retrain = "auto" if k % 7 == 0 else "never"  # weekly
        started = time.perf_counter()
        project.build({**base, "clv_as_of_date": as_of.isoformat(), "clv_retrain": retrain},
                      DAILY + (["seed"] if k else []))
        seconds = time.perf_counter() - started
        scored = project.query("select count(*) as n, min(model_version) as model "
                               "from clv_predictions")
        current = project.query("select model_version from clv_model_registry "
                                "where is_current").model_version.tolist()
        days.append({"as_of": as_of, "retrain": retrain, "seconds": seconds,
                     "customers": int(scored.n[0]), "model": scored.model[0],
                     "current": current, "database_bytes": _on_disk(project.database),
                     "models": len(list((workdir / "models").glob("clv_model_*.onnx"))),
                     "runs": len(list((workdir / "models" / "runs").glob("*.json")))})
    _report(days)
    return project, workdir, days


def _on_disk(database) -> int:
    """The database file and its write-ahead log, in bytes."""
    log = database.with_name(database.name + ".wal")
    return database.stat().st_size + (log.stat().st_size if log.exists() else 0)


def _report(days: list[dict]) -> None:
    """Each day's figures and the wall-time trend of the re-scores, in the test output."""
    print(f"\n{'as of':>10} {'retrain':>7} {'wall s':>7} {'customers':>9} {'db MB':>6} "
          f"{'models':>6} {'runs':>5}")
    for day in days:
        print(f"{day['as_of']} {day['retrain']:>7} {day['seconds']:7.2f} {day['customers']:9d} "
              f"{day['database_bytes'] / 1e6:6.2f} {day['models']:6d} {day['runs']:5d}")
    rescores = [(i, d["seconds"]) for i, d in enumerate(days) if d["retrain"] == "never"]
    slope = np.polyfit([i for i, _ in rescores], [s for _, s in rescores], 1)[0]
    half = len(rescores) // 2
    print(f"re-score wall time: median {statistics.median(s for _, s in rescores[:half]):.2f} s "
          f"in the first half, {statistics.median(s for _, s in rescores[half:]):.2f} s in the "
          f"second; trend {slope * 1000:+.0f} ms per day")


@pytest.mark.slow
def test_history_holds_every_day_once_with_that_days_model(soak):
    project, _, days = soak
    history = project.query("""
        select as_of_date, model_version, count(*) as rows,
               count(distinct customer_id) as customers
        from clv_predictions_history group by all order by as_of_date""")
    assert [d.date() if hasattr(d, "date") else d for d in history.as_of_date] == [
        day["as_of"] for day in days], "one model per day, no day missing"
    assert history.rows.tolist() == history.customers.tolist() == [
        day["customers"] for day in days], "no customer missing or twice"
    assert history.model_version.tolist() == [day["model"] for day in days]
    assert all(day["current"] == [day["model"]] for day in days), "is_current every day"
    retrained = {day["model"] for day in days if day["retrain"] == "auto"}
    assert len(retrained) == len(range(0, DAYS, 7)), "a new model every week"
    assert {day["model"] for day in days} == retrained


@pytest.mark.slow
def test_model_directory_holds_the_models_behind_the_history_and_one_run_per_day(soak):
    project, workdir, days = soak
    behind_history = set(project.query(
        "select distinct model_version from clv_predictions_history").model_version)
    saved = {p.stem.removeprefix("clv_model_") for p in (workdir / "models").glob("*.json")}
    assert behind_history <= saved
    assert len(saved - behind_history) <= KEEP_MODELS
    runs = sorted(p.name for p in (workdir / "models" / "runs").iterdir())
    assert [name.split(".")[0] for name in runs] == sorted(
        f"clv_run_{day['as_of']}_{day['model']}" for day in days)
    assert len({name.split(".")[1] for name in runs}) == 1  # every day's run of the one build
    assert not list((workdir / "models").glob(".*.tmp"))


@pytest.mark.slow
def test_database_holds_little_beyond_its_content(soak, tmp_path):
    project, _, days = soak
    compacted = tmp_path / "compacted.duckdb"
    with duckdb.connect(str(project.database)) as connection:
        connection.execute(f"attach '{compacted}' as compacted")
        connection.execute("copy from database clv to compacted")
        connection.execute("detach compacted")  # written out in full
    size, content = _on_disk(project.database), compacted.stat().st_size
    print(f"\ndatabase {size / 1e6:.1f} MB after {len(days)} days; its content alone "
          f"{content / 1e6:.1f} MB")
    assert size <= 2 * content + 4_000_000, "space freed by replaced tables is reused"
    growth = [b["database_bytes"] - a["database_bytes"] for a, b in itertools.pairwise(days)]
    assert max(growth[len(growth) // 2:]) <= max(growth[:len(growth) // 2]) + 2_000_000
