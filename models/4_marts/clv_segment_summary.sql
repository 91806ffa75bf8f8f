{#-
    One row per segment (always all five, in the order of the segment rules) for the as-of date
    and model version of clv_predictions: how many customers, their share, the total and mean
    predicted value, the p10-p90 range of the total and the mean purchase probability. A segment
    without customers has 0 customers and totals and null means.

    total_predicted_clv_p10 / _p90 are the sums of the customers' own 10th and 90th percentiles:
    the segment's total if every customer spent at their own p10 (or p90). That is the total's
    own 10th (90th) percentile only if the customers' spends moved perfectly together; customers
    who buy independently make the total far less uncertain, so read the range as a wide
    envelope around the total, not as an 80% interval for it.
-#}

with

predictions as (

    select * from {{ ref('clv_predictions') }}

),

segments as (

    select
        'high_value' as segment,
        1 as segment_order
    union all
    select
        'new' as segment,
        2 as segment_order
    union all
    select
        'active' as segment,
        3 as segment_order
    union all
    select
        'at_risk' as segment,
        4 as segment_order
    union all
    select
        'dormant' as segment,
        5 as segment_order

),

runs as (

    select
        as_of_date,
        horizon_days,
        model_version,
        count(*) as all_customers,
        sum(predicted_clv) as all_predicted_clv

    from predictions
    group by as_of_date, horizon_days, model_version

),

segment_totals as (

    select
        segment,
        as_of_date,
        model_version,
        count(*) as customers,
        sum(predicted_clv) as total_predicted_clv,
        sum(predicted_clv_p10) as total_predicted_clv_p10,
        sum(predicted_clv_p90) as total_predicted_clv_p90,
        avg(predicted_clv) as mean_predicted_clv,
        avg(purchase_probability) as mean_purchase_probability

    from predictions
    group by segment, as_of_date, model_version

),

final as (

    select
        cast(segments.segment as {{ dbt.type_string() }}) as segment,
        cast(segments.segment_order as integer) as segment_order,
        runs.as_of_date,
        runs.horizon_days,
        runs.model_version,
        cast(coalesce(segment_totals.customers, 0) as bigint) as customers,
        cast(coalesce(segment_totals.customers, 0) as {{ clv_type_double() }})
        / runs.all_customers as share_of_customers,
        cast(coalesce(segment_totals.total_predicted_clv, 0) as {{ clv_type_double() }})
            as total_predicted_clv,
        coalesce(segment_totals.total_predicted_clv, 0)
        / nullif(runs.all_predicted_clv, 0) as share_of_predicted_clv,
        cast(coalesce(segment_totals.total_predicted_clv_p10, 0) as {{ clv_type_double() }})
            as total_predicted_clv_p10,
        cast(coalesce(segment_totals.total_predicted_clv_p90, 0) as {{ clv_type_double() }})
            as total_predicted_clv_p90,
        cast(segment_totals.mean_predicted_clv as {{ clv_type_double() }}) as mean_predicted_clv,
        cast(segment_totals.mean_purchase_probability as {{ clv_type_double() }})
            as mean_purchase_probability

    from segments
    cross join runs
    left join segment_totals
        on segments.segment = segment_totals.segment
        and runs.as_of_date = segment_totals.as_of_date
        and runs.model_version = segment_totals.model_version

)

select * from final
