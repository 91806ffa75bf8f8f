{#-
    One row when a table of customer days holds more refunds (negative amounts) than
    purchases: an export that writes sales as negative amounts, the opposite sign convention,
    would be read with its refunds as the purchases. Severity warn in the yml: a business
    whose refunds outnumber its sales over a period is possible, just rare.
-#}
{% test clv_more_purchases_than_refunds(model) %}

select
    sum(orders) as purchases,
    sum(refunds) as refunds

from {{ model }}
having sum(refunds) > sum(orders)

{% endtest %}
