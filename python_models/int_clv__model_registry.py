"""Training step: trains (or reuses) the CLV network and lists every saved model (published,
with its contract, as clv_model_registry)."""

from clv.pipeline import training
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.from_table(warehouse.read(dbt.ref("clv_run_settings")))
    return training.train_or_reuse(warehouse, dbt.ref("clv_training_examples"), run)
