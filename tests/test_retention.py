"""Retention of the model directory: clv_keep_models.

The training step keeps this warehouse's ``clv_keep_models`` most recently used models, the
model it uses and every model behind ``clv_predictions`` and ``clv_predictions_history`` (so
each stored prediction can be reproduced with its scoring run); it deletes this data's other
models with their scoring runs, and never touches models of other data or settings. Files that
interrupted writes left behind are deleted once they are old enough to be nobody's write in
progress.

The rules are checked on hand-made model directories (expected files listed by hand), and once
end to end through dbt.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from dbt.exceptions import CompilationError
from production import FAST_VARS, ParsedProject, transactions

from clv import artifacts
from clv.config import FEATURE_DEFINITIONS
from clv.pipeline import registry
from clv.pipeline.settings import RunSettings

FEATURES = ["frequency", "recency_days"]
OURS = [1, 2, 3, 4, 5]


def _run(model_dir: Path, keep: int, build: str = "prod") -> RunSettings:
    return RunSettings(model_dir=model_dir, retrain="auto", horizon_days=60, period_days=30,
                       sequence_periods=12, seed=42, static_features=(), channels=(),
                       keep_models=keep, data_signature=tuple(OURS), trained_by=build)


def _model(model_dir: Path, version: str, used: float, signature=OURS, horizon=60,
           runs=("2023-06-30",), trained_by: str | None = None,
           cutoffs: tuple[str, ...] = ()) -> None:
    """A model's files as the training step leaves them (the ONNX content is not read here),
    last used ``used`` seconds ago, with a scoring run per date in ``runs``."""
    metadata = {"model_version": version, "created_at": f"2023-01-01T00:00:{version[-2:]}",
                "features": FEATURES, "horizon_days": horizon, "n_periods": 12,
                "period_days": 30, "sha256": "0" * 64}
    if signature is not None:
        metadata["data_signature"] = list(signature)
    if trained_by is not None:
        metadata["trained_by"] = trained_by
    if cutoffs:
        metadata["training_cutoffs"] = list(cutoffs)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / f"clv_model_{version}.onnx").write_bytes(b"onnx")
    meta = model_dir / f"clv_model_{version}.json"
    meta.write_text(json.dumps(metadata))
    (model_dir / "runs").mkdir(exist_ok=True)
    for day in runs:
        (model_dir / "runs" / f"clv_run_{day}_{version}.json").write_text("{}")
        (model_dir / "runs" / f"clv_run_{day}_{version}.duckdb.sql").write_text("select 1")
    stamp = time.time() - used
    os.utime(meta, (stamp, stamp))


def _files(model_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())


def _versions(model_dir: Path) -> set[str]:
    return {p.stem.removeprefix("clv_model_") for p in model_dir.glob("clv_model_*.json")}


def test_keeps_the_most_recently_used_and_every_model_behind_the_history(tmp_path):
    for age, version in enumerate(["t_06", "t_05", "t_04", "t_03", "t_02", "t_01"]):
        _model(tmp_path, version, used=100 * age)  # t_06 used last, t_01 first
    removed = registry.prune(_run(tmp_path, keep=2), FEATURES, keep_versions={"t_01", "t_03"})
    assert sorted(removed) == ["t_02", "t_04"]
    assert _versions(tmp_path) == {"t_06", "t_05", "t_03", "t_01"}
    # a pruned model goes with its scoring runs; kept ones keep theirs
    assert _files(tmp_path) == sorted(
        [f"clv_model_{v}.{ext}" for v in ("t_01", "t_03", "t_05", "t_06")
         for ext in ("json", "onnx")]
        + [f"runs/clv_run_2023-06-30_{v}.{ext}" for v in ("t_01", "t_03", "t_05", "t_06")
           for ext in ("json", "duckdb.sql")])


def test_using_an_old_model_again_keeps_it(tmp_path):
    for age, version in enumerate(["t_03", "t_02", "t_01"]):
        _model(tmp_path, version, used=100 * age)
    artifacts.touch(artifacts.load_artifact(tmp_path, "t_01"))  # reused by this run
    registry.prune(_run(tmp_path, keep=2), FEATURES, keep_versions=set())
    assert _versions(tmp_path) == {"t_03", "t_01"}


def test_models_of_other_data_or_settings_and_unfinished_ones_are_left_alone(tmp_path):
    _model(tmp_path, "t_09", used=0)
    _model(tmp_path, "t_08", used=10)
    _model(tmp_path, "o_07", used=900, signature=[10, 11, 12, 13, 14])  # other data
    _model(tmp_path, "o_06", used=900, horizon=365)  # other settings
    _model(tmp_path, "o_05", used=900, signature=None)  # interrupted, or from before signatures
    # trained on these customers and more: a larger warehouse's (this data is a copy of part
    # of it) or this data's at a later as-of date; it matches this data, but is not its to delete
    _model(tmp_path, "o_04", used=900, signature=[*OURS, 6, 7, 8])
    _model(tmp_path, "t_03", used=900, signature=OURS[:3])  # this data at an earlier date
    assert registry.prune(_run(tmp_path, keep=1), FEATURES, keep_versions=set()) == [
        "t_08", "t_03"]
    assert _versions(tmp_path) == {"t_09", "o_07", "o_06", "o_05", "o_04"}


def test_a_build_deletes_only_the_models_it_trained(tmp_path):
    """Two targets on the same data share the model directory: the development target's
    retrains never delete the models behind production's predictions and history, which it
    cannot see; a model saved before builds were told apart counts as anyone's."""
    for age, version in enumerate(["d_05", "d_04", "d_03"]):
        _model(tmp_path, version, used=10 * age, trained_by="dev")
    _model(tmp_path, "p_02", used=100, trained_by="prod")
    _model(tmp_path, "p_01", used=200, trained_by="prod")
    _model(tmp_path, "x_00", used=300)  # saved before builds were told apart
    assert registry.prune(_run(tmp_path, keep=1, build="dev"), FEATURES,
                          keep_versions={"d_05"}) == ["d_04", "d_03", "x_00"]
    assert registry.prune(_run(tmp_path, keep=1, build="prod"), FEATURES,
                          keep_versions={"p_02"}) == ["p_01"]
    assert _versions(tmp_path) == {"d_05", "p_02"}


def test_a_model_of_customers_the_data_no_longer_has_goes_when_this_build_trained_it(tmp_path):
    """A rolling window (first purchases fall out of it) or a deleted customer: the build's own
    older models held customers this data lacks, and are still its to delete; an unsigned
    (older) model holding them stays, as it may be a larger warehouse's."""
    _model(tmp_path, "t_03", used=0, trained_by="prod")
    _model(tmp_path, "t_02", used=100, signature=[0, *OURS], trained_by="prod")
    _model(tmp_path, "t_01", used=200, signature=[0, *OURS[:-1]], trained_by="prod")
    # months into a rolling window most customers' first purchases have moved: one of five
    # still matches, too few for the model to count as this data's, but it is still this
    # build's to delete; a model it trained on wholly other data stays
    _model(tmp_path, "t_00", used=250, signature=[-4, -3, -2, -1, OURS[0]], trained_by="prod")
    _model(tmp_path, "o_00", used=260, signature=[-9, -8, -7, -6, -5], trained_by="prod")
    _model(tmp_path, "x_00", used=300, signature=[0, *OURS])
    assert registry.data_problem(artifacts.load_artifact(tmp_path, "t_00"),
                                 _run(tmp_path, keep=1)) is not None
    assert registry.prune(_run(tmp_path, keep=1), FEATURES, keep_versions={"t_03"}) == [
        "t_02", "t_01", "t_00"]
    assert _versions(tmp_path) == {"t_03", "o_00", "x_00"}


def test_no_build_deletes_a_model_another_builds_tables_need(tmp_path):
    """Production reuses a model the development target trained (same data and settings):
    production's pin keeps it when development's retention would delete it; an unreadable pin
    file is ignored, not fatal."""
    for age, version in enumerate(["d_03", "d_02", "d_01"]):
        _model(tmp_path, version, used=10 * age, trained_by="dev")
    registry.pin(tmp_path, "prod", {"d_01"})
    registry.pin(tmp_path, "", {"d_02"})  # a build without a key pins nothing
    (tmp_path / "pins" / "broken.json").write_text("{")
    assert registry.pinned(tmp_path) == {"d_01"}
    assert registry.prune(_run(tmp_path, keep=1, build="dev"), FEATURES,
                          keep_versions={"d_03"} | registry.pinned(tmp_path)) == ["d_02"]
    assert _versions(tmp_path) == {"d_03", "d_01"}


def test_the_build_key_tells_targets_and_schemas_apart(tmp_path):
    import duckdb

    from clv.warehouse import DuckDBWarehouse

    first = DuckDBWarehouse(duckdb.connect(str(tmp_path / "a.duckdb")))
    second = DuckDBWarehouse(duckdb.connect(str(tmp_path / "b.duckdb")))
    keys = {registry.build_key(first, "main.int_clv__model_registry"),
            registry.build_key(first, "dev.int_clv__model_registry"),
            registry.build_key(second, "main.int_clv__model_registry")}
    assert len(keys) == 3
    assert registry.build_key(first, "MAIN.int_clv__model_registry") in keys
    assert all(len(key) == 16 and str(tmp_path) not in key for key in keys)


def test_the_published_tables_are_read_where_the_settings_say(tmp_path):
    """A folder's own schema (clv_predictions in main_marts): the versions behind the
    predictions are read there, not from a table of that name beside the registry (a stale one
    from before the schema changed); where the tables are not known, nothing is read."""
    import dataclasses

    import duckdb

    from clv.warehouse import DuckDBWarehouse

    connection = duckdb.connect()
    connection.execute("""
        create schema main_marts;
        create table main_marts.clv_predictions as
            select 'v_02' as model_version, 60 as horizon_days;
        create table main_marts.clv_predictions_history as
            select *, 60 as horizon_days from (values ('v_01'), ('v_02')) as t(model_version);
        create table main.clv_predictions as select 'v_00' as model_version, 60 as horizon_days;
        create table main.clv_predictions_history as
            select 'v_00' as model_version, 60 as horizon_days""")
    warehouse = DuckDBWarehouse(connection)
    run = dataclasses.replace(_run(tmp_path, keep=1), published_relations=(
        "main_marts.clv_predictions", "main_marts.clv_predictions_history"))
    assert registry.scored_version(warehouse, run) == "v_02"
    assert registry.published_versions(warehouse, run) == {"v_01", "v_02"}
    unknown = _run(tmp_path, keep=1)
    assert registry.scored_version(warehouse, unknown) is None
    assert registry.published_versions(warehouse, unknown) is None
    connection.execute("drop table main_marts.clv_predictions_history")
    assert registry.published_versions(warehouse, run) is None  # unreadable: nothing pruned


def test_never_goes_on_with_the_model_of_the_latest_as_of_date(tmp_path):
    """A build at an older date with another model (a past date re-run with clv_retrain auto)
    publishes that date in clv_predictions: the next daily build keeps the model of the
    history's latest date (its newest run there), not the older date's."""
    import dataclasses

    import duckdb

    from clv.warehouse import DuckDBWarehouse

    connection = duckdb.connect()
    connection.execute("""
        create table clv_predictions as
            select 'v_old' as model_version, date '2026-11-20' as as_of_date, 60 as horizon_days;
        create table clv_predictions_history as select *, 60 as horizon_days from (values
            ('v_old', date '2026-11-20', timestamp '2026-12-05 09:00'),
            ('v_old', date '2026-12-04', timestamp '2026-12-04 06:00'),
            ('v_new', date '2026-12-04', timestamp '2026-12-04 07:00'),
            ('v_new', date '2026-12-03', timestamp '2026-12-03 06:00'))
            as t(model_version, as_of_date, scored_at)""")
    warehouse = DuckDBWarehouse(connection)
    run = dataclasses.replace(_run(tmp_path, keep=1), published_relations=(
        "clv_predictions", "clv_predictions_history"))
    assert registry.scored_version(warehouse, run) == "v_new"
    # an empty history (or none): the model behind clv_predictions
    connection.execute("delete from clv_predictions_history")
    assert registry.scored_version(warehouse, run) == "v_old"
    connection.execute("drop table clv_predictions_history")
    assert registry.scored_version(warehouse, run) == "v_old"


def test_never_goes_on_with_the_model_of_its_own_horizon(tmp_path):
    """A weekly 90-day job beside the daily 60-day one writes the same history: its runs,
    later on the latest date or at a later date, are not the daily job's model, nor is
    clv_predictions when the other job published it last."""
    import dataclasses

    import duckdb

    from clv.warehouse import DuckDBWarehouse

    connection = duckdb.connect()
    connection.execute("""
        create table clv_predictions as
            select 'v_90' as model_version, date '2026-12-05' as as_of_date, 90 as horizon_days;
        create table clv_predictions_history as select * from (values
            ('v_60', date '2026-12-04', timestamp '2026-12-04 06:00', 60),
            ('v_90', date '2026-12-04', timestamp '2026-12-04 06:05', 90),
            ('v_90', date '2026-12-05', timestamp '2026-12-05 06:05', 90))
            as t(model_version, as_of_date, scored_at, horizon_days)""")
    warehouse = DuckDBWarehouse(connection)
    run = dataclasses.replace(_run(tmp_path, keep=1), published_relations=(
        "clv_predictions", "clv_predictions_history"))
    assert run.horizon_days == 60
    assert registry.scored_version(warehouse, run) == "v_60"
    assert registry.scored_version(warehouse, dataclasses.replace(run, horizon_days=90)) == "v_90"
    connection.execute("delete from clv_predictions_history")
    assert registry.scored_version(warehouse, run) is None


def test_never_goes_on_with_a_model_retrained_since_on_data_as_recent(tmp_path):
    """Re-scores past the data's end with a_01, then a retrain at the default (earlier) as-of
    date trains a_02 on the same data: the daily job tries a_02 first, then a_01. A model
    trained at an earlier date, on older data (a_03), or by another target sharing the
    directory (a_04, in none of this warehouse's published tables) is not tried before a_01;
    a cutoff written as a timestamp reads as its date."""
    for version, cutoff in (("a_01", "2022-12-31"), ("a_02", "2022-12-31 00:00:00"),
                            ("a_03", "2022-06-30"), ("a_04", "2023-01-31"),
                            ("a_05", "2023-01-31")):
        _model(tmp_path, version, used=0, cutoffs=("2021-12-31", cutoff))
    scored = {"a_01", "a_02", "a_03"}
    assert registry.retrained_since(tmp_path, "a_01", scored, 60) == ["a_02"]
    assert registry.retrained_since(tmp_path, "a_01", scored | {"a_05"}, 60) == ["a_05", "a_02"]
    assert registry.retrained_since(tmp_path, "a_02", scored, 60) == []
    assert registry.retrained_since(tmp_path, "gone", scored, 60) == []
    # a weekly job's model over another horizon, retrained since on data as recent: not tried
    _model(tmp_path, "a_06", used=0, horizon=90, cutoffs=("2021-12-31", "2023-01-31"))
    assert registry.retrained_since(tmp_path, "a_01", scored | {"a_05", "a_06"}, 60) == [
        "a_05", "a_02"]
    # the latest run's model saved before models recorded their horizon: the run's horizon
    # decides, so a retrain since is still tried
    _model(tmp_path, "a_00", used=0, horizon=None, cutoffs=("2021-12-31", "2022-12-31"))
    assert registry.retrained_since(tmp_path, "a_00", scored | {"a_00"}, 60) == ["a_02", "a_01"]


def test_auto_says_why_it_retrains(tmp_path):
    """clv_retrain: auto names what differs from the newest model of this data that fits the
    run's settings (another job's horizon aside): none saved, its feature definitions, or the
    examples; with none that fits, the newest model's settings."""
    def saved(directory: Path, version: str, definitions: int = FEATURE_DEFINITIONS,
              **kwargs) -> None:
        _model(directory, version, used=0, **kwargs)
        meta = directory / f"clv_model_{version}.json"
        meta.write_text(json.dumps({**json.loads(meta.read_text()),
                                    "feature_definitions": definitions}))

    run = _run(tmp_path, keep=5)
    assert registry.retrain_reason(run, FEATURES).endswith("holds no model of this data")
    saved(tmp_path, "r_01")
    saved(tmp_path, "r_02", signature=[9, 8, 7, 6, 5])  # another data set's, newer
    saved(tmp_path, "r_03", horizon=90)  # another job's horizon, newer
    assert "examples differ from those the newest model of this data, r_01," in \
        registry.retrain_reason(run, FEATURES)
    saved(tmp_path, "r_04", definitions=FEATURE_DEFINITIONS - 1)
    assert (f"r_04, was trained on feature definitions {FEATURE_DEFINITIONS - 1}"
            in registry.retrain_reason(run, FEATURES))
    weekly = tmp_path / "weekly"
    saved(weekly, "w_01", horizon=90)
    assert "w_01, has other settings (horizon_days: model 90, run 60)" in \
        registry.retrain_reason(dataclasses.replace(run, model_dir=weekly), FEATURES)


@pytest.mark.slow
def test_the_settings_name_the_published_tables_as_dbt_places_them(tmp_path):
    """With the marts in a schema of their own (+schema on the folder), clv_run_settings names
    that schema for clv_predictions and its history."""
    import yaml
    from conftest import PROJECT_DIR, DbtProject

    root = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, root, ignore=shutil.ignore_patterns(
        ".*", "target", "logs", "tests", "bench", "onnx", "exports", "reports", "data", "docs",
        "src", "integration_tests", "*.duckdb", "*.wal"))
    settings = yaml.safe_load((root / "dbt_project.yml").read_text(encoding="utf-8"))
    settings["models"]["clv"].setdefault("4_marts", {})["+schema"] = "marts"
    (root / "dbt_project.yml").write_text(yaml.safe_dump(settings, sort_keys=False),
                                          encoding="utf-8")
    project = DbtProject(tmp_path)
    project.run("run", select="clv_run_settings", extra=["--project-dir", str(root)])
    row = project.query("select predictions_relation, history_relation from clv_run_settings")
    assert row.values.tolist() == [["main_marts.clv_predictions",
                                    "main_marts.clv_predictions_history"]]


def test_leftovers_of_interrupted_writes_are_removed_once_old(tmp_path):
    _model(tmp_path, "t_01", used=0)
    old, young = time.time() - 2 * artifacts.LEFTOVER_SECONDS, time.time()
    leftovers = {
        ".clv_model_t_02.onnx.0123456789abcdef.tmp": old,  # killed while writing a model
        "clv_model_t_02.onnx": old,  # killed between the ONNX file and its metadata
        "runs/.clv_run_2023-06-30_t_01.json.0123456789abcdef.tmp": old,
        "runs/clv_run_2023-05-31_t_00.json": old,  # a run of a model deleted by hand
        # the training step's journal and a build's pins, killed while writing
        f".{registry.JOURNAL}.0123456789abcdef.tmp": old,
        f"{registry.PINS_DIR}/.prod.json.0123456789abcdef.tmp": old,
        ".clv_model_t_03.onnx.fedcba9876543210.tmp": young,  # maybe another build's write
        "clv_model_t_03.onnx": young,
        f"{registry.PINS_DIR}/.dev.json.fedcba9876543210.tmp": young,
    }
    for name, stamp in leftovers.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (stamp, stamp))
    removed = artifacts.remove_leftovers(tmp_path)
    assert sorted(removed) == sorted(Path(n).name for n, s in leftovers.items() if s == old)
    assert _files(tmp_path) == sorted([
        "clv_model_t_01.json", "clv_model_t_01.onnx", "runs/clv_run_2023-06-30_t_01.json",
        "runs/clv_run_2023-06-30_t_01.duckdb.sql", ".clv_model_t_03.onnx.fedcba9876543210.tmp",
        "clv_model_t_03.onnx", f"{registry.PINS_DIR}/.dev.json.fedcba9876543210.tmp"])


def test_what_a_dead_training_step_wrote_goes_at_once(tmp_path):
    """The step's journal says when it started; everything it wrote since, whatever its age,
    is deleted by the next step (models are written only under the directory's lock)."""
    started = time.time() - 60
    _model(tmp_path, "t_01", used=3600)  # finished earlier
    _model(tmp_path, "o_02", used=3600, signature=None)  # from before signatures: left alone
    _model(tmp_path, "u_03", used=30, signature=None, runs=())  # the dead step's, unsigned
    for name in (".clv_model_u_04.onnx.0123456789abcdef.tmp", "clv_model_u_04.onnx"):
        (tmp_path / name).write_bytes(b"x")  # killed while exporting
    removed = artifacts.remove_leftovers(tmp_path, interrupted_at=started)
    assert sorted(removed) == [".clv_model_u_04.onnx.0123456789abcdef.tmp",
                               "clv_model_u_04.onnx"]
    assert registry.remove_unfinished(tmp_path, started) == ["u_03"]
    assert _versions(tmp_path) == {"t_01", "o_02"}


@pytest.mark.slow
@pytest.mark.parametrize("value", [0, "three", 1.5])
def test_keep_models_is_validated_before_sql_runs(dbt_project, value):
    with pytest.raises(CompilationError, match="Invalid value for var 'clv_keep_models'"):
        dbt_project.run("parse", vars={"clv_keep_models": value})
    assert not dbt_project.database.exists()


@pytest.mark.slow
def test_keep_models_reaches_the_python_steps(dbt_project):
    dbt_project.build(vars={"clv_keep_models": 2}, select="clv_run_settings")
    settings = dbt_project.query("select keep_models from clv_run_settings")
    assert settings.keep_models.tolist() == [2]


# ---------------------------------------------------------------------------------------------
# End to end


def _clone(model_dir: Path, source: str, version: str) -> None:
    """A copy of model ``source`` under another version (the same, intact ONNX bytes)."""
    metadata = json.loads((model_dir / f"clv_model_{source}.json").read_text())
    metadata.update(model_version=version, onnx_file=f"clv_model_{version}.onnx")
    shutil.copy(model_dir / f"clv_model_{source}.onnx", model_dir / f"clv_model_{version}.onnx")
    (model_dir / f"clv_model_{version}.json").write_text(json.dumps(metadata))


@pytest.mark.slow
def test_builds_prune_old_models_and_keep_those_behind_the_history(tmp_path):
    project = ParsedProject(tmp_path)
    transactions().to_csv(tmp_path / "transactions.csv", index=False)
    model_dir = tmp_path / "onnx"
    vars_ = {**FAST_VARS, "clv_as_of_date": "2023-06-30",
             "clv_transactions": str(tmp_path / "transactions.csv"),
             "clv_model_dir": str(model_dir), "clv_keep_models": 1,
             "clv_export_path": str(tmp_path / "p.parquet")}
    args = ["--select", "+clv_model_registry", "+clv_predictions_history",
            "--exclude-resource-type", "test", "unit_test"]
    project.build(vars_, args)
    [current] = _versions(model_dir)
    # older models of this data: two never scored, one behind history rows (with its run)
    for version in ("20200101T000000Z_0000000001", "20200101T000000Z_0000000002",
                    "20200101T000000Z_0000000003"):
        _clone(model_dir, current, version)
        os.utime(model_dir / f"clv_model_{version}.json", (1e9, 1e9))
    behind_history = "20200101T000000Z_0000000003"
    [run] = (model_dir / "runs").glob(f"clv_run_2023-06-30_{current}.*.json")
    build = run.name.split(".")[1]  # the build's key: its runs are named by it
    shutil.copy(run, model_dir / "runs" / f"clv_run_2023-05-31_{behind_history}.{build}.json")
    project.query(f"""
        insert into clv_predictions_history
        select * replace (date '2023-05-31' as as_of_date, '{behind_history}' as model_version)
        from clv_predictions""")
    # a model of other data in the same directory
    _clone(model_dir, current, "20200101T000000Z_00000000ff")
    foreign = model_dir / "clv_model_20200101T000000Z_00000000ff.json"
    foreign.write_text(json.dumps({**json.loads(foreign.read_text()), "data_signature": [1]}))

    project.build(vars_, args)
    assert _versions(model_dir) == {current, behind_history, "20200101T000000Z_00000000ff"}
    assert sorted(p.name for p in (model_dir / "runs").iterdir()) == sorted([
        f"clv_run_2023-06-30_{current}.{build}.json",
        f"clv_run_2023-05-31_{behind_history}.{build}.json"])
    assert set(project.query("select model_version from clv_model_registry").model_version) == {
        current, behind_history}

    # once the history no longer holds its rows, the model goes with its scoring run
    project.query(f"delete from clv_predictions_history where model_version = '{behind_history}'")
    project.build(vars_, args)
    assert _versions(model_dir) == {current, "20200101T000000Z_00000000ff"}
    assert [p.name for p in (model_dir / "runs").iterdir()] == [
        f"clv_run_2023-06-30_{current}.{build}.json"]
