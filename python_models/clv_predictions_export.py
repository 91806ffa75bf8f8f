"""Writes clv_predictions to a Parquet file (clv_export_path), replaced atomically, so that BI
tools and other processes can read the predictions without opening the DuckDB file."""

from clv import pipeline


def model(dbt, session):
    dbt.config(materialized="table")
    predictions = dbt.ref("clv_predictions")
    # dbt passes a config value to a Python model only where the model reads it literally.
    path = pipeline.export_path(dbt.config.get("clv_export_path"))
    return pipeline.export_parquet(predictions.order("customer_id"), path)
