"""Writes clv_predictions to a Parquet file (clv_export_path), replaced atomically, so that BI
tools and other processes can read the predictions without opening the database."""

from clv.pipeline import handoff
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.for_step(warehouse.read(dbt.ref("clv_run_settings")),
                               dbt.this)
    return handoff.export_predictions(warehouse, dbt.ref("clv_predictions"), run.export_path)
