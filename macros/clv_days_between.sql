{#- Whole days from `start_date` to `end_date` (positive when end is later). -#}
{% macro clv_days_between(start_date, end_date) %}
    {{ return(adapter.dispatch('clv_days_between', 'clv')(start_date, end_date)) }}
{% endmacro %}

{% macro default__clv_days_between(start_date, end_date) %}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{% endmacro %}

{#- dbt's Spark datediff wraps both dates in a not-null assertion; datediff needs none. -#}
{% macro spark__clv_days_between(start_date, end_date) %}
    datediff(cast({{ end_date }} as date), cast({{ start_date }} as date))
{% endmacro %}
