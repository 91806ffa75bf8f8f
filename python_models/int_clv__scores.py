"""Scores clv_scoring_examples with the current ONNX model in onnxruntime, streamed in batches."""

from clv import pipeline


def model(dbt, session):
    dbt.config(materialized="table")
    registry = dbt.ref("clv_model_registry").df()
    scoring = dbt.ref("clv_scoring_examples")
    run = pipeline.RunSettings.from_config({
        # dbt passes a config value to a Python model only where the model reads it literally.
        "clv_model_dir": dbt.config.get("clv_model_dir"),
        "clv_retrain": dbt.config.get("clv_retrain"),
        "clv_horizon_days": dbt.config.get("clv_horizon_days"),
        "clv_period_days": dbt.config.get("clv_period_days"),
        "clv_sequence_periods": dbt.config.get("clv_sequence_periods"),
        "clv_seed": dbt.config.get("clv_seed"),
    })
    return pipeline.score(scoring, registry, run)
