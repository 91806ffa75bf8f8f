{#-
    "WARN n clv_predictions_keep_the_previous_customers": n customers scored at the as-of date
    before clv_predictions' own in clv_predictions_history are not in clv_predictions, and they
    are more than a twentieth of that date's customers. Customers do not leave the data of
    their own accord: a source that lost rows (a truncated or half-finished reload, a filter
    gone wrong) does, and its build would publish the smaller customer base and flag its
    customers as slipping without a word. A rolling-window source loses a few customers a day
    and an erasure (a customer's rows deleted on request) a handful, both below the bound.
    The date before is compared as clv_prediction_changes compares it: its newest scoring run
    over the same horizon (another run there, of other data or another model, is not the
    customer base the build replaced). One row per missing customer.
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

    select
        max(as_of_date) as as_of_date,
        max(horizon_days) as horizon_days
    from {{ ref('clv_predictions') }}

),

previous_runs as (

    select
        history.as_of_date,
        history.model_version,
        max(history.scored_at) as scored_at
    from {{ ref('clv_predictions_history') }} as history
    inner join published
        on history.as_of_date < published.as_of_date
        and history.horizon_days is not distinct from published.horizon_days
    group by history.as_of_date, history.model_version

),

previous_run as (

    select
        as_of_date,
        model_version,
        row_number() over (
            order by as_of_date desc, scored_at desc nulls last, {{ clv_collate_binary('model_version') }} desc
        ) as run_rank
    from previous_runs

),

previous_customers as (

    select distinct history.customer_id
    from {{ ref('clv_predictions_history') }} as history
    inner join previous_run
        on history.as_of_date = previous_run.as_of_date
        and history.model_version = previous_run.model_version
    inner join published
        on history.horizon_days is not distinct from published.horizon_days
    where previous_run.run_rank = 1

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
