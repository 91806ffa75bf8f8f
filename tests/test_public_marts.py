"""End to end on the shipped sample: the public marts as built, against their docs and
contracts (`dbt docs generate`'s catalog), and the segments and their summary recomputed in
pandas from the rules as the README states them."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from dbt.cli.main import dbtRunner

SEGMENTS = ["high_value", "new", "active", "at_risk", "dormant"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import PROJECT_DIR, DbtProject

    workdir = tmp_path_factory.mktemp("public_marts")
    project = DbtProject(workdir)
    project.vars = {"clv_model_dir": str(workdir / "models"), "clv_ensemble_size": 1,
                    "clv_export_path": str(workdir / "exports" / "clv_predictions.parquet")}
    project.build(vars=project.vars, select=None)
    previous = os.environ.get("CLV_DUCKDB_PATH")
    os.environ["CLV_DUCKDB_PATH"] = str(project.database)
    try:
        result = dbtRunner().invoke([
            "docs", "generate", "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROJECT_DIR), "--target-path", str(workdir / "target"),
            "--log-path", str(workdir / "logs"), "--vars", json.dumps(project.vars), "--quiet"])
    finally:
        if previous is None:
            os.environ.pop("CLV_DUCKDB_PATH", None)
        else:
            os.environ["CLV_DUCKDB_PATH"] = previous
    assert result.success, result.exception
    project.manifest = json.loads((workdir / "target" / "manifest.json").read_text())
    project.catalog = json.loads((workdir / "target" / "catalog.json").read_text())
    return project


def _models(manifest: dict) -> dict[str, dict]:
    return {node["unique_id"]: node for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["package_name"] == "clv"}


@pytest.mark.slow
def test_catalog_shows_every_public_column_described_and_no_documented_column_is_missing(
        project):
    assert project.catalog["errors"] is None
    for unique_id, node in _models(project.manifest).items():
        built = {name.lower() for name in project.catalog["nodes"][unique_id]["columns"]}
        documented = set(node["columns"])
        assert documented <= built, f"{node['name']}: documented but not built"
        if node["access"] == "public":
            assert built == documented, f"{node['name']}: built but not documented"


@pytest.mark.slow
def test_public_columns_have_their_contract_types(project):
    aliases = {"varchar": "VARCHAR", "double precision": "DOUBLE", "bigint": "BIGINT",
               "integer": "INTEGER", "date": "DATE", "timestamp": "TIMESTAMP",
               "timestamp with time zone": "TIMESTAMP WITH TIME ZONE", "boolean": "BOOLEAN"}
    for unique_id, node in _models(project.manifest).items():
        if not node["config"]["contract"]["enforced"]:
            continue
        built = project.catalog["nodes"][unique_id]["columns"]
        for name, spec in node["columns"].items():
            assert built[name]["type"] == aliases[spec["data_type"]], (node["name"], name)


def _segment(row: pd.Series) -> str:
    """The README's rules, in their order."""
    if row.value_decile <= 2:
        return "high_value"
    if row.t_days < 90:
        return "new"
    if row.purchase_probability >= 0.5:
        return "active"
    if row.purchase_probability >= 0.2:
        return "at_risk"
    return "dormant"


@pytest.mark.slow
def test_every_customer_is_in_the_segment_its_rules_give(project):
    predictions = project.query("""
        select predictions.*, examples.t_days
        from clv_predictions as predictions
        inner join clv_scoring_examples as examples using (customer_id)""")
    assert len(predictions) == len(project.query("select customer_id from clv_predictions"))
    expected = predictions.apply(_segment, axis=1)
    assert (predictions.segment == expected).all()
    counts = predictions.segment.value_counts()
    assert set(counts.index) == set(SEGMENTS)  # the sample fills every segment
    assert counts["high_value"] == int(np.ceil(len(predictions) * 0.2))


@pytest.mark.slow
def test_segment_summary_matches_a_pandas_recomputation(project):
    from reference import segment_total_range

    predictions = project.query("""
        select p.*, s.predicted_clv_variance
        from clv_predictions as p join int_clv__scores as s using (customer_id)""")
    summary = project.query("select * from clv_segment_summary order by segment_order")
    assert list(summary.segment) == SEGMENTS
    assert list(summary.segment_order) == [1, 2, 3, 4, 5]
    level_log_sd = project.query("select level_log_sd from clv_model_registry "
                                 "where is_current").level_log_sd[0]
    assert level_log_sd > 0  # the sample's level has backtests
    groups = predictions.groupby("segment").agg(
        customers=("customer_id", "size"), total=("predicted_clv", "sum"),
        mean=("predicted_clv", "mean"), probability=("purchase_probability", "mean"),
    ).reindex(SEGMENTS)
    # the network's validation bias per value decile, beyond its overall bias, within -2..2
    deciles = project.query("select decile, customers, mean_predicted, mean_actual from "
                            "int_clv__decile_calibration where predictor = 'network' and "
                            "model_version = (select model_version from clv_model_registry "
                            "where is_current)")
    overall = np.log((deciles.customers * deciles.mean_actual).sum()
                     / (deciles.customers * deciles.mean_predicted).sum())
    bias = dict(zip(deciles.decile, np.clip(np.log(np.maximum(deciles.mean_actual, 1e-300)
                                                   / np.maximum(deciles.mean_predicted, 1e-300))
                                            - overall, -2, 2), strict=True))
    assert len(bias) == 10 and max(abs(b) for b in bias.values()) > 0
    predictions["decile_bias"] = predictions.value_decile.map(bias)
    ranges = {segment: segment_total_range(rows.predicted_clv, rows.predicted_clv_variance,
                                           rows.purchase_probability, level_log_sd,
                                           rows.decile_bias)
              for segment, rows in predictions.groupby("segment")}
    groups["p10"] = [ranges[segment][0] for segment in SEGMENTS]
    groups["p90"] = [ranges[segment][1] for segment in SEGMENTS]
    assert summary.customers.tolist() == groups.customers.tolist()
    np.testing.assert_allclose(summary.share_of_customers, groups.customers / len(predictions),
                               rtol=1e-12)
    np.testing.assert_allclose(summary.total_predicted_clv, groups.total, rtol=1e-9)
    np.testing.assert_allclose(summary.share_of_predicted_clv,
                               groups.total / predictions.predicted_clv.sum(), rtol=1e-9)
    np.testing.assert_allclose(summary.total_predicted_clv_p10, groups.p10, rtol=1e-9)
    np.testing.assert_allclose(summary.total_predicted_clv_p90, groups.p90, rtol=1e-9)
    np.testing.assert_allclose(summary.mean_predicted_clv, groups["mean"], rtol=1e-9)
    np.testing.assert_allclose(summary.mean_purchase_probability, groups.probability,
                               rtol=1e-9)
    assert (summary.total_predicted_clv_p10 <= summary.total_predicted_clv_p90).all()
    assert (summary.total_predicted_clv_p10 <= summary.total_predicted_clv).all()
    run = predictions[["as_of_date", "horizon_days", "model_version"]].drop_duplicates()
    assert len(run) == 1
    assert (summary[run.columns].drop_duplicates().to_numpy() == run.to_numpy()).all()


@pytest.mark.slow
def test_total_summary_matches_a_pandas_recomputation(project):
    """The whole total and its range: the customers' randomness and the level's, without the
    segments' sharing-out term, which moves value between segments, not the total."""
    from reference import segment_total_range

    predictions = project.query("""
        select p.*, s.predicted_clv_variance
        from clv_predictions as p join int_clv__scores as s using (customer_id)""")
    total = project.query("select * from clv_total_summary")
    segments = project.query("select * from clv_segment_summary")
    registry = project.query("select model_version, level_log_sd from clv_model_registry "
                             "where is_current")
    assert len(total) == 1
    row = total.iloc[0]
    assert row.model_version == registry.model_version[0]
    assert row.level_log_sd == pytest.approx(registry.level_log_sd[0], rel=1e-12)
    assert row.customers == len(predictions) == segments.customers.sum()
    assert row.total_predicted_clv == pytest.approx(predictions.predicted_clv.sum(), rel=1e-9)
    assert row.total_predicted_clv == pytest.approx(segments.total_predicted_clv.sum(), rel=1e-9)
    p10, p90 = segment_total_range(predictions.predicted_clv, predictions.predicted_clv_variance,
                                   predictions.purchase_probability, registry.level_log_sd[0])
    assert 0 < p10 < row.total_predicted_clv < p90
    assert row.total_predicted_clv_p10 == pytest.approx(p10, rel=1e-9)
    assert row.total_predicted_clv_p90 == pytest.approx(p90, rel=1e-9)
    assert row.expected_buyers == pytest.approx(predictions.purchase_probability.sum(), rel=1e-9)
    assert row.mean_predicted_clv == pytest.approx(predictions.predicted_clv.mean(), rel=1e-9)
    assert row.mean_purchase_probability == pytest.approx(
        predictions.purchase_probability.mean(), rel=1e-9)
    assert (row.as_of_date, row.horizon_days) == (predictions.as_of_date[0],
                                                  predictions.horizon_days[0])


@pytest.mark.slow
def test_a_customer_over_a_tenth_of_the_total_is_named_by_the_level_warning(dbt_project):
    """clv_predictions_no_customer_holds_a_tenth (severity warn): the customers predicted to
    hold more than a tenth of the total, whose own value rests on the network alone (the spend
    level counts each as a tenth of its capped totals, clv.level rule 7), when more than ten
    customers have a value."""
    import duckdb

    test = ("{{ test_clv_no_dominant_customer(model='predictions', column='predicted_clv', "
            "share=0.1) }}")
    result = dbt_project.run("compile", extra=["--inline", test])
    sql = result.result.results[0].node.compiled_code
    with duckdb.connect() as connection:
        # ten customers or fewer with a value: each holds a tenth or more, nobody stands out
        for shares, flagged in (([90.0] + [1.0] * 10, ["a"]), ([9.0] * 10 + [10.0], []),
                                ([0.0, 0.0], []), ([90.0, 5.0, 5.0], []),
                                ([90.0, 0.0] + [1.0] * 9, [])):
            values = [(chr(ord("a") + i), v) for i, v in enumerate(shares)]
            connection.execute("create or replace table predictions (customer_id varchar, "
                               "predicted_clv double)")
            connection.executemany("insert into predictions values (?, ?)", values)
            assert [row[0] for row in connection.sql(sql).fetchall()] == flagged, shares


@pytest.mark.slow
def test_a_predicted_value_that_is_not_finite_fails_the_build(project, tmp_path):
    """NaN passes `predicted_clv >= 0` in DuckDB (it sorts above every number): the finite
    tests of clv_predictions catch it and infinity."""
    import shutil

    import duckdb
    from conftest import DbtProject

    copy = DbtProject(tmp_path)
    shutil.copy(project.database, copy.database)
    with duckdb.connect(str(copy.database)) as connection:
        connection.execute("update main.clv_predictions set predicted_clv = 'nan' where "
                           "customer_id = (select min(customer_id) from main.clv_predictions)")
        connection.execute("update main.clv_predictions set predicted_clv_p90 = 'inf' where "
                           "customer_id = (select max(customer_id) from main.clv_predictions)")
    result = copy.run("test", vars=project.vars, select="clv_predictions,test_name:clv_finite")
    failed = sorted(r.node.column_name for r in result.result if str(r.status) == "fail")
    assert failed == ["predicted_clv", "predicted_clv_p90"]
