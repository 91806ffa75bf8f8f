{%- set settings = clv_settings() -%}
{#-
    One row per cutoff: the scoring cutoff (the as-of date) and the training cutoffs
    as_of - horizon - k * spacing. With clv_retrain = never a saved model scores, nothing is
    trained, and only the scoring cutoff is built: a daily re-score computes the features of
    one date, not of every training cutoff again.
-#}
{%- set training_cutoffs = 0 if settings.retrain == 'never' else settings.training_cutoffs -%}

with

checked_transactions as (

    select * from {{ ref('int_clv__transactions_checked') }}

),

as_of as (

    select
        {% if settings.as_of_date -%}
        cast('{{ settings.as_of_date }}' as date) as as_of_date,
        {%- else -%}
        -- the last usable day that is not in the future (a far-future row is a clock error)
        max(case when cast(transacted_at as date) <= current_date then cast(transacted_at as date) end)
            as as_of_date,
        {%- endif %}
        min(cast(transacted_at as date)) as first_transaction_date

    from checked_transactions
    where row_problem is null

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
