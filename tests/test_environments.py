"""Runs that read what another run built: a run that defers clv's settings to another
environment (`--defer`, `dbt clone`) must not act on that environment's model directory and
files, and a partial selection must not publish one as-of date's scores under another's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import PROJECT_DIR, small_shop
from dbt.cli.main import dbtRunner

from clv.pipeline.settings import RUN_SETTINGS_COLUMNS, RunSettings


class _This:
    database, schema, identifier = None, "Dev", "int_clv__model_registry"


class _ThisInDevDatabase(_This):
    database = "dev_db"


def _table(row: dict) -> pa.Table:
    return pa.Table.from_pylist([row])


def _settings_row() -> dict:
    """A row of clv_run_settings as this version builds it, with no step listed."""
    row = dict.fromkeys(RUN_SETTINGS_COLUMNS, "")
    row.update(model_dir="onnx", retrain="auto", horizon_days=365, period_days=30,
               sequence_periods=12, seed=42, static_features="a", channels="orders",
               export_path="x.parquet", ensemble_size=1, explanations=True, keep_models=5,
               max_train_rows=1000, max_validation_rows=1000, feature_groups="{}",
               python_relations="[]")
    return row


def test_the_settings_columns_are_the_models():
    """The columns the Python package knows are those models/clv_run_settings.sql builds."""
    sql = (PROJECT_DIR / "models" / "clv_run_settings.sql").read_text(encoding="utf-8")
    built = set(re.findall(r"\bas (\w+),?$", sql, flags=re.MULTILINE))
    assert built == RUN_SETTINGS_COLUMNS


def test_a_settings_row_of_another_version_stops_the_step():
    """The dbt package and the Python package are installed apart: a settings row without a
    column this package reads, or with one it does not know, stops the step naming both
    packages and the columns, instead of a KeyError or a setting silently not read."""
    older = {name: value for name, value in _settings_row().items() if name != "keep_models"}
    with pytest.raises(ValueError, match=r"clv_run_settings does not have the columns of the "
                                         r"Python package clv \d.*\(it lacks keep_models\): the "
                                         r"dbt package and the Python package clv are of "
                                         r"different versions"):
        RunSettings.for_step(_table(older), _This())
    newer = {**_settings_row(), "clv_new_setting": 1}
    with pytest.raises(ValueError, match=r"\(this package does not know clv_new_setting\).*"
                                         r"Install both from the same revision"):
        RunSettings.for_step(_table(newer), _This())
    # the Python models of earlier revisions read the row with from_table: checked there too
    with pytest.raises(ValueError, match=r"\(it lacks keep_models\)"):
        RunSettings.from_table(_table(older))


def test_a_step_acts_only_on_settings_that_list_it():
    """A settings row of another environment (a deferred clv_run_settings) names that
    environment's model directory and export path: the step stops instead of acting on it."""
    row = _settings_row()
    for this in (_This(), "dev.int_clv__model_registry", '"db"."DEV"."int_clv__model_registry"'):
        listed = {**row, "python_relations": '["dev.clv_report", "dev.int_clv__model_registry"]'}
        assert RunSettings.for_step(_table(listed), this).model_dir == Path("onnx")
        other = {**row, "python_relations": '["prod.clv_report", "prod.int_clv__model_registry"]'}
        with pytest.raises(ValueError, match=r"another environment's run.*prod\.clv_report.*"
                                             r"this run builds (db\.)?dev\.int_clv__model_regi"):
            RunSettings.for_step(_table(other), this)
    # a row whose build did not know where the steps are
    assert RunSettings.for_step(_table(row), _This()).retrain == "auto"
    # environments that differ in the database only (a catalog per environment)
    this = _ThisInDevDatabase()
    same = {**row, "python_relations": '["dev_db.dev.int_clv__model_registry"]'}
    assert RunSettings.for_step(_table(same), this).retrain == "auto"
    prod = {**row, "python_relations": '["prod_db.dev.int_clv__model_registry"]'}
    with pytest.raises(ValueError, match=r"this run builds dev_db\.dev\.int_clv__model_registry"):
        RunSettings.for_step(_table(prod), this)
    # clv build names a step schema.alias: the database cannot tell, the rest must match
    assert RunSettings.for_step(_table(prod), "dev.int_clv__model_registry").retrain == "auto"


def _dbt(workdir: Path, command: str, target: str, run_vars: dict, *extra: str) -> object:
    return dbtRunner().invoke([
        command, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(workdir),
        "--target", target, "--target-path", str(workdir / f"target_{target}"),
        "--log-path", str(workdir / "logs"), "--vars", json.dumps(run_vars), *extra])


def test_a_registry_whose_model_lies_in_another_directory_says_to_select_training(tmp_path):
    """Slim CI with --defer and a changed scoring step: the registry is the other
    environment's, its model in that environment's clv_model_dir; the scoring step says so
    instead of only that a file is missing."""
    from clv.pipeline.registry import load_current
    from clv.score import ModelMismatchError

    run = RunSettings(model_dir=tmp_path, retrain="auto", horizon_days=365, period_days=30,
                      sequence_periods=12, seed=42, static_features=("a",), channels=("orders",))
    with pytest.raises(ModelMismatchError, match=r"int_clv__model_registry names model "
                                                 r"20240101T000000Z_x, which .* \(clv_model_dir\) "
                                                 r"does not hold.*\(--defer\).*--select "
                                                 r"clv_run_settings\+"):
        load_current(run, "20240101T000000Z_x", ["a"])


@pytest.mark.slow
def test_a_deferred_run_stops_before_writing_the_other_environments_files(tmp_path):
    """Slim CI: production built in schema main, a CI run in schema dev selecting only the
    Parquet hand-off with --defer. The deferred clv_run_settings is production's, whose export
    path is production's file: the step stops, the file stays, and selecting
    clv_run_settings too writes the CI run's own file."""
    database = tmp_path / "clv.duckdb"
    outputs = {name: {"type": "duckdb", "path": str(database), "schema": schema, "threads": 2}
               for name, schema in (("prod", "main"), ("dev", "dev"))}
    (tmp_path / "profiles.yml").write_text(json.dumps(
        {"clv": {"target": "prod", "outputs": outputs}}))
    project = small_shop(tmp_path, {"clv_ensemble_size": 1})
    prod = _dbt(tmp_path, "run", "prod", project.vars)
    assert prod.success, prod.exception
    written = project.export.stat().st_mtime_ns
    ci_export = tmp_path / "ci" / "clv_predictions.parquet"
    ci_vars = {**project.vars, "clv_export_path": str(ci_export),
               "clv_model_dir": str(tmp_path / "ci" / "models")}
    state = ["--defer", "--state", str(tmp_path / "target_prod")]
    deferred = _dbt(tmp_path, "run", "dev", ci_vars, "--select", "clv_predictions_export", *state)
    assert not deferred.success
    messages = " ".join(str(r.message) for r in deferred.result)
    assert "clv_run_settings was built by another environment's run" in messages
    assert re.search(r"this run builds (\w+\.)?dev\.clv_predictions_export", messages)
    assert project.export.stat().st_mtime_ns == written and not ci_export.exists()
    own = _dbt(tmp_path, "run", "dev", ci_vars, "--select",
               "clv_run_settings clv_predictions_export", *state)
    assert own.success, [str(r.message) for r in own.result]
    assert ci_export.exists() and project.export.stat().st_mtime_ns == written


@pytest.mark.slow
def test_scores_of_one_date_are_never_published_as_of_another(tmp_path):
    """Features rebuilt at another as-of date (`dbt run -s +clv_scoring_examples`), then
    clv_predictions alone: the scores are still the earlier date's. The build stops, naming both
    dates, and clv_predictions keeps the rows it had. So does a new clv_as_of_date with nothing
    before clv_predictions rebuilt, `yesterday` included."""
    project = small_shop(tmp_path, {"clv_ensemble_size": 1})
    project.run("run", vars=project.vars)
    before = project.query("select as_of_date, count(*) as n from clv_predictions group by 1")
    earlier = {**project.vars, "clv_as_of_date": "2023-03-31"}
    project.run("run", vars=earlier, select="+clv_scoring_examples")
    alone = project.run("run", vars=earlier, select="clv_predictions")
    assert not alone.success
    messages = " ".join(str(r.message) for r in alone.result)
    assert "would label the scores of 2023-06-30 as of 2023-03-31" in messages
    after = project.query("select as_of_date, count(*) as n from clv_predictions group by 1")
    assert after.equals(before)
    # Nothing before clv_predictions rebuilt at the new date: the scores, the features and the
    # plan all agree on the earlier date, and only the var says otherwise.
    project.run("run", vars=project.vars, select="+clv_scoring_examples")
    later = {**project.vars, "clv_as_of_date": "2023-05-31"}
    stale = project.run("run", vars=later, select="clv_predictions+")
    assert not stale.success
    messages = " ".join(str(r.message) for r in stale.result)
    assert ("clv_as_of_date is 2023-05-31, but the scores clv_predictions would publish are of "
            "2023-06-30") in messages
    assert project.query("select distinct as_of_date from clv_predictions_history").shape[0] == 1
    assert project.query("select as_of_date, count(*) as n from clv_predictions group by 1"
                         ).equals(before)
    # `yesterday` is one date for the whole invocation (the day before it started): checked too
    from_clock = project.run("run", vars={**project.vars, "clv_as_of_date": "yesterday"},
                             select="clv_predictions")
    assert not from_clock.success
    assert "but the scores clv_predictions would publish are of 2023-06-30" in " ".join(
        str(r.message) for r in from_clock.result)
