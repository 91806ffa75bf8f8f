{#-
    The scoring query of int_clv__scoring_plan when int_clv__scores is to run it, else none
    (onnxruntime scored the run). Read at execution: the plan is built earlier in the run.
-#}
{% macro clv_compiled_scoring_query(plan) %}
    {% set result = run_query("select scoring_sql from " ~ plan ~ " where in_sql_model") %}
    {{ return(result.columns[0].values()[0] if result.rows | length > 0 else none) }}
{% endmacro %}
