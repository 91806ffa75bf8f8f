"""Cumulative share of the validation spend captured by the top x % of customers per predictor,
beside a perfect ranking, per model (published as clv_gain_curve)."""

from clv.pipeline import evaluation
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    registry = connect(session).read(dbt.ref("int_clv__model_registry")).to_pandas()
    return evaluation.gain_curve_table(registry)
