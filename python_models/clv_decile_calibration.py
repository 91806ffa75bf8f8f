"""Predicted against actual mean spend per prediction decile, per model and baseline."""

from clv import pipeline


def model(dbt, session):
    dbt.config(materialized="table")
    registry = dbt.ref("clv_model_registry").df()
    return pipeline.calibration_table(registry)
