{#- `date_expression` moved by `days` (may be negative), as a date. -#}
{% macro clv_add_days(date_expression, days) %}
    {{ return(adapter.dispatch('clv_add_days', 'clv')(date_expression, days)) }}
{% endmacro %}

{% macro default__clv_add_days(date_expression, days) %}
    cast({{ dbt.dateadd('day', days, date_expression) }} as date)
{% endmacro %}

{#- dbt's Spark dateadd goes through unix timestamps; date_add is exact and takes an int. -#}
{% macro spark__clv_add_days(date_expression, days) %}
    date_add(cast({{ date_expression }} as date), cast({{ days }} as int))
{% endmacro %}
