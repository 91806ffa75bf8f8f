{#-
    One row per customer with a usable transaction on or before the as-of date: the scores
    (predicted_clv at the spend level, applied once in the scoring step, see clv.level), the
    value decile and the segment. This model only ranks, segments and joins; the casts give
    every column its contract type on every engine and change no value.

    Segments, first match wins (the bounds are clv_segment_bounds(); the rules, and what each
    is for, are documented in _marts__models.yml and the README):
      high_value  value_decile 1 or 2 (the 20% with the highest predicted CLV)
      new         first purchase less than 90 days before the as-of date (t_days < 90:
                  with no purchase yet, the first transaction)
      active      purchase_probability >= 0.5
      at_risk     purchase_probability >= 0.2 (and under 0.5)
      dormant     purchase_probability < 0.2

    The post-hook stops the build unless every scored customer has exactly one row, and the
    scoring plan is of the as-of date this table gives the scores.
-#}
{{ config(post_hook="{{ clv_require_every_customer_predicted(this) }}") }}
{%- set bounds = clv_segment_bounds() %}

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
        scoring_examples.t_days,
        -- the k-th tenth of the ranking, so deciles 1 and 2 hold ceil(20% of n) customers for
        -- any n (ntile gives the first n mod 10 deciles one more each: 4 of 12 customers in
        -- the top two); with fewer than ten customers some deciles stay empty
        cast(floor(
            10.0e0 * (row_number() over (
                order by scores.predicted_clv desc nulls last, {{ clv_collate_binary('scores.customer_id') }} asc
            ) - 1) / count(*) over ()
        ) as bigint) + 1 as value_decile

    from scores
    inner join scoring_examples
        on scores.customer_id = scoring_examples.customer_id

),

segmented as (

    select
        *,
        case
            when value_decile <= {{ bounds.high_value_deciles }} then 'high_value'
            when t_days < {{ bounds.new_days }} then 'new'
            when purchase_probability >= {{ bounds.active_probability }} then 'active'
            when purchase_probability >= {{ bounds.at_risk_probability }} then 'at_risk'
            when purchase_probability < {{ bounds.at_risk_probability }} then 'dormant'
        end as segment

    from ranked

),

final as (

    select
        cast(segmented.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(scoring_cutoff.as_of_date as date) as as_of_date,
        cast(scoring_cutoff.horizon_days as integer) as horizon_days,
        cast(segmented.predicted_clv as {{ clv_type_double() }}) as predicted_clv,
        cast(segmented.purchase_probability as {{ clv_type_double() }}) as purchase_probability,
        cast(segmented.predicted_clv_p10 as {{ clv_type_double() }}) as predicted_clv_p10,
        cast(segmented.predicted_clv_p50 as {{ clv_type_double() }}) as predicted_clv_p50,
        cast(segmented.predicted_clv_p90 as {{ clv_type_double() }}) as predicted_clv_p90,
        cast(segmented.value_decile as bigint) as value_decile,
        cast(segmented.segment as {{ dbt.type_string() }}) as segment,
        cast(segmented.btyd_expected_spend as {{ clv_type_double() }}) as btyd_expected_spend,
        cast(segmented.model_version as {{ dbt.type_string() }}) as model_version,
        cast(segmented.scored_at as timestamp) as scored_at

    from segmented
    cross join scoring_cutoff

)

select * from final
