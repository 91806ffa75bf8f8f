"""Model inputs are declared: the settings row lists them, users add their own on purpose."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from clv.synthetic import GeneratorSettings, generate

SETTINGS = GeneratorSettings(n_customers=300, seed=21)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from conftest import FEATURE_MODELS, DbtProject

    workdir = tmp_path_factory.mktemp("declared")
    data = generate(SETTINGS)
    data.transactions.to_csv(workdir / "transactions.csv", index=False)
    customers = data.customers.copy()
    rng = np.random.default_rng(0)
    customers["loyalty_score"] = np.round(rng.uniform(0, 10, len(customers)), 2).astype(str)
    customers.loc[customers.index[:5], "loyalty_score"] = "n/a"  # not a number: null
    customers.to_csv(workdir / "customers.csv", index=False)
    project = DbtProject(workdir)
    project.vars = {"clv_transactions": str(workdir / "transactions.csv"),
                    "clv_customers": str(workdir / "customers.csv"),
                    "clv_extra_features": ["loyalty_score"], "clv_horizon_days": 180}
    project.customers = customers
    project.build(vars=project.vars, select=f"{FEATURE_MODELS} clv_run_settings")
    return project


@pytest.mark.slow
def test_extra_feature_reaches_the_examples_and_the_declared_list(built):
    settings = built.query("select * from clv_run_settings")
    declared = settings.static_features[0].split(",")
    assert "loyalty_score" in declared and declared == sorted(declared)
    assert settings.channels[0] == "orders,revenue,active_days"
    examples = built.query("select customer_id, loyalty_score from clv_scoring_examples")
    expected = pd.to_numeric(built.customers.set_index("customer_id").loyalty_score,
                             errors="coerce")
    merged = examples.set_index("customer_id").join(expected.rename("expected"))
    assert merged.loyalty_score.isna().sum() == merged.expected.isna().sum()
    np.testing.assert_allclose(merged.loyalty_score.dropna(), merged.expected.dropna())


@pytest.mark.slow
def test_every_numeric_example_column_is_declared_or_known(built):
    """The SQL layer and the declared list agree: no numeric column would be refused."""
    from clv.pipeline.registry import model_features
    from clv.pipeline.settings import RunSettings
    from clv.warehouse import DuckDBWarehouse

    with duckdb.connect(str(built.database)) as connection:
        warehouse = DuckDBWarehouse(connection)
        run = RunSettings.from_table(warehouse.read("clv_run_settings"))
        for table in ("clv_training_examples", "clv_scoring_examples"):
            features = model_features(warehouse.schema(table), run)
            assert "loyalty_score" in features
            assert len(features) == len(run.model_static_features) + 36


@pytest.mark.slow
def test_extra_features_without_customer_attributes_is_a_var_error(dbt_project, built):
    from dbt.exceptions import CompilationError

    vars_ = {**built.vars, "clv_customers": ""}
    with pytest.raises(CompilationError, match="Invalid value for var 'clv_extra_features'"):
        dbt_project.run("compile", vars=vars_, select="stg_clv__customers")


WARNING = "clv_extra_features_are_given_where_0_is_far_from_their_values"


@pytest.mark.slow
def test_missing_values_of_a_feature_far_from_0_warn(built, dbt_project, tmp_path):
    """A missing value reads as 0: a warning names the customers when 0 is far from the
    feature's values as the network scales them (a score near 50: ln(51) = 3.9, varying by
    0.04), not when it is among them (built: scores from 0 to 10)."""
    result = built.run("test", vars=built.vars, select=WARNING)
    assert [str(r.status) for r in result.result if r.node.name == WARNING] == ["pass"]

    customers = built.customers.copy()
    rng = np.random.default_rng(1)
    customers["loyalty_score"] = np.round(rng.normal(50, 2, len(customers)), 2).astype(str)
    customers.loc[customers.index[:5], "loyalty_score"] = "n/a"
    customers.loc[customers.index[5], "loyalty_score"] = "inf"
    customers.to_csv(tmp_path / "customers.csv", index=False)
    vars_ = {**built.vars, "clv_customers": str(tmp_path / "customers.csv")}
    from conftest import FEATURE_MODELS

    result = dbt_project.build(vars=vars_, select=f"{FEATURE_MODELS} {WARNING}")
    [warning] = [r for r in result.result if r.node.name == WARNING]
    scored = set(dbt_project.query("select customer_id from clv_scoring_examples").customer_id)
    missing = set(customers.customer_id[:6].astype(str)) & scored
    assert (str(warning.status), warning.failures) == ("warn", len(missing))
    assert missing, "some customers without a value are scored"
