"""Validation metrics of every model beside the BTYD and naive baselines, from its metadata
(published as clv_model_evaluation)."""

from clv.pipeline import evaluation
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    registry = connect(session).read(dbt.ref("int_clv__model_registry")).to_pandas()
    return evaluation.evaluation_table(registry)
