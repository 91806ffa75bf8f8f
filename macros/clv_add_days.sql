{#- `date_expression` moved by `days` (may be negative), as a date. -#}
{% macro clv_add_days(date_expression, days) %}
    cast({{ dbt.dateadd('day', days, date_expression) }} as date)
{% endmacro %}
