{#-
    A double rounded to `digits` decimals (half away from zero), as a double. PostgreSQL has
    round(numeric, integer) only, so the value goes through numeric there.
-#}
{% macro clv_round(expression, digits) %}
    {{ return(adapter.dispatch('clv_round', 'clv')(expression, digits)) }}
{% endmacro %}

{% macro default__clv_round(expression, digits) %}
    round({{ expression }}, {{ digits }})
{% endmacro %}

{% macro postgres__clv_round(expression, digits) %}
    cast(round(cast({{ expression }} as numeric), {{ digits }}) as double precision)
{% endmacro %}
