{#- Fails for every row where the boolean `expression` is false (a business rule). -#}
{% test clv_expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
