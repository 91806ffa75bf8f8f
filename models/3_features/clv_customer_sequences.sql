{{ config(materialized='view') }}
{#-
    One row per customer per cutoff: the last clv_sequence_periods periods of activity as
    fixed-length, zero-padded columns seq_<channel>_lag_<NN> (lag 01 ends on the cutoff day).
    Summed with the features in one aggregation per cutoff
    (macros/features/clv_customer_features_at.sql); a view of the two example tables, like
    clv_customer_features.
-#}
{%- set selected = ['customer_id', 'cutoff_date'] + clv_sequence_columns() %}

with

training_examples as (

    select {{ selected | join(', ') }} from {{ ref('clv_training_examples') }}

),

scoring_examples as (

    select {{ selected | join(', ') }} from {{ ref('clv_scoring_examples') }}

),

final as (

    select * from training_examples
    union all
    select * from scoring_examples

)

select * from final
