{#-
    Each training label is its customer's net spend in the label window, rounded to 6 decimals
    and floored at 0 (0 without a transaction in the window): compared row by row, so labels
    moved between customers or cutoffs fail as well as a wrong total.
-#}

with

training_examples as (

    select * from {{ ref('clv_training_examples') }}

),

customer_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }}

),

window_spend as (

    select
        cutoffs.cutoff_date,
        customer_days.customer_id,
        greatest({{ clv_round('sum(customer_days.net_revenue)', 6) }}, 0) as spend

    from customer_days
    inner join cutoffs
        on customer_days.activity_date > cutoffs.cutoff_date
        and customer_days.activity_date <= cutoffs.label_end_date
    where cutoffs.cutoff_role in ('training', 'validation')
    group by cutoffs.cutoff_date, customer_days.customer_id

),

mismatches as (

    select
        training_examples.customer_id,
        training_examples.cutoff_date,
        training_examples.label_revenue,
        coalesce(window_spend.spend, 0) as spend

    from training_examples
    left join window_spend
        on training_examples.customer_id = window_spend.customer_id
        and training_examples.cutoff_date = window_spend.cutoff_date
    where
        training_examples.label_revenue is null
        or abs(training_examples.label_revenue - coalesce(window_spend.spend, 0))
        > 1e-6 * greatest(abs(coalesce(window_spend.spend, 0)), 1)

)

select * from mismatches
