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
