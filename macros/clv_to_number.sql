{#- A double-precision number from text or a numeric column; null when it cannot be parsed. -#}
{% macro clv_to_number(expression) %}
    {{ return(adapter.dispatch('clv_to_number', 'clv')(expression)) }}
{% endmacro %}

{% macro default__clv_to_number(expression) %}
    {{ dbt.safe_cast(expression, 'double precision') }}
{% endmacro %}

{% macro duckdb__clv_to_number(expression) %}
    try_cast({{ expression }} as double)
{% endmacro %}
