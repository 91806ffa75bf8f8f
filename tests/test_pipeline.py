"""End to end: dbt build trains, exports, scores and evaluates; re-runs reuse the saved model."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pytest

from clv import hybrid
from clv.data import FeatureSpec, model_inputs
from clv.pipeline import scoring
from clv.synthetic import GeneratorSettings, generate

SEGMENTS = {"high_value", "new", "at_risk", "dormant", "active"}
PREDICTION_COLUMNS = [
    "customer_id", "as_of_date", "horizon_days", "predicted_clv", "purchase_probability",
    "predicted_clv_p10", "predicted_clv_p50", "predicted_clv_p90", "value_decile", "segment",
    "btyd_expected_spend", "model_version", "scored_at",
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import DbtProject

    workdir = tmp_path_factory.mktemp("pipeline")
    data = generate(GeneratorSettings(
        n_customers=600, start_date=date(2021, 1, 1), end_date=date(2023, 12, 31), seed=3,
    ))
    path = workdir / "transactions.csv"
    data.transactions.to_csv(path, index=False)
    vars_ = {
        "clv_transactions": str(path), "clv_horizon_days": 180,
        "clv_model_dir": str(workdir / "models"),
        "clv_export_path": str(workdir / "exports" / "clv_predictions.parquet"),
        "clv_report_path": str(workdir / "reports" / "clv_report.html"),
        # One network: the ensemble's own path is built end to end by test_closed_cohort and
        # exported by test_export; here the pipeline's steps are under test.
        "clv_ensemble_size": 1,
    }
    project = DbtProject(workdir)
    project.vars = vars_
    project.build(vars=vars_, select=None)
    return project


def _predictions(project) -> pa.Table:
    return project.query("select * from clv_predictions order by customer_id")


@pytest.mark.slow
def test_build_writes_predictions_for_every_scored_customer(project):
    predictions = _predictions(project)
    examples = project.query("select customer_id from clv_scoring_examples order by customer_id")
    assert list(predictions.columns) == PREDICTION_COLUMNS
    assert list(predictions.customer_id) == list(examples.customer_id)
    assert predictions.predicted_clv.between(0, 1e7).all()
    assert predictions.purchase_probability.between(0, 1).all()
    assert (predictions.predicted_clv_p10 <= predictions.predicted_clv_p50).all()
    assert (predictions.predicted_clv_p50 <= predictions.predicted_clv_p90).all()
    assert set(predictions.value_decile) == set(range(1, 11))
    assert set(predictions.segment) <= SEGMENTS
    top = predictions[predictions.value_decile == 1].predicted_clv.min()
    assert top >= predictions[predictions.value_decile == 2].predicted_clv.max()


@pytest.mark.slow
def test_every_run_is_evaluated_against_the_baselines(project):
    registry = project.query("select * from clv_model_registry")
    assert len(registry) == 1 and registry.is_current.all()
    evaluation = project.query("select * from clv_model_evaluation")
    assert set(evaluation.predictor) == {
        "network", "bgnbd_gamma_gamma", "naive_last_horizon", "naive_average_rate"}
    assert evaluation.normalized_gini.between(-1, 1).all()
    calibration = project.query("select * from clv_decile_calibration")
    assert len(calibration) == 4 * 10


def _scoring_run(project) -> Path:
    version = project.query(
        "select model_version from clv_model_registry where is_current").model_version[0]
    return scoring.find_run(Path(project.vars["clv_model_dir"]), version,
                            str(_predictions(project).as_of_date[0])[:10])


@pytest.mark.slow
def test_scoring_plan_and_run_are_tables_of_the_build(project):
    """onnxruntime scored (the default on DuckDB): the plan holds the BTYD fit and no query,
    int_clv__scores passes int_clv__python_scores on, and int_clv__scoring_run holds the
    saved scoring run."""
    plan = scoring.ScoringPlan.from_table(pa.Table.from_pandas(
        project.query("select * from int_clv__scoring_plan"), preserve_index=False))
    saved = scoring.ScoringRun.load(_scoring_run(project))
    assert (plan.scoring_engine, plan.scoring_sql, plan.in_sql_model) == \
        ("onnxruntime", None, False)
    assert (plan.model_version, plan.as_of_date) == (saved.model_version, saved.as_of_date)
    assert json.dumps(plan.btyd_fit.to_dict()) == json.dumps(saved.btyd_fit.to_dict())
    row = project.query("select * from int_clv__scoring_run")
    record = scoring.ScoringRun.from_table(pa.Table.from_pandas(row, preserve_index=False))
    assert json.dumps(record.to_dict()) == json.dumps(saved.to_dict())
    assert Path(project.vars["clv_model_dir"], row.scoring_run_file[0]) == _scoring_run(project)
    assert project.query("select count(*) as n from int_clv__python_scores").n[0] == \
        plan.customers == len(_predictions(project))


@pytest.mark.slow
def test_onnx_file_reproduces_network_scores_in_plain_onnxruntime(project):
    registry = project.query("select onnx_path from clv_model_registry where is_current")
    onnx_path = Path(registry.onnx_path[0])
    metadata = json.loads(onnx_path.with_suffix(".json").read_text())
    run = json.loads(_scoring_run(project).read_text())
    examples = pa.Table.from_pandas(
        project.query("select * from clv_scoring_examples order by customer_id"),
        preserve_index=False)
    btyd = hybrid.predict(examples, metadata["horizon_days"],
                          hybrid.BTYDFit.from_dict(run["btyd_fit"]))
    examples = hybrid.with_btyd_features(examples, btyd)
    static, sequence = model_inputs(examples, FeatureSpec.from_dict(metadata))

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    network_clv = session.run(["network_clv"], {"static": static, "sequence": sequence})[0]
    scores = project.query("select * from int_clv__scores order by customer_id")
    np.testing.assert_allclose(network_clv, scores.network_clv, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(btyd.expected_spend, scores.btyd_expected_spend, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("subset", [1, 50, None])
def test_scoring_outside_dbt_reproduces_clv_predictions(project, subset):
    """The README's recipe: any subset of customers, scored from the saved scoring run, gets
    the clv_predictions values exactly: the BTYD fit and the spend level are read from the run,
    never refitted on the subset, and a row's network outputs do not depend on its batch
    (clv.score.run_rows)."""
    examples = project.query("select * from clv_scoring_examples order by customer_id")
    if subset is not None:
        examples = examples.sample(n=subset, random_state=subset)
    predicted = scoring.predict(pa.Table.from_pandas(examples, preserve_index=False),
                                _scoring_run(project)).to_pandas().set_index("customer_id")
    expected = _predictions(project).set_index("customer_id").loc[predicted.index]
    for column in ("btyd_expected_spend", "predicted_clv", "predicted_clv_p10",
                   "predicted_clv_p50", "predicted_clv_p90", "purchase_probability"):
        np.testing.assert_array_equal(predicted[column], expected[column], err_msg=column)
    assert (predicted["scored_at"] == expected["scored_at"]).all()


@pytest.mark.slow
def test_predicted_clv_is_network_clv_at_the_saved_spend_level(project):
    scores = project.query("select * from int_clv__scores order by customer_id")
    predictions = _predictions(project)
    run = json.loads(_scoring_run(project).read_text())
    registry = project.query("select btyd_level_correction, network_level_weight "
                             "from clv_model_registry where is_current")
    correction = registry.btyd_level_correction[0]
    weight = registry.network_level_weight[0]
    # each a share (1 - network share, network share) of a correction within 0.5..2
    assert 0 < correction <= 2.0 and 0 <= weight <= 2.0
    assert run["level"]["btyd_level_correction"] == correction
    assert run["level"]["network_level_weight"] == weight
    factor = correction * scores.btyd_expected_spend.sum() / scores.network_clv.sum() + weight
    assert run["level"]["spend_factor"] == pytest.approx(factor, rel=1e-9)
    np.testing.assert_array_equal(predictions.predicted_clv, scores.predicted_clv)
    np.testing.assert_allclose(predictions.predicted_clv, scores.network_clv * factor, rtol=1e-9)
    # the total: the corrected BG/NBD total plus the network's share of its own
    np.testing.assert_allclose(predictions.predicted_clv.sum(),
                               correction * predictions.btyd_expected_spend.sum()
                               + weight * scores.network_clv.sum(), rtol=1e-7)
    np.testing.assert_array_equal(predictions.purchase_probability, scores.purchase_probability)


@pytest.mark.slow
def test_rerun_reuses_the_model_and_never_rescoring_is_identical(project):
    before = _predictions(project)
    project.build(vars=project.vars, select=None)  # auto: same settings and data, no training
    project.build(vars={**project.vars, "clv_retrain": "never"}, select=None)
    registry = project.query("select model_version from clv_model_registry")
    assert len(registry) == 1
    after = _predictions(project)
    assert list(after.model_version.unique()) == list(before.model_version.unique())
    np.testing.assert_array_equal(after.predicted_clv.to_numpy(), before.predicted_clv.to_numpy())


@pytest.mark.slow
def test_retraining_with_the_same_seed_gives_identical_predictions(project):
    before = _predictions(project)
    project.build(vars={**project.vars, "clv_retrain": "always"}, select=None)
    assert len(project.query("select * from clv_model_registry")) == 2
    after = _predictions(project)
    assert after.model_version[0] != before.model_version[0]
    np.testing.assert_array_equal(after.predicted_clv.to_numpy(), before.predicted_clv.to_numpy())


@pytest.mark.slow
def test_never_without_a_saved_model_is_a_clear_error(dbt_project, tmp_path, project):
    vars_ = {**project.vars, "clv_model_dir": str(tmp_path / "empty"), "clv_retrain": "never"}
    result = dbt_project.build(vars=vars_, select=None, expect_success=False)
    assert not result.success
    messages = " ".join(str(r.message) for r in result.result)
    assert "clv_retrain is 'never'" in messages


@pytest.mark.slow
def test_sql_scoring_engine_predicts_what_onnxruntime_predicts(project, tmp_path):
    """clv_scoring_engine: sql on a copy of the built project: the compiled query runs in
    DuckDB, is kept under runs/ with its sha256 in the scoring run, and clv_predictions equals
    the onnxruntime build's (tests/parity.py)."""
    from conftest import DbtProject
    from parity import assert_scores_match

    from clv.artifacts import sha256_file

    copy = DbtProject(tmp_path)
    project.query("checkpoint")  # everything in the file, nothing left in its WAL
    shutil.copyfile(project.database, copy.database)
    model_dir = tmp_path / "models"
    shutil.copytree(project.vars["clv_model_dir"], model_dir)
    run_vars = {**project.vars, "clv_model_dir": str(model_dir), "clv_scoring_engine": "sql"}
    copy.build(vars=run_vars, select="clv_run_settings int_clv__scoring_plan+")

    expected = _predictions(project)
    got = copy.query("select * from clv_predictions order by customer_id")
    assert list(got.columns) == PREDICTION_COLUMNS
    assert_scores_match(got, expected, "clv_predictions (sql)")
    assert (got.value_decile == expected.value_decile).mean() > 0.99
    version = expected.model_version[0]
    as_of = str(expected.as_of_date[0])[:10]
    # the copy is a build of its own (another database): its run beside the original's
    run_file = copy.query("select scoring_run_file from int_clv__scoring_run").scoring_run_file[0]
    record = scoring.ScoringRun.load(model_dir / run_file)
    assert Path(run_file) != scoring.find_run(Path(project.vars["clv_model_dir"]), version,
                                        as_of).relative_to(project.vars["clv_model_dir"])
    with pytest.raises(ValueError, match="2 builds saved a scoring run"):
        scoring.find_run(model_dir, version, as_of)
    assert record.scoring_engine == "sql"
    query = model_dir / "runs" / record.scoring_sql
    assert query.name.endswith(".duckdb.sql")
    assert sha256_file(query) == record.scoring_sql_sha256
    assert str(tmp_path) not in query.read_text()  # no path of this machine in the query
    # dbt ran the query as the SQL model int_clv__scores; the Python scoring step scored nobody
    plan = copy.query("select scoring_sql, scoring_sql_sha256, in_sql_model "
                      "from int_clv__scoring_plan")
    assert plan.in_sql_model[0] and plan.scoring_sql[0] == query.read_text()
    assert plan.scoring_sql_sha256[0] == record.scoring_sql_sha256
    assert copy.query("select count(*) as n from int_clv__python_scores").n[0] == 0
    assert copy.query("select table_type from information_schema.tables "
                      "where table_name = 'int_clv__scores'").table_type[0] == "BASE TABLE"
    assert (got.scored_at.astype(str) == record.scored_at.replace("T", " ")).all()


@pytest.mark.slow
def test_sql_engine_falls_back_to_onnxruntime_outside_the_query_range(project, tmp_path,
                                                                       monkeypatch):
    """clv_scoring_engine: sql with a BTYD fit the query does not evaluate: the plan says why,
    the Python scoring step scores with onnxruntime, int_clv__scores passes its rows on, and
    clv_predictions is the onnxruntime build's."""
    from conftest import DbtProject

    from clv.sql_scoring import query as compiled

    def outside(*args, **kwargs):
        raise compiled.OutsideSqlRange("a fit outside the series' range (injected)")

    monkeypatch.setattr(compiled, "compile_scoring_sql", outside)
    copy = DbtProject(tmp_path)
    project.query("checkpoint")
    shutil.copyfile(project.database, copy.database)
    model_dir = tmp_path / "models"
    shutil.copytree(project.vars["clv_model_dir"], model_dir)
    run_vars = {**project.vars, "clv_model_dir": str(model_dir), "clv_scoring_engine": "sql"}
    copy.build(vars=run_vars, select="clv_run_settings int_clv__scoring_plan+")

    plan = copy.query("select scoring_engine, scoring_sql, in_sql_model, note "
                      "from int_clv__scoring_plan")
    assert plan.scoring_engine[0] == "onnxruntime" and not plan.in_sql_model[0]
    assert plan.scoring_sql[0] is None and "(injected)" in plan.note[0]
    expected = _predictions(project)
    assert copy.query("select count(*) as n from int_clv__python_scores").n[0] == len(expected)
    got = copy.query("select * from clv_predictions order by customer_id")
    for column in ("predicted_clv", "purchase_probability", "predicted_clv_p90", "value_decile"):
        np.testing.assert_array_equal(got[column], expected[column], err_msg=column)
    assert copy.query("select scoring_engine from int_clv__scoring_run").scoring_engine[0] == \
        "onnxruntime"
