{#-
    One row per customer with a usable transaction on or before the as-of date: the scores
    (predicted_clv at the spend level, applied once in the scoring step, see clv.level), the
    value decile and the segment. This model only ranks, segments and joins.

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

    select * from {{ ref('int_clv__cutoffs') }}

),

scoring_cutoff as (

    select * from cutoffs where cutoff_role = 'scoring'

),

ranked as (

    select
        scores.*,
        scoring_examples.frequency,
        scoring_examples.t_days,
        ntile(10) over (
            order by scores.predicted_clv desc, {{ clv_collate_binary('scores.customer_id') }} asc
        ) as value_decile

    from scores
    inner join scoring_examples
        on scores.customer_id = scoring_examples.customer_id

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
