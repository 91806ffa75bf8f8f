{#-
    The scoring query of int_clv__scoring_plan when int_clv__scores is to run it, else none
    (onnxruntime scored the run). Read at execution: the plan is built earlier in the run.
    Without clv_scoring_engine sql the plan is not read at all, and a plan table that does not
    exist yet (dbt compile or docs generate before the first build) reads as none, so those
    commands work on a fresh database.
-#}
{% macro clv_compiled_scoring_query(plan) %}
    {% if not clv_scores_in_sql_model() %}
        {{ return(none) }}
    {% endif %}
    {% if adapter.get_relation(database=plan.database, schema=plan.schema, identifier=plan.identifier) is none %}
        {{ return(none) }}
    {% endif %}
    {% set result = run_query("select scoring_sql from " ~ plan ~ " where in_sql_model") %}
    {{ return(result.columns[0].values()[0] if result.rows | length > 0 else none) }}
{% endmacro %}
