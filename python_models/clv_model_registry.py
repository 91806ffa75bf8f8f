"""Trains (or reuses) the CLV network and lists every exported model: one row per model."""

from clv import pipeline


def model(dbt, session):
    dbt.config(materialized="table")
    training = dbt.ref("clv_training_examples")
    run = pipeline.RunSettings.from_config({
        # dbt passes a config value to a Python model only where the model reads it literally.
        "clv_model_dir": dbt.config.get("clv_model_dir"),
        "clv_retrain": dbt.config.get("clv_retrain"),
        "clv_horizon_days": dbt.config.get("clv_horizon_days"),
        "clv_period_days": dbt.config.get("clv_period_days"),
        "clv_sequence_periods": dbt.config.get("clv_sequence_periods"),
        "clv_seed": dbt.config.get("clv_seed"),
    })
    return pipeline.train_or_reuse(training, run)
