{#- Every customer with a usable transaction on or before the as-of date has scoring features, and no one else. -#}

with

customer_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }}

),

scoring_examples as (

    select * from {{ ref('clv_scoring_examples') }}

),

usable_customers as (

    select distinct customer_days.customer_id
    from customer_days
    inner join cutoffs
        on cutoffs.cutoff_role = 'scoring'
        and customer_days.activity_date <= cutoffs.cutoff_date

),

mismatches as (

    select coalesce(usable_customers.customer_id, scoring_examples.customer_id) as customer_id
    from usable_customers
    full outer join scoring_examples
        on usable_customers.customer_id = scoring_examples.customer_id
    where usable_customers.customer_id is null or scoring_examples.customer_id is null

)

select * from mismatches
