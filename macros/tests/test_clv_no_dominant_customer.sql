{#-
    Returns the customers whose predicted value alone is more than `share` of the predicted
    total. The spend level is one factor for every customer (clv.level): the network's share
    of such a customer (a wholesaler among shoppers) weighs on the factor, so an error in it
    moves every other customer's value. Configured with severity warn on clv_predictions: the
    console then counts those customers, and the README says what to do.
-#}
{% test clv_no_dominant_customer(model, column, share) %}

with

totals as (

    select sum({{ column }}) as total from {{ model }}

)

select
    predictions.customer_id,
    predictions.{{ column }},
    totals.total

from {{ model }} as predictions
cross join totals
where totals.total > 0
    and predictions.{{ column }} > {{ share }} * totals.total

{% endtest %}
