{#-
    One row per customer present at both the as-of date of clv_predictions and the latest
    as-of date before it in clv_predictions_history that holds a run over the same horizon
    (values over another horizon are not comparable; after a backfill of past dates, the
    movements stay those of the predictions table): how the customer's predicted value,
    purchase probability, decile and segment moved, with flags for the moves a marketer acts
    on. At each as-of date the latest scoring run over that horizon counts (the newest
    scored_at, whatever the model version). The churn early-warning list: `where
    needs_attention`. Empty when the history's latest run at the as-of date of clv_predictions
    is not the run clv_predictions holds (a build that left the history out: no such date,
    another model there, or an earlier run of the same model at that date).

    The flags follow the customer, not the segment rules' order: becoming at_risk or dormant
    needs the purchase probability to have crossed that segment's bound (0.5, 0.2 by default:
    clv_segment_bounds(), the rules of clv_predictions), so a new customer whose probability
    was already low is not flagged on the day their history turns 90 days long, and dormant ->
    at_risk (a recovery) never is. A top-20% customer whose value halves is flagged even when
    they stay in the top deciles. The flags read from the ranking (two deciles down, leaving
    high_value) also need the value itself to have fallen by a fifth or more: where many
    customers' values are nearly tied (a subscription business whose customers pay the same
    plan), a move of a few percent crosses deciles, and a customer who just paid would be
    flagged as slipping.
-#}
{%- set bounds = clv_segment_bounds() %}

with

history as (

    select * from {{ ref('clv_predictions_history') }}

),

current_predictions as (

    select
        max(as_of_date) as as_of_date,
        max(model_version) as model_version,
        max(horizon_days) as horizon_days,
        max(scored_at) as scored_at

    from {{ ref('clv_predictions') }}

),

runs as (

    select
        history.as_of_date,
        history.model_version,
        max(history.scored_at) as scored_at

    from history
    inner join current_predictions
        on history.as_of_date <= current_predictions.as_of_date
        and history.horizon_days is not distinct from current_predictions.horizon_days
    group by history.as_of_date, history.model_version

),

latest_run_per_date as (

    select
        as_of_date,
        model_version,
        row_number() over (
            partition by as_of_date order by scored_at desc nulls last, {{ clv_collate_binary('model_version') }} desc
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

paired as (

    -- Each customer's row at the latest date beside their row at the date before (lag over
    -- the customer's at most two rows). A window, not a join of the two dates: PostgreSQL
    -- cannot estimate the rows of the two CTE halves and joined them by a nested loop that
    -- scanned every row of one per row of the other.
    select
        customer_id,
        date_rank,
        as_of_date,
        predicted_clv,
        purchase_probability,
        value_decile,
        segment,
        model_version,
        scored_at,
        lag(as_of_date) over (partition by customer_id order by date_rank desc) as previous_as_of_date,
        lag(predicted_clv) over (partition by customer_id order by date_rank desc) as previous_predicted_clv,
        lag(purchase_probability) over (
            partition by customer_id order by date_rank desc
        ) as previous_purchase_probability,
        lag(value_decile) over (partition by customer_id order by date_rank desc) as previous_value_decile,
        lag(segment) over (partition by customer_id order by date_rank desc) as previous_segment,
        lag(model_version) over (partition by customer_id order by date_rank desc) as previous_model_version

    from two_latest_runs

),

in_both_runs as (

    -- empty when the history's latest run at clv_predictions' date is not the run it holds
    -- (a build that left the history out): the movements are those into the predictions
    -- users read, or none
    select paired.*
    from paired
    inner join current_predictions
        on paired.as_of_date = current_predictions.as_of_date
        and paired.model_version = current_predictions.model_version
        and paired.scored_at = current_predictions.scored_at
    where paired.date_rank = 1 and paired.previous_as_of_date is not null

),

fallen as (

    select
        *,
        previous_predicted_clv > 0 and predicted_clv <= 0.8 * previous_predicted_clv as has_fallen_a_fifth

    from in_both_runs

),

compared as (

    select
        customer_id,
        previous_as_of_date,
        as_of_date,
        previous_predicted_clv,
        predicted_clv,
        predicted_clv - previous_predicted_clv as predicted_clv_change,
        previous_purchase_probability,
        purchase_probability,
        purchase_probability - previous_purchase_probability as purchase_probability_change,
        previous_value_decile,
        value_decile,
        previous_segment,
        segment,
        value_decile - previous_value_decile >= 2 and has_fallen_a_fifth as is_dropping_two_deciles,
        previous_value_decile <= {{ bounds.high_value_deciles }} and previous_predicted_clv > 0
        and predicted_clv <= 0.5 * previous_predicted_clv as is_halving_value,
        previous_segment = 'high_value' and segment != 'high_value' and has_fallen_a_fifth
            as is_leaving_high_value,
        previous_purchase_probability >= {{ bounds.active_probability }} and segment = 'at_risk'
            as is_becoming_at_risk,
        previous_purchase_probability >= {{ bounds.at_risk_probability }} and segment = 'dormant'
            as is_becoming_dormant,
        previous_model_version,
        model_version

    from fallen

),

final as (

    select
        *,
        is_dropping_two_deciles or is_halving_value or is_leaving_high_value or is_becoming_at_risk
        or is_becoming_dormant as needs_attention

    from compared

)

select * from final
