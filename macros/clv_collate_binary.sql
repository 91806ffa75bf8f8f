{#-
    A text expression that sorts and compares by code point, as DuckDB and Spark compare text.
    Used where an order of text decides a result (ties, min/max, first of a sort), so the
    result does not depend on a PostgreSQL database's collation (en_US sorts 'b' before 'C').
-#}
{% macro clv_collate_binary(expression) %}
    {{ return(adapter.dispatch('clv_collate_binary', 'clv')(expression)) }}
{% endmacro %}

{% macro default__clv_collate_binary(expression) %}
    {{ expression }}
{% endmacro %}

{% macro postgres__clv_collate_binary(expression) %}
    ({{ expression }}) collate "C"
{% endmacro %}
