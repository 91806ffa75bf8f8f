{#-
    "WARN n clv_predictions_are_of_the_latest_as_of_date": clv_predictions, and with it the
    export, the report and clv_prediction_changes, are of an earlier as-of date than n dates
    clv_predictions_history holds: a build ran at an older date after a newer one (a scheduler
    that re-ran a past day, a mistyped clv_as_of_date), or a later date came from a mistake
    since corrected (a row dated a year ahead). One row per later date, with its customers.
    A re-run at the latest date publishes it again; a date that should not be there is removed
    from the history (README: A history that updates every day).
-#}
{{ config(severity='warn') }}
{#- A build of either table alone selects this test too (dbt selects a test when any model it
    reads is selected): before both are built there is nothing to compare. -#}
{%- if execute and (load_relation(ref('clv_predictions')) is none
                    or load_relation(ref('clv_predictions_history')) is none) %}

select cast(null as date) as as_of_date
where 1 = 0

{%- else %}

with

published as (

    select max(as_of_date) as as_of_date
    from {{ ref('clv_predictions') }}

)

select
    history.as_of_date,
    count(distinct history.customer_id) as customers

from {{ ref('clv_predictions_history') }} as history
inner join published
    on history.as_of_date > published.as_of_date
group by history.as_of_date

{%- endif %}
