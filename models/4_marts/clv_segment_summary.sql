{#-
    One row per segment (always all five, in the order of the segment rules) for the as-of date
    and model version of clv_predictions: how many customers, their share, the total and mean
    predicted value, the p10-p90 range of the total and the mean purchase probability. A segment
    without customers has 0 customers and totals and null means.

    The range of the total: each customer's spend is a ZILN (int_clv__scores carries its
    variance, predicted_clv_variance), customers buy independently of each other, the spend
    level multiplies every value at once with the uncertainty its backtests showed
    (level_log_sd of the model, clv.level rule 8), and the network shares the total out
    between kinds of customers with the bias it showed per value decile on the validation
    window (beyond its overall bias). The total is read as a lognormal with the total's
    expected value and a log-scale variance of

        log(1 + sum of the customers' variances / total^2)   the customers' randomness
      + level_log_sd^2                                        the level's
      + sum(predicted_clv * decile bias^2) / total            the sharing out's

    so p10 and p90 are total * exp(-s^2 / 2 -/+ 1.2816 s). When the chance that nobody in the
    segment buys, the product of (1 - purchase_probability), is at least 10% (or 90%), p10 (or
    p90) is 0, as it is for the total itself. Without a level_log_sd (a model saved before
    backtests were kept) they are null otherwise, as the total's are in clv_total_summary: the
    customers' randomness alone would give a range far too narrow for a segment of thousands. tests/test_segment_range.py checks the coverage
    on simulated segments.
-#}

with

predictions as (

    select * from {{ ref('clv_predictions') }}

),

scores as (

    select * from {{ ref('int_clv__scores') }}

),

model_registry as (

    select * from {{ ref('int_clv__model_registry') }}

),

decile_calibration as (

    -- an empty decile (fewer than ten validation customers) has no means: NaN on some engines
    select * from {{ ref('int_clv__decile_calibration') }}
    where predictor = 'network' and customers > 0

),

-- the network's validation bias per value decile beyond its overall bias: how far it shares
-- the total out wrongly between kinds of customers (log ratios, within -2 and 2)
validation_totals as (

    select
        model_version,
        ln(
            greatest(sum(customers * mean_actual), 1e-300)
            / greatest(sum(customers * mean_predicted), 1e-300)
        ) as overall_log_ratio

    from decile_calibration
    group by model_version

),

decile_bias as (

    select
        decile_calibration.model_version,
        decile_calibration.decile,
        least(greatest(
            ln(
                greatest(decile_calibration.mean_actual, 1e-300)
                / greatest(decile_calibration.mean_predicted, 1e-300)
            )
            - validation_totals.overall_log_ratio,
            -2
        ), 2) as log_bias

    from decile_calibration
    inner join validation_totals
        on decile_calibration.model_version = validation_totals.model_version

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
        predictions.segment,
        predictions.as_of_date,
        predictions.model_version,
        {{ clv_customers_totals() }},
        sum(predictions.predicted_clv * coalesce(decile_bias.log_bias * decile_bias.log_bias, 0))
            as value_weighted_bias

    from predictions
    left join scores
        on predictions.customer_id = scores.customer_id
    left join decile_bias
        on
        predictions.model_version = decile_bias.model_version
        and predictions.value_decile = decile_bias.decile
    group by predictions.segment, predictions.as_of_date, predictions.model_version

),

spreads as (

    select
        segment_totals.*,
        {{ clv_customers_log_variance('segment_totals.total_predicted_clv', 'segment_totals.total_variance') }}
        + model_registry.level_log_sd * model_registry.level_log_sd
        + case
            when segment_totals.total_predicted_clv > 0
                then segment_totals.value_weighted_bias / segment_totals.total_predicted_clv
            else 0
        end as log_variance,
        exp(greatest(segment_totals.log_none_buys, -700)) as none_buys

    from segment_totals
    left join model_registry
        on segment_totals.model_version = model_registry.model_version

),

ranges as (

    select
        *,
        {{ clv_total_quantile('total_predicted_clv', 'log_variance', 'none_buys', false) }}
            as total_predicted_clv_p10,
        {{ clv_total_quantile('total_predicted_clv', 'log_variance', 'none_buys', true) }}
            as total_predicted_clv_p90

    from spreads

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
        cast(
            case when segment_totals.segment is null then 0 else segment_totals.total_predicted_clv_p10 end
            as {{ clv_type_double() }}
        ) as total_predicted_clv_p10,
        cast(
            case when segment_totals.segment is null then 0 else segment_totals.total_predicted_clv_p90 end
            as {{ clv_type_double() }}
        ) as total_predicted_clv_p90,
        cast(segment_totals.mean_predicted_clv as {{ clv_type_double() }}) as mean_predicted_clv,
        cast(segment_totals.mean_purchase_probability as {{ clv_type_double() }})
            as mean_purchase_probability

    from segments
    cross join runs
    left join ranges as segment_totals
        on segments.segment = segment_totals.segment
        and runs.as_of_date = segment_totals.as_of_date
        and runs.model_version = segment_totals.model_version

)

select * from final
