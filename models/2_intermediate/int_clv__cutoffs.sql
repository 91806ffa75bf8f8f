{%- set settings = clv_settings() -%}
{#-
    One row per cutoff: the scoring cutoff (the as-of date) and the training cutoffs
    (clv_training_offsets: as_of - horizon - k * spacing, and with a horizon under a year the
    windows a year back that a seasonal level needs). With clv_retrain = never a saved model scores, nothing is
    trained, and only the scoring cutoff is built: a daily re-score computes the features of
    one date, not of every training cutoff again. No cutoff means no usable transaction: the
    post-hook then stops the build with one line saying why, pointing to clv_data_quality,
    which does not depend on this model and is built anyway.
-#}
{{ config(post_hook="{{ clv_require_usable_transactions(this) }}") }}
{%- set training_offsets = [] if settings.retrain == 'never' else settings.training_offsets %}

-- depends_on: {{ ref('int_clv__transactions_checked') }} (whose rows the post-hook counts)
{#- The post-hook's message names the input (clv_input_label), which renders var
    clv_transactions: rendered here as well, so that a ref in it is an edge dbt knows of. -#}
{%- do clv_input_label('clv_transactions') %}

with

as_of as (

    select * from {{ ref('int_clv__as_of_date') }}

),

offsets as (

    select
        0 as cutoff_index,
        'scoring' as cutoff_role,
        0 as days_before_as_of,
        false as is_year_back
    {%- for offset in training_offsets %}
    union all
    select
        {{ loop.index }} as cutoff_index,
        '{{ "validation" if loop.first and training_offsets | length > 1 else "training" }}' as cutoff_role,
        {{ offset.days_before }} as days_before_as_of,
        {{ 'true' if offset.year_back else 'false' }} as is_year_back
    {%- endfor %}

),

cutoffs as (

    select
        offsets.cutoff_index,
        offsets.cutoff_role,
        {{ clv_add_days('as_of.as_of_date', '-offsets.days_before_as_of') }} as cutoff_date,
        as_of.as_of_date,
        {{ settings.horizon_days }} as horizon_days,
        offsets.is_year_back,
        as_of.first_transaction_date

    from offsets
    cross join as_of
    where as_of.as_of_date is not null

),

final as (

    select
        cutoff_date,
        cutoff_index,
        cutoff_role,
        as_of_date,
        horizon_days,
        {{ clv_add_days('cutoff_date', 'horizon_days') }} as label_end_date,
        first_transaction_date

    from cutoffs
    -- a cutoff before the first transaction has no customers to learn from; a year-back
    -- cutoff serves a seasonal level, which needs two years of history (730 days, the first
    -- counted), and is otherwise left out
    where
        cutoff_date >= first_transaction_date
        and (not is_year_back or {{ clv_add_days('first_transaction_date', 729) }} <= as_of_date)

)

select * from final
