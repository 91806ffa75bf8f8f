{#- Fails for every row where `column_name` is NaN or infinite (a null passes: not_null checks
    nulls). NaN passes comparisons such as `>= 0` in DuckDB and PostgreSQL, where it sorts
    above every number. -#}
{% test clv_finite(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} is not null and not {{ clv_is_finite(column_name) }}

{% endtest %}
