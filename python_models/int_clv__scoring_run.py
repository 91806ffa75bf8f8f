"""Scoring run: the record of what produced int_clv__scores (model, BTYD fit, spend level),
saved under <clv_model_dir>/runs/ for clv.pipeline.scoring.predict and read by the
explanations step. One row, the record's JSON in scoring_run."""

from clv.pipeline import scoring
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.for_step(warehouse.read(dbt.ref("clv_run_settings")),
                               dbt.this)
    plan = scoring.ScoringPlan.from_table(warehouse.read(dbt.ref("int_clv__scoring_plan")))
    return scoring.run_table(scoring.record(warehouse, dbt.ref("int_clv__scores"), plan,
                                            run.model_dir))
