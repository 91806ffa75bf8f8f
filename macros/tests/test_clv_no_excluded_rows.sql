{#-
    Returns one row per exclusion reason with a non-zero count, so `dbt build` reports how
    many source rows were left out and why. Configured with severity warn: data problems are
    reported, not fatal.
-#}
{% test clv_no_excluded_rows(model) %}

select reason, rows, example_value
from {{ model }}
where rows > 0

{% endtest %}
