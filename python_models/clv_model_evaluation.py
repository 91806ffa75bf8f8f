"""Validation metrics of every model beside the BTYD and naive baselines, from its metadata."""

from clv import pipeline


def model(dbt, session):
    dbt.config(materialized="table")
    registry = dbt.ref("clv_model_registry").df()
    return pipeline.evaluation_table(registry)
