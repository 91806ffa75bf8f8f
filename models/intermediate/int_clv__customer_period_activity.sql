{%- set settings = clv_settings() -%}
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

    select
        customer_days.customer_id,
        cutoffs.cutoff_date,
        customer_days.orders,
        customer_days.net_revenue,
        customer_days.is_purchase_day,
        {{ clv_days_between('customer_days.activity_date', 'cutoffs.cutoff_date') }} as days_before_cutoff

    from customer_days
    inner join cutoffs
        on customer_days.activity_date <= cutoffs.cutoff_date
        and customer_days.activity_date > {{ clv_add_days('cutoffs.cutoff_date', -settings.period_days * settings.sequence_periods) }}

),

final as (

    select
        customer_id,
        cutoff_date,
        cast(floor(days_before_cutoff / {{ settings.period_days }}) as integer) + 1 as period_lag,
        cast(sum(orders) as bigint) as orders,
        sum(net_revenue) as revenue,
        count(case when is_purchase_day then 1 end) as active_days

    from history
    group by customer_id, cutoff_date, cast(floor(days_before_cutoff / {{ settings.period_days }}) as integer) + 1

)

select * from final
