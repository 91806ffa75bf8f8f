"""A build killed at any point (SIGKILL, as a machine that dies or an OOM killer would).

A warehouse holds a complete build of the data up to 2023-06-23; the data then grows to
2023-06-30 and ``dbt build`` is killed, one build after the other, while it builds the feature
tables, trains, exports the model, scores, writes the Parquet export and appends the history.
After every kill:

- the database opens (DuckDB replays its write-ahead log),
- every public table is either the previous complete version or the new one (the table an
  uninterrupted build of the same data writes, built in another directory),
- the Parquet export is the previous or the new complete file,
- the model directory holds no half-written file a later run would trust: every model the
  registry could list or reuse is intact, and every scoring run parses.

Finally one more build completes and every public table equals the uninterrupted build's.

The kill points are found by watching the build's console and its model directory, so each
kill lands inside the step it names (or, for the short steps, just around it).
"""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest
from production import (
    Build,
    normalized,
    public_models,
    snapshot,
    tables,
    transactions,
    write_transactions,
)

from clv.artifacts import list_artifacts
from clv.pipeline.registry import is_finished
from clv.score import load_verified

PREVIOUS_DAY, NEW_DAY = "2023-06-23", "2023-06-30"
EXPORT = "exports/clv_predictions.parquet"


def _new_model_file(build: Build) -> bool:
    known = build.known_models
    return any(p.name not in known for p in (build.workdir / "models").glob("clv_model_*.onnx"))


# In build order. Each returns True once the build is inside (or just past) the step.
KILL_POINTS = {
    "feature_tables": lambda b: b.said("START sql table model main.clv_training_examples"),
    # the console's line as the networks start (their epochs are in the dbt log only)
    "training": lambda b: b.said("network(s) on"),
    "export": _new_model_file,
    "scoring": lambda b: b.said("START python table model main.int_clv__python_scores"),
    "parquet_export": lambda b: b.said("START python table model main.clv_predictions_export"),
    "history_append": lambda b: b.said(
        "START sql incremental model main.clv_predictions_history"),
}


@pytest.fixture(scope="module")
def crashed(tmp_path_factory):
    """(the warehouse that is killed, the previous and new versions of each public table)."""
    workdir = tmp_path_factory.mktemp("crash")
    target = workdir / "target"
    data = transactions()
    reference = workdir / "uninterrupted"
    reference.mkdir()
    write_transactions(reference, data, through=PREVIOUS_DAY)
    Build(reference, target).run()
    # the same complete build, copied: the warehouse the kills hit
    victim = workdir / "killed"
    shutil.copytree(reference, victim, ignore=shutil.ignore_patterns("logs"))
    names = public_models(target)
    previous = _state(victim, names)
    write_transactions(reference, data, through=NEW_DAY)
    Build(reference, target).run()
    new = _state(reference, names)
    write_transactions(victim, data, through=NEW_DAY)
    return victim, target, names, previous, new


def _state(workdir, names) -> dict:
    state = snapshot(workdir / "clv.duckdb", names)
    state["parquet export"] = normalized(pq.ParquetFile(workdir / EXPORT).read().to_pandas())
    return state


def _assert_previous_or_new(state: dict, previous: dict, new: dict, when: str) -> None:
    assert state.keys() == previous.keys() == new.keys(), when
    for name, table in state.items():
        assert table.equals(previous[name]) or table.equals(new[name]), (
            f"{name} after a kill {when} is neither the previous nor the new version")


def _assert_nothing_half_written_is_trusted(workdir) -> None:
    models = workdir / "models"
    for artifact in list_artifacts(models):
        if is_finished(artifact):  # what a later run may list, reuse or score with
            load_verified(models, artifact.version)
    for run in (models / "runs").glob("clv_run_*.json"):
        json.loads(run.read_text())
    # A write killed midway leaves its hidden temporary file (the next build removes it once
    # it is old); what readers see under a visible name is always a whole Parquet file.
    for path in (workdir / "exports").iterdir():
        if path.name.startswith("."):
            assert path.name.endswith((".tmp", ".tmp.wal")), f"{path.name}: not a temporary file"
        else:
            assert path.suffix == ".parquet", path.name
            pq.ParquetFile(path).read()


@pytest.mark.slow
def test_a_build_killed_at_any_point_leaves_a_consistent_warehouse(crashed):
    victim, target, names, previous, new = crashed
    killed_in = []
    for point, seen in KILL_POINTS.items():
        build = Build(victim, target)
        build.known_models = {p.name for p in (victim / "models").glob("clv_model_*.onnx")}
        if build.start().kill_when(seen):
            killed_in.append(point)
        state = _state(victim, names)  # the database opens: DuckDB replays its log
        _assert_previous_or_new(state, previous, new, f"during {point}")
        _assert_nothing_half_written_is_trusted(victim)
        assert "clv_predictions" in tables(victim / "clv.duckdb")
    assert killed_in == list(KILL_POINTS), "every build was killed before it finished"

    # the next build completes and ends where an uninterrupted one does
    Build(victim, target).run()
    state = _state(victim, names)
    for name in names:
        assert state[name].equals(new[name]), name
    assert state["parquet export"].equals(new["parquet export"])
