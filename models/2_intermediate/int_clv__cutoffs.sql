{%- set settings = clv_settings() -%}
{#-
    One row per cutoff: the scoring cutoff (the as-of date) and the training cutoffs
    as_of - horizon - k * spacing. With clv_retrain = never a saved model scores, nothing is
    trained, and only the scoring cutoff is built: a daily re-score computes the features of
    one date, not of every training cutoff again. No cutoff means no usable transaction: the
    post-hook then stops the build with one line saying why, pointing to clv_data_quality,
    which does not depend on this model and is built anyway.
-#}
{{ config(post_hook="{{ clv_require_usable_transactions(this) }}") }}
{%- set training_cutoffs = 0 if settings.retrain == 'never' else settings.training_cutoffs %}

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
        0 as days_before_as_of
    {%- for k in range(training_cutoffs) %}
    union all
    select
        {{ k + 1 }} as cutoff_index,
        '{{ "validation" if k == 0 and training_cutoffs > 1 else "training" }}' as cutoff_role,
        {{ settings.horizon_days + k * settings.cutoff_spacing_days }} as days_before_as_of
    {%- endfor %}

),

cutoffs as (

    select
        offsets.cutoff_index,
        offsets.cutoff_role,
        {{ clv_add_days('as_of.as_of_date', '-offsets.days_before_as_of') }} as cutoff_date,
        as_of.as_of_date,
        {{ settings.horizon_days }} as horizon_days,
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
    -- a cutoff before the first transaction has no customers to learn from
    where cutoff_date >= first_transaction_date

)

select * from final
