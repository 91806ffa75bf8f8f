{#-
    "WARN n clv_predictions_keep_the_previous_customers": n customers scored at the as-of date
    before clv_predictions' own in clv_predictions_history are not in clv_predictions, and they
    are more than a twentieth of that date's customers. Customers do not leave the data of
    their own accord: a source that lost rows (a truncated or half-finished reload, a filter
    gone wrong) does, and its build would publish the smaller customer base and flag its
    customers as slipping without a word. A rolling-window source loses a few customers a day
    and an erasure (a customer's rows deleted on request) a handful, both below the bound.
    One row per missing customer.
-#}
{{ config(severity='warn') }}
{#- A build of either table alone selects this test too: before both are built there is
    nothing to compare. -#}
{%- if execute and (load_relation(ref('clv_predictions')) is none
                    or load_relation(ref('clv_predictions_history')) is none) %}

select cast(null as {{ dbt.type_string() }}) as customer_id
where 1 = 0

{%- else %}

with

published as (

    select max(as_of_date) as as_of_date
    from {{ ref('clv_predictions') }}

),

previous_date as (

    select max(history.as_of_date) as as_of_date
    from {{ ref('clv_predictions_history') }} as history
    inner join published
        on history.as_of_date < published.as_of_date

),

previous_customers as (

    select distinct history.customer_id
    from {{ ref('clv_predictions_history') }} as history
    inner join previous_date
        on history.as_of_date = previous_date.as_of_date

),

compared as (

    select
        previous_customers.customer_id,
        predictions.customer_id is null as is_missing
    from previous_customers
    left join {{ ref('clv_predictions') }} as predictions
        on previous_customers.customer_id = predictions.customer_id

),

counts as (

    {#- counted by an aggregate, not by scalar subqueries: Spark's plan of those overflows its
        stack -#}
    select
        sum(case when is_missing then 1 else 0 end) as missing_customers,
        count(*) as previous_customers
    from compared

)

select compared.customer_id
from compared
cross join counts
where compared.is_missing
    and counts.missing_customers > 0.05 * counts.previous_customers

{%- endif %}
