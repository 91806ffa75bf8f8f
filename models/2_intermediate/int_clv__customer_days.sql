{#-
    One row per customer per day with at least one usable transaction.
    A purchase is a transaction with a positive amount; refunds (negative amounts) net
    against revenue but do not make a day a purchase day.
-#}

with

classified_transactions as (

    select * from {{ ref('int_clv__transactions_classified') }}

),

usable as (

    select * from classified_transactions where exclusion_reason is null

),

daily as (

    select
        customer_id,
        transacted_date as activity_date,
        count(*) as transactions,
        count(case when amount > 0 then 1 end) as orders,
        count(case when amount < 0 then 1 end) as refunds,
        sum(case when amount > 0 then amount else 0 end) as gross_revenue,
        sum(case when amount < 0 then -amount else 0 end) as refund_amount,
        sum(amount) as net_revenue

    from usable
    group by customer_id, transacted_date

),

purchase_days_numbered as (

    select
        *,
        orders > 0 as is_purchase_day,
        case
            when orders > 0 then row_number() over (
                partition by customer_id, orders > 0 order by activity_date
            )
        end as purchase_day_number,
        case
            when orders > 0 then lag(activity_date) over (
                partition by customer_id, orders > 0 order by activity_date
            )
        end as previous_purchase_date

    from daily

),

final as (

    select
        customer_id,
        activity_date,
        is_purchase_day,
        purchase_day_number = 1 as is_first_purchase_day,
        transactions,
        orders,
        refunds,
        gross_revenue,
        refund_amount,
        net_revenue,
        {{ clv_days_between('previous_purchase_date', 'activity_date') }} as days_since_previous_purchase

    from purchase_days_numbered

)

select * from final
