{#-
    Every customer with a usable transaction on or before the as-of date has scoring features
    and a row in clv_predictions, and no one else: no join on the way drops or adds a customer.
-#}

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

predictions as (

    select * from {{ ref('clv_predictions') }}

),

usable_customers as (

    select distinct customer_days.customer_id
    from customer_days
    inner join cutoffs
        on cutoffs.cutoff_role = 'scoring'
        and customer_days.activity_date <= cutoffs.cutoff_date

),

mismatches as (

    select
        coalesce(
            usable_customers.customer_id, scoring_examples.customer_id, predictions.customer_id
        ) as customer_id,
        usable_customers.customer_id is not null as is_usable,
        scoring_examples.customer_id is not null as has_scoring_features,
        predictions.customer_id is not null as is_predicted
    from usable_customers
    full outer join scoring_examples
        on usable_customers.customer_id = scoring_examples.customer_id
    full outer join predictions
        on coalesce(usable_customers.customer_id, scoring_examples.customer_id) = predictions.customer_id
    where
        usable_customers.customer_id is null
        or scoring_examples.customer_id is null
        or predictions.customer_id is null

)

select * from mismatches
