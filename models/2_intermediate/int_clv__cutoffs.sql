{%- set settings = clv_settings() -%}
{#-
    One row per cutoff: the scoring cutoff (the as-of date) and the training cutoffs
    (clv_training_offsets: as_of - horizon - k * spacing, and with a horizon under a year the
    windows a year back that a seasonal level needs). With clv_retrain = never a saved model
    scores, nothing is trained, and only the scoring cutoff is built: a daily re-score computes
    the features of one date, not of every training cutoff again. No cutoff means no usable
    transaction: the post-hook then stops the build with one line saying why, pointing to
    clv_data_quality, which does not depend on this model and is built anyway.

    A year-back cutoff is kept only where the seasonal level it serves is used: when the
    history holds two years (730 days, the first counted) counted as clv.level counts them, from
    the first purchase of the tenth oldest customer (the oldest's with fewer), so that a stray
    row years before the rest does not add them; and when no kept regular cutoff lies within
    half a spacing of it (that one stands for it). (clv.level reads the customers of the
    training sample, a uniform sample above the caps, so within days of two years the two
    counts may differ.)
-#}
{{ config(post_hook="{{ clv_require_usable_transactions(this) }}") }}
{%- set training_offsets = [] if settings.retrain == 'never' else settings.training_offsets %}
{%- set year_back = training_offsets | selectattr('year_back') | list | length > 0 %}
{%- set tolerance = [settings.cutoff_spacing_days / 2, 3] | max %}

-- depends_on: {{ ref('int_clv__transactions_checked') }} (whose rows the post-hook counts)
-- depends_on: {{ ref('int_clv__customer_days') }} (the customers' first days, for the history)
{#- The post-hook's message names the input (clv_input_label), which renders var
    clv_transactions: rendered here as well, so that a ref in it is an edge dbt knows of. -#}
{%- do clv_input_label('clv_transactions') %}

with

as_of as (

    select * from {{ ref('int_clv__as_of_date') }}

),

{% if year_back -%}
customer_starts as (

    select
        coalesce(
            min(case when is_purchase_day then activity_date end), min(activity_date)
        ) as start_date

    from {{ ref('int_clv__customer_days') }}
    group by customer_id

),

oldest_starts as (

    select start_date from customer_starts
    order by start_date
    limit 10

),

history as (

    -- the first purchase of the tenth oldest customer, the oldest's with fewer
    select
        case
            when count(*) >= 10 then max(start_date) else min(start_date)
        end as history_start_date

    from oldest_starts

),

{% endif -%}
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

-- a cutoff before the first transaction has no customers to learn from
after_first as (

    select * from cutoffs where cutoff_date >= first_transaction_date

),

{% if year_back -%}
-- the year-back cutoffs the seasonal level uses: two years of history, no kept regular one near
year_back as (

    select after_first.cutoff_index

    from after_first
    cross join history
    left join after_first as regular
        on
        not regular.is_year_back
        and regular.cutoff_index > 0
        and abs({{ clv_days_between('regular.cutoff_date', 'after_first.cutoff_date') }}) <= {{ tolerance }}
    where
        after_first.is_year_back
        and {{ clv_add_days('history.history_start_date', 729) }} <= after_first.as_of_date
    group by after_first.cutoff_index
    having count(regular.cutoff_index) = 0

),

{% else -%}
year_back as (

    -- no year-back offset: none
    select cutoff_index from after_first where is_year_back

),

{% endif -%}
final as (

    select
        cutoff_date,
        cutoff_index,
        cutoff_role,
        as_of_date,
        horizon_days,
        {{ clv_add_days('cutoff_date', 'horizon_days') }} as label_end_date,
        first_transaction_date

    from after_first
    where
        not is_year_back
        or cutoff_index in (select year_back.cutoff_index from year_back)

)

select * from final
