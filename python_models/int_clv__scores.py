"""Scores clv_scoring_examples with the current ONNX model in onnxruntime, streamed in batches."""

from clv import pipeline


def model(dbt, session):
    dbt.config(materialized="table")
    registry = dbt.ref("clv_model_registry").df()
    scoring = dbt.ref("clv_scoring_examples")
    run = pipeline.RunSettings.from_config(dbt.config.get)
    return pipeline.score(scoring, registry, run)
