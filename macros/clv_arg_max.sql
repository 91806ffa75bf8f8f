{#- The value of `value` on the row where `order_by` is largest, as an aggregate. -#}
{% macro clv_arg_max(value, order_by) %}
    {{ return(adapter.dispatch('clv_arg_max', 'clv')(value, order_by)) }}
{% endmacro %}

{% macro default__clv_arg_max(value, order_by) %}
    max_by({{ value }}, {{ order_by }})
{% endmacro %}

{% macro duckdb__clv_arg_max(value, order_by) %}
    arg_max({{ value }}, {{ order_by }})
{% endmacro %}

{% macro postgres__clv_arg_max(value, order_by) %}
    (array_agg({{ value }} order by {{ order_by }} desc))[1]
{% endmacro %}
