{#-
    The value of `value` on the row where `order_by` is largest, as an aggregate. Rows where
    `order_by` is null are ignored, as DuckDB's arg_max and Spark's max_by ignore them.
-#}
{% macro clv_arg_max(value, order_by) %}
    {{ return(adapter.dispatch('clv_arg_max', 'clv')(value, order_by)) }}
{% endmacro %}

{% macro default__clv_arg_max(value, order_by) %}
    max_by({{ value }}, {{ order_by }})
{% endmacro %}

{% macro duckdb__clv_arg_max(value, order_by) %}
    arg_max({{ value }}, {{ order_by }})
{% endmacro %}

{#- order by ... desc puts nulls first in PostgreSQL: the filter leaves them out. -#}
{% macro postgres__clv_arg_max(value, order_by) %}
    (array_agg({{ value }} order by {{ order_by }} desc) filter (where {{ order_by }} is not null))[1]
{% endmacro %}
