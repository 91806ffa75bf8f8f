"""Explanations step: for every scored customer, the three feature groups that move the
prediction most away from the reference customer's, in currency (clv.explain); after scoring,
whose run (int_clv__scoring_run) supplies the BTYD fit and the spend factor (published as
clv_prediction_explanations)."""

from clv.pipeline import explanations
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.for_step(warehouse.read(dbt.ref("clv_run_settings")),
                               dbt.this)
    registry = warehouse.read(dbt.ref("int_clv__model_registry")).to_pandas()
    return explanations.explain(warehouse, dbt.ref("clv_scoring_examples"),
                                warehouse.read(dbt.ref("int_clv__scoring_run")), registry, run)
