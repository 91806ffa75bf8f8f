{%- set settings = clv_settings() -%}
{{ config(materialized='view') }}
{#-
    One row per customer per cutoff per period: the complete spine of the last
    clv_sequence_periods periods before each cutoff, zeros where the customer was inactive.
    A view: the sequences in clv_customer_sequences are this spine pivoted to columns.
-#}

with

customer_features as (

    select * from {{ ref('clv_customer_features') }}

),

period_activity as (

    select * from {{ ref('int_clv__customer_period_activity') }}

),

period_lags as (

    {% for lag in range(1, settings.sequence_periods + 1) -%}
    select {{ lag }} as period_lag {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

spine as (

    select
        customer_features.customer_id,
        customer_features.cutoff_date,
        period_lags.period_lag,
        {{ clv_add_days('customer_features.cutoff_date', '-period_lags.period_lag * ' ~ settings.period_days ~ ' + 1') }}
            as period_start_date,
        {{ clv_add_days('customer_features.cutoff_date', '-(period_lags.period_lag - 1) * ' ~ settings.period_days) }}
            as period_end_date

    from customer_features
    cross join period_lags

),

final as (

    select
        spine.customer_id,
        spine.cutoff_date,
        spine.period_lag,
        spine.period_start_date,
        spine.period_end_date,
        coalesce(period_activity.orders, 0) as orders,
        coalesce(period_activity.revenue, 0) as revenue,
        coalesce(period_activity.active_days, 0) as active_days

    from spine
    left join period_activity
        on spine.customer_id = period_activity.customer_id
        and spine.cutoff_date = period_activity.cutoff_date
        and spine.period_lag = period_activity.period_lag

)

select * from final
