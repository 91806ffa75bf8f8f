{#- True when a floating-point value is neither NaN nor infinite. -#}
{% macro clv_is_finite(expression) %}
    {{ return(adapter.dispatch('clv_is_finite', 'clv')(expression)) }}
{% endmacro %}

{% macro default__clv_is_finite(expression) %}
    ({{ expression }} = {{ expression }} and abs({{ expression }}) < cast('Infinity' as double precision))
{% endmacro %}

{% macro duckdb__clv_is_finite(expression) %}
    isfinite({{ expression }})
{% endmacro %}
