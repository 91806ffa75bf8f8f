{#-
    The name of the 64-bit floating-point type: `double precision` (DuckDB, PostgreSQL) or
    `double` (Spark, which reads `double precision` as an error and whose dbt.type_float() is
    the 32-bit `float`).
-#}
{% macro clv_type_double() %}
    {{ return(adapter.dispatch('clv_type_double', 'clv')()) }}
{% endmacro %}

{% macro default__clv_type_double() %}
    {{ return('double precision') }}
{% endmacro %}

{% macro spark__clv_type_double() %}
    {{ return('double') }}
{% endmacro %}
