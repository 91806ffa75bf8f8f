{#-
    One row for the as-of date and model version of clv_predictions: the customers' total
    predicted value and its p10-p90 range, what a plan reads. The range comes from the same
    lognormal as the segments' (clv_segment_summary) with two of its three variances: the
    customers' own randomness and the spend level's (level_log_sd of the model). The third,
    how the network shares the total out between kinds of customers, moves value between
    segments and not the whole total, whose bias is the level's. Without a level_log_sd (a
    model saved before backtests were kept) the range would hold the customers' randomness
    alone, which shrinks with their number: p10 and p90 are then null. No row when nothing was
    scored.
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

totals as (

    select
        predictions.as_of_date,
        predictions.horizon_days,
        predictions.model_version,
        {{ clv_customers_totals() }},
        sum(predictions.purchase_probability) as expected_buyers

    from predictions
    left join scores
        on predictions.customer_id = scores.customer_id
    group by predictions.as_of_date, predictions.horizon_days, predictions.model_version

),

spreads as (

    select
        totals.*,
        model_registry.level_log_sd,
        {{ clv_customers_log_variance('totals.total_predicted_clv', 'totals.total_variance') }}
        + model_registry.level_log_sd * model_registry.level_log_sd as log_variance,
        exp(greatest(totals.log_none_buys, -700)) as none_buys

    from totals
    left join model_registry
        on totals.model_version = model_registry.model_version

),

final as (

    select
        as_of_date,
        cast(horizon_days as integer) as horizon_days,
        model_version,
        cast(customers as bigint) as customers,
        cast(total_predicted_clv as {{ clv_type_double() }}) as total_predicted_clv,
        cast(
            {{ clv_total_quantile('total_predicted_clv', 'log_variance', 'none_buys', false) }}
            as {{ clv_type_double() }}
        ) as total_predicted_clv_p10,
        cast(
            {{ clv_total_quantile('total_predicted_clv', 'log_variance', 'none_buys', true) }}
            as {{ clv_type_double() }}
        ) as total_predicted_clv_p90,
        cast(level_log_sd as {{ clv_type_double() }}) as level_log_sd,
        cast(expected_buyers as {{ clv_type_double() }}) as expected_buyers,
        cast(mean_predicted_clv as {{ clv_type_double() }}) as mean_predicted_clv,
        cast(mean_purchase_probability as {{ clv_type_double() }}) as mean_purchase_probability

    from spreads

)

select * from final
