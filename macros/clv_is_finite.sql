{#- True when a floating-point value is neither NaN nor infinite. -#}
{% macro clv_is_finite(expression) %}
    {{ return(adapter.dispatch('clv_is_finite', 'clv')(expression)) }}
{% endmacro %}

{#- NaN equals itself in PostgreSQL and sorts above infinity, so the bound rejects it. -#}
{% macro default__clv_is_finite(expression) %}
    ({{ expression }} = {{ expression }} and abs({{ expression }}) < cast('Infinity' as {{ clv_type_double() }}))
{% endmacro %}

{% macro duckdb__clv_is_finite(expression) %}
    isfinite({{ expression }})
{% endmacro %}

{% macro spark__clv_is_finite(expression) %}
    (not isnan({{ expression }}) and abs({{ expression }}) < cast('Infinity' as double))
{% endmacro %}
