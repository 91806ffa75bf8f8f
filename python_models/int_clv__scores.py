"""Scoring step: every customer at the as-of date through the current model, at the spend
level (clv.level), streamed in batches."""

from clv.pipeline import scoring
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.from_table(warehouse.read(dbt.ref("clv_run_settings")))
    # the training step's own table: its is_current is the model this run scores with
    registry = warehouse.read(dbt.ref("int_clv__model_registry")).to_pandas()
    return scoring.score(warehouse, dbt.ref("clv_scoring_examples"), registry, run)
