{#- The training labels add up to the net spend in each label window (before flooring at 0, per customer). -#}

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
        greatest(sum(customer_days.net_revenue), 0) as spend

    from customer_days
    inner join cutoffs
        on customer_days.activity_date > cutoffs.cutoff_date
        and customer_days.activity_date <= cutoffs.label_end_date
    where cutoffs.cutoff_role in ('training', 'validation')
    group by cutoffs.cutoff_date, customer_days.customer_id

),

known_at_cutoff as (

    select window_spend.*
    from window_spend
    inner join training_examples
        on window_spend.customer_id = training_examples.customer_id
        and window_spend.cutoff_date = training_examples.cutoff_date

),

totals as (

    select
        (select coalesce(sum(label_revenue), 0) from training_examples) as label_total,
        (select coalesce(sum(spend), 0) from known_at_cutoff) as spend_total

)

select * from totals where abs(label_total - spend_total) > 1e-6 * greatest(abs(spend_total), 1)
