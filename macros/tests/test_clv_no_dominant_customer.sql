{#-
    Returns the customers whose predicted value alone is more than `share` of the predicted
    total. Such a customer (a wholesaler among shoppers) counts as a tenth of the totals the
    spend level reads (clv.level rule 7), so the others' values do not follow the network's
    error on it, but its own prediction rests on the network alone. Configured with severity
    warn on clv_predictions: the console then counts those customers, and the README says what
    to do. With no more customers of a positive value than 1 / `share` (ten), someone always
    holds that share and nobody stands out: nothing is returned.
-#}
{% test clv_no_dominant_customer(model, column, share) %}

with

totals as (

    select
        sum({{ column }}) as total,
        count(case when {{ column }} > 0 then 1 end) as valued

    from {{ model }}

)

select
    predictions.customer_id,
    predictions.{{ column }},
    totals.total

from {{ model }} as predictions
cross join totals
where totals.total > 0
    and totals.valued * {{ share }} > 1
    and predictions.{{ column }} > {{ share }} * totals.total

{% endtest %}
