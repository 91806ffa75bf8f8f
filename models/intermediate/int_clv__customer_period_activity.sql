{{ config(materialized='view') }}
{#-
    Sparse: one row per customer per cutoff per period with activity, for the last
    clv_sequence_periods periods of clv_period_days days before each cutoff.
    period_lag 1 is the period ending on the cutoff day, period_lag N the oldest.
-#}

with

customer_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

cutoffs as (

    select * from {{ ref('clv_cutoffs') }}

),

history as (

    {{ clv_sequence_window_days('customer_days', 'cutoffs') }}

),

final as (

    select
        customer_id,
        cutoff_date,
        period_lag,
        cast(sum(orders) as bigint) as orders,
        sum(net_revenue) as revenue,
        count(case when is_purchase_day then 1 end) as active_days

    from history
    group by customer_id, cutoff_date, period_lag

)

select * from final
