"""Trains (or reuses) the CLV network and lists every exported model: one row per model."""

from clv import pipeline


def model(dbt, session):
    dbt.config(materialized="table")
    training = dbt.ref("clv_training_examples")
    run = pipeline.RunSettings.from_config(dbt.config.get)
    return pipeline.train_or_reuse(training, run)
