{#-
    One row per customer present at both of the two latest as-of dates in
    clv_predictions_history: how the customer's predicted value, purchase probability, decile and
    segment moved, with flags for the moves a marketer acts on. At each as-of date the latest
    scoring run counts (the newest scored_at, whatever the model version). The churn
    early-warning list: `where needs_attention`.
-#}

with

history as (

    select * from {{ ref('clv_predictions_history') }}

),

runs as (

    select
        as_of_date,
        model_version,
        max(scored_at) as scored_at

    from history
    group by as_of_date, model_version

),

latest_run_per_date as (

    select
        as_of_date,
        model_version,
        row_number() over (
            partition by as_of_date order by scored_at desc, {{ clv_collate_binary('model_version') }} desc
        ) as run_rank

    from runs

),

dates_ranked as (

    select
        as_of_date,
        model_version,
        row_number() over (order by as_of_date desc) as date_rank

    from latest_run_per_date
    where run_rank = 1

),

two_latest_runs as (

    select
        history.*,
        dates_ranked.date_rank

    from history
    inner join dates_ranked
        on history.as_of_date = dates_ranked.as_of_date
        and history.model_version = dates_ranked.model_version
    where dates_ranked.date_rank <= 2

),

current_predictions as (

    select * from two_latest_runs where date_rank = 1

),

previous_predictions as (

    select * from two_latest_runs where date_rank = 2

),

compared as (

    select
        current_predictions.customer_id,
        previous_predictions.as_of_date as previous_as_of_date,
        current_predictions.as_of_date,
        previous_predictions.predicted_clv as previous_predicted_clv,
        current_predictions.predicted_clv,
        current_predictions.predicted_clv - previous_predictions.predicted_clv as predicted_clv_change,
        previous_predictions.purchase_probability as previous_purchase_probability,
        current_predictions.purchase_probability,
        current_predictions.purchase_probability - previous_predictions.purchase_probability
            as purchase_probability_change,
        previous_predictions.value_decile as previous_value_decile,
        current_predictions.value_decile,
        previous_predictions.segment as previous_segment,
        current_predictions.segment,
        current_predictions.value_decile - previous_predictions.value_decile >= 2
            as is_dropping_two_deciles,
        previous_predictions.segment = 'high_value' and current_predictions.segment != 'high_value'
            as is_leaving_high_value,
        previous_predictions.segment != 'at_risk' and current_predictions.segment = 'at_risk'
            as is_becoming_at_risk,
        previous_predictions.model_version as previous_model_version,
        current_predictions.model_version

    from current_predictions
    inner join previous_predictions
        on current_predictions.customer_id = previous_predictions.customer_id

),

final as (

    select
        *,
        is_dropping_two_deciles or is_leaving_high_value or is_becoming_at_risk as needs_attention

    from compared

)

select * from final
