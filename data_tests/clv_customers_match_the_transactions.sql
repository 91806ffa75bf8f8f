{#-
    "WARN 1 clv_customers_match_the_transactions": clv_customers is set, and fewer than half of
    the customers scored at the as-of date have a row in it. Ids written one way in the
    transactions and another in the attributes (C-0042 against 42) leave every attribute
    null, and the model then learns nothing from them. The row shows how many match and an
    unmatched id of each side.
-#}
{{ config(severity='warn') }}
{#- A build of staging alone selects this test too (dbt selects a test when any model it reads
    is selected): without the scored customers there is nothing to compare. -#}
{%- if execute and load_relation(ref('clv_scoring_examples')) is none %}

select 1 as customers_scored
where 1 = 0

{%- else %}

with

scored as (

    select customer_id from {{ ref('clv_scoring_examples') }}

),

attributes as (

    select distinct customer_id
    from {{ ref('stg_clv__customers') }}
    where customer_id is not null

),

unmatched_scored as (

    select scored.customer_id
    from scored
    left join attributes on scored.customer_id = attributes.customer_id
    where attributes.customer_id is null

),

unmatched_attributes as (

    select attributes.customer_id
    from attributes
    left join scored on attributes.customer_id = scored.customer_id
    where scored.customer_id is null

),

counts as (

    select
        (select count(*) from scored) as customers_scored,
        (select count(*) from scored) - (select count(*) from unmatched_scored) as customers_with_attributes,
        (select count(*) from attributes) as attribute_customers,
        (select min(customer_id) from unmatched_scored) as unmatched_scored_id,
        (select min(customer_id) from unmatched_attributes) as unmatched_attribute_id

)

select *
from counts
where attribute_customers > 0 and customers_with_attributes * 2 < customers_scored

{%- endif %}
