"""Cumulative share of the validation spend captured by the top x % of customers per predictor,
beside a perfect ranking, per model."""

from clv.pipeline import evaluation
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    registry = connect(session).read(dbt.ref("clv_model_registry")).to_pandas()
    return evaluation.gain_curve_table(registry)
