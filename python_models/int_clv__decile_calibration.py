"""Predicted against actual mean spend per prediction decile, per model and baseline (published
as clv_decile_calibration)."""

from clv.pipeline import evaluation
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    registry = connect(session).read(dbt.ref("int_clv__model_registry")).to_pandas()
    return evaluation.calibration_table(registry)
