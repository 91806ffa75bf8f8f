{#-
    Returns one row per exclusion reason with a non-zero count, so `dbt build` reports how
    many source rows were left out and why. Configured with severity warn (data problems are
    reported, not fatal) and fail_calc `coalesce(sum(rows), 0)`, so the count dbt shows is the
    number of rows left out (models/4_marts/_marts__models.yml).
-#}
{% test clv_no_excluded_rows(model) %}

select reason, rows, example_value
from {{ model }}
where rows > 0

{% endtest %}
