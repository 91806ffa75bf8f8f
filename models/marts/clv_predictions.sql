{#-
    One row per customer with a usable transaction on or before the as-of date: the model's
    CLV over the horizon, purchase probability, quantiles, value decile and segment.

    Spend level: the network decides how the total is shared between customers; the total is
    BG/NBD + Gamma-Gamma's expected spend at the as-of date times the model's
    btyd_level_correction (actual over BG/NBD spend on the validation cutoff). BG/NBD follows
    the ageing of the customer base since the validation cutoff, which a model trained on
    earlier cutoffs cannot see. The sums are exact decimals, so a rebuild gives identical
    values. btyd_expected_spend is BG/NBD + Gamma-Gamma's own prediction, for comparison.

    Segments, first match wins:
      high_value  value_decile 1 or 2 (the 20% with the highest predicted CLV)
      new         first purchase less than 90 days before the as-of date
      at_risk     a repeat buyer (frequency >= 1) with purchase_probability < 0.5
      dormant     purchase_probability < 0.2
      active      everyone else
-#}

with

scores as (

    select * from {{ ref('int_clv__scores') }}

),

scoring_examples as (

    select * from {{ ref('clv_scoring_examples') }}

),

cutoffs as (

    select * from {{ ref('clv_cutoffs') }}

),

registry as (

    select * from {{ ref('clv_model_registry') }}

),

scoring_cutoff as (

    select * from cutoffs where cutoff_role = 'scoring'

),

spend_level as (

    select
        coalesce(
            cast(sum(cast(scores.btyd_expected_spend as decimal(38, 6))) as double)
            * coalesce(any_value(registry.btyd_level_correction), 1.0)
            / nullif(cast(sum(cast(scores.predicted_clv as decimal(38, 6))) as double), 0),
            1.0
        ) as spend_factor

    from scores
    left join registry
        on scores.model_version = registry.model_version

),

leveled as (

    select
        scores.customer_id,
        scores.purchase_probability,
        scores.predicted_clv * spend_level.spend_factor as predicted_clv,
        scores.predicted_clv_p10 * spend_level.spend_factor as predicted_clv_p10,
        scores.predicted_clv_p50 * spend_level.spend_factor as predicted_clv_p50,
        scores.predicted_clv_p90 * spend_level.spend_factor as predicted_clv_p90,
        scores.btyd_expected_spend,
        scores.model_version,
        scores.scored_at

    from scores
    cross join spend_level

),

ranked as (

    select
        leveled.*,
        scoring_examples.frequency,
        scoring_examples.t_days,
        ntile(10) over (order by leveled.predicted_clv desc, leveled.customer_id) as value_decile

    from leveled
    inner join scoring_examples
        on leveled.customer_id = scoring_examples.customer_id

),

segmented as (

    select
        *,
        case
            when value_decile <= 2 then 'high_value'
            when t_days < 90 then 'new'
            when frequency >= 1 and purchase_probability < 0.5 then 'at_risk'
            when purchase_probability < 0.2 then 'dormant'
            else 'active'
        end as segment

    from ranked

),

final as (

    select
        segmented.customer_id,
        scoring_cutoff.as_of_date,
        scoring_cutoff.horizon_days,
        segmented.predicted_clv,
        segmented.purchase_probability,
        segmented.predicted_clv_p10,
        segmented.predicted_clv_p50,
        segmented.predicted_clv_p90,
        segmented.value_decile,
        segmented.segment,
        segmented.btyd_expected_spend,
        segmented.model_version,
        segmented.scored_at

    from segmented
    cross join scoring_cutoff

)

select * from final
