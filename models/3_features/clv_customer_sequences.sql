{%- set settings = clv_settings() -%}
{#-
    One row per customer per cutoff: the last clv_sequence_periods periods of activity as
    fixed-length, zero-padded columns seq_<channel>_lag_<NN> (lag 01 ends on the cutoff day).
    Pivoted straight from the customer-days in the sequence window (one aggregation, no
    intermediate per-period table); the sums are the ones int_clv__customer_period_activity
    computes per period.
-#}

with

customer_features as (

    select * from {{ ref('clv_customer_features') }}

),

customer_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }}

),

history as (

    select
        customer_id,
        cutoff_date,
        orders,
        net_revenue as revenue,
        case when is_purchase_day then 1 else 0 end as active_days,
        period_lag

    from ({{ clv_sequence_window_days('customer_days', 'cutoffs') }}) as window_days

),

pivoted as (

    select
        customer_id,
        cutoff_date,
        {%- for channel in settings.channels %}
        {%- set channel_loop = loop %}
        {%- for lag in range(1, settings.sequence_periods + 1) %}
        {{ 'cast(' if channel != 'revenue' }}sum(case when period_lag = {{ lag }} then {{ channel }} else 0 end){{ ' as bigint)' if channel != 'revenue' }}
            as seq_{{ channel }}_lag_{{ '%02d' % lag }}{{ ',' if not (channel_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}

    from history
    group by customer_id, cutoff_date

),

final as (

    select
        customer_features.customer_id,
        customer_features.cutoff_date,
        {%- for channel in settings.channels %}
        {%- set channel_loop = loop %}
        {%- for lag in range(1, settings.sequence_periods + 1) %}
        {%- set column = 'seq_' ~ channel ~ '_lag_' ~ ('%02d' % lag) %}
        coalesce(pivoted.{{ column }}, 0) as {{ column }}{{ ',' if not (channel_loop.last and loop.last) }}
        {%- endfor %}
        {%- endfor %}

    from customer_features
    left join pivoted
        on customer_features.customer_id = pivoted.customer_id
        and customer_features.cutoff_date = pivoted.cutoff_date

)

select * from final
