"""Training step: trains (or reuses) the CLV network under the model directory's lock and lists
the saved models of this warehouse's data and settings (published, with its contract, as
clv_model_registry). It also deletes this warehouse's models beyond clv_keep_models, keeping
every model behind clv_predictions and clv_predictions_history as the previous build left them
(read where clv_run_settings says this build writes them: they are built after this step)."""

from clv.pipeline import registry
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.for_step(warehouse.read(dbt.ref("clv_run_settings")),
                               dbt.this)
    return registry.train_and_list(warehouse, dbt.ref("clv_training_examples"),
                                   dbt.ref("int_clv__customer_days"), run, dbt.this)
