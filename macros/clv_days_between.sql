{#- Whole days from `start_date` to `end_date` (positive when end is later). -#}
{% macro clv_days_between(start_date, end_date) %}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{% endmacro %}
