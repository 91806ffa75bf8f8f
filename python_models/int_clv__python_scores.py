"""Python scoring step: every customer at the as-of date through the plan's model with
onnxruntime, at the spend level (clv.level), streamed in batches; on Spark with
clv_scoring_engine: sql, the plan's query in stages. No rows when int_clv__scores runs the
compiled query itself."""

from clv.pipeline import scoring
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.for_step(warehouse.read(dbt.ref("clv_run_settings")),
                               dbt.this)
    registry = warehouse.read(dbt.ref("int_clv__model_registry")).to_pandas()
    return scoring.score(warehouse, dbt.ref("clv_scoring_examples"), registry, run,
                         scoring.ScoringPlan.from_table(
                             warehouse.read(dbt.ref("int_clv__scoring_plan"))))
