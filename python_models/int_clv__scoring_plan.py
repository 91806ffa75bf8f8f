"""Scoring plan: the current model, BG/NBD + Gamma-Gamma fitted at the as-of date and, with
clv_scoring_engine: sql, the whole prediction compiled into one query (clv.sql_scoring) that
int_clv__scores runs. One row."""

from clv.pipeline import scoring
from clv.pipeline.registry import build_key
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.for_step(warehouse.read(dbt.ref("clv_run_settings")),
                               dbt.this)
    # the training step's own table: its is_current is the model this run scores with
    registry = warehouse.read(dbt.ref("int_clv__model_registry")).to_pandas()
    return scoring.plan(warehouse, dbt.ref("clv_scoring_examples"), registry, run,
                        build_key(warehouse, dbt.this)).to_table()
