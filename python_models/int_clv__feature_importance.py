"""How much each model relies on each feature group: permutation importance on the validation
cutoff, computed at training time and read from the model's metadata (published as
clv_feature_importance)."""

from clv.pipeline import explanations
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    registry = connect(session).read(dbt.ref("int_clv__model_registry")).to_pandas()
    return explanations.feature_importance_table(registry)
