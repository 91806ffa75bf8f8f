{#-
    The feature rows of one cutoff: one row per customer with a usable transaction on or before
    the cutoff of int_clv__cutoffs whose cutoff_index is ``cutoff_index``, every column read
    only from days on or before it; with ``with_sequence``, followed by the activity sequence
    (the columns of clv_sequence_columns(): the last clv_sequence_periods periods of
    clv_period_days days, lag 01 ending on the cutoff day, zero where the customer had no
    activity), summed in the same aggregation. The trailing windows fade at their edges
    (clv_fading_windows.sql); revenue_last_horizon keeps a hard edge: it is also the
    last-horizon baseline's prediction, the spend in exactly the horizon's days.

    With ``sampled``, only the customers int_clv__training_sample keeps at this cutoff (the
    training examples: the rows training reads); otherwise every customer.

    A query (a WITH ... SELECT) to use as a subquery. The feature models build one cutoff at a
    time (a UNION ALL of one such query per cutoff), so each aggregation holds one cutoff's
    customers: the memory and the work grow with the customers, not with customers x cutoffs
    at once.
-#}
{% macro clv_customer_features_at(cutoff_index, with_sequence=false, sampled=false) %}
{%- set settings = clv_settings() -%}
{%- set sequence_values = {
    'orders': 'orders',
    'revenue': 'net_revenue',
    'active_days': 'case when is_purchase_day then 1 else 0 end',
} -%}
with

customer_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }} where cutoff_index = {{ cutoff_index }}

),

category_first_dates as (

    select * from {{ ref('int_clv__customer_category_first_dates') }}

),

customers as (

    select * from {{ ref('stg_clv__customers') }}

),

events as (

    select * from {{ ref('stg_clv__events') }}

),
{%- if sampled %}

sampled_customers as (

    select customer_id from {{ ref('int_clv__training_sample') }} where cutoff_index = {{ cutoff_index }}

),
{%- endif %}

history as (

    select
        customer_days.*,
        cutoffs.cutoff_date,
        {{ clv_days_between('customer_days.activity_date', 'cutoffs.cutoff_date') }} as days_before_cutoff

    from customer_days
    inner join cutoffs
        on customer_days.activity_date <= cutoffs.cutoff_date
    {%- if sampled %}
    inner join sampled_customers
        on customer_days.customer_id = sampled_customers.customer_id
    {%- endif %}

),

aggregated as (

    select
        customer_id,
        cutoff_date,
        min(activity_date) as first_activity_date,
        min(case when is_purchase_day then activity_date end) as first_purchase_date,
        max(case when is_purchase_day then activity_date end) as last_purchase_date,
        count(case when is_purchase_day then 1 end) as purchase_days,
        sum(case when is_purchase_day and not is_first_purchase_day then gross_revenue else 0 end)
            as repeat_gross_revenue,
        sum(case when is_first_purchase_day then gross_revenue else 0 end) as first_order_value,
        {{ clv_arg_max(
            'case when is_purchase_day then gross_revenue end',
            'case when is_purchase_day then activity_date end'
        ) }} as last_order_value,
        cast(sum(orders) as bigint) as orders_total,
        sum(net_revenue) as revenue_total,
        sum(gross_revenue) as gross_revenue_total,
        cast(sum(refunds) as bigint) as refunds_total,
        sum(refund_amount) as refund_amount_total,
        {%- for window in settings.windows %}
        {{ clv_window_sum('orders', 'days_before_cutoff', window) }} as orders_last_{{ window }}d,
        {{ clv_window_sum('net_revenue', 'days_before_cutoff', window) }} as revenue_last_{{ window }}d,
        {{ clv_window_sum(sequence_values.active_days, 'days_before_cutoff', window) }}
            as active_days_last_{{ window }}d,
        {%- endfor %}
        sum(case when days_before_cutoff < {{ settings.horizon_days }} then net_revenue else 0 end)
            as revenue_last_horizon,
        -- PostgreSQL averages integers as numeric
        cast(avg(days_since_previous_purchase) as {{ clv_type_double() }}) as interpurchase_days_mean,
        cast(stddev_samp(days_since_previous_purchase) as {{ clv_type_double() }}) as interpurchase_days_stddev,
        max(days_since_previous_purchase) as interpurchase_days_max
        {%- if with_sequence %}
        {%- for channel in settings.channels %}
        {%- for lag in range(1, settings.sequence_periods + 1) %},
        {{ 'cast(' if channel != 'revenue' }}sum(
            case
                when days_before_cutoff >= {{ (lag - 1) * settings.period_days }}
                    and days_before_cutoff < {{ lag * settings.period_days }}
                    then {{ sequence_values[channel] }}
                else 0
            end
        ){{ ' as bigint)' if channel != 'revenue' }} as seq_{{ channel }}_lag_{{ '%02d' % lag }}
        {%- endfor %}
        {%- endfor %}
        {%- endif %}

    from history
    group by customer_id, cutoff_date

),

categories as (

    select
        category_first_dates.customer_id,
        cutoffs.cutoff_date,
        count(*) as distinct_categories

    from category_first_dates
    inner join cutoffs
        on category_first_dates.first_purchase_date <= cutoffs.cutoff_date
    {%- if sampled %}
    inner join sampled_customers
        on category_first_dates.customer_id = sampled_customers.customer_id
    {%- endif %}
    group by category_first_dates.customer_id, cutoffs.cutoff_date

),

event_history as (

    select
        events.customer_id,
        events.event_type,
        cutoffs.cutoff_date,
        cast(events.event_at as date) as event_date,
        {{ clv_days_between('cast(events.event_at as date)', 'cutoffs.cutoff_date') }} as days_before_cutoff

    from events
    inner join cutoffs
        on cast(events.event_at as date) <= cutoffs.cutoff_date
    {%- if sampled %}
    inner join sampled_customers
        on events.customer_id = sampled_customers.customer_id
    {%- endif %}
    where events.customer_id is not null

),

event_counts as (

    select
        customer_id,
        cutoff_date,
        count(*) as events_total,
        {%- for window in [30, 90] %}
        {{ clv_window_sum('1', 'days_before_cutoff', window) }} as events_last_{{ window }}d,
        {{ clv_window_sum("case when event_type = 'add_to_cart' then 1 else 0 end", 'days_before_cutoff', window) }}
            as add_to_cart_events_last_{{ window }}d,
        {%- endfor %}
        max(event_date) as last_event_date

    from event_history
    group by customer_id, cutoff_date

),

customer_attributes as (

    -- one row per customer even when the attribute table repeats a customer
    select
        customer_id,
        min(signup_date) as signup_date,
        max({{ clv_collate_binary('country') }}) as country,
        max({{ clv_collate_binary('age_band') }}) as age_band
        {%- for name in settings.extra_features %},
        max({{ name }}) as {{ name }}{% endfor %}

    from customers
    where customer_id is not null
    group by customer_id

),

btyd_summary as (

    select
        *,
        greatest(purchase_days - 1, 0) as frequency,
        coalesce({{ clv_days_between('first_purchase_date', 'last_purchase_date') }}, 0) as recency_days,
        {{ clv_days_between('coalesce(first_purchase_date, first_activity_date)', 'cutoff_date') }} as t_days,
        case
            when purchase_days > 1 then repeat_gross_revenue / (purchase_days - 1)
            else 0
        end as monetary_value

    from aggregated

),

final as (

    select
        btyd_summary.customer_id,
        btyd_summary.cutoff_date,
        customer_attributes.country,
        customer_attributes.age_band,
        btyd_summary.frequency,
        btyd_summary.recency_days,
        btyd_summary.t_days,
        btyd_summary.monetary_value,
        btyd_summary.purchase_days,
        btyd_summary.orders_total,
        btyd_summary.revenue_total,
        btyd_summary.gross_revenue_total,
        btyd_summary.refunds_total,
        btyd_summary.refund_amount_total,
        coalesce(btyd_summary.first_order_value, 0) as first_order_value,
        coalesce(btyd_summary.last_order_value, 0) as last_order_value,
        coalesce(btyd_summary.gross_revenue_total / nullif(btyd_summary.orders_total, 0), 0)
            as avg_order_value,
        {%- for window in settings.windows %}
        btyd_summary.orders_last_{{ window }}d,
        btyd_summary.revenue_last_{{ window }}d,
        btyd_summary.active_days_last_{{ window }}d,
        {%- endfor %}
        btyd_summary.revenue_last_horizon,
        coalesce(
            {{ clv_days_between('btyd_summary.last_purchase_date', 'btyd_summary.cutoff_date') }},
            btyd_summary.t_days
        ) as days_since_last_purchase,
        coalesce(btyd_summary.interpurchase_days_mean, 0) as interpurchase_days_mean,
        coalesce(btyd_summary.interpurchase_days_stddev, 0) as interpurchase_days_stddev,
        coalesce(btyd_summary.interpurchase_days_max, 0) as interpurchase_days_max,
        coalesce(
            cast(btyd_summary.orders_last_90d as {{ clv_type_double() }})
            / nullif(btyd_summary.orders_last_365d, 0), 0
        ) as orders_ratio_90d_365d,
        -- net revenue: when refunds cancel the purchases, the 365-day sum is 0 up to float
        -- noise (1e-14 of the amounts, 1e-6 for amounts of 1e10), which must not become a
        -- ratio of 1e25 (clv_cancelled_to_zero)
        coalesce(
            btyd_summary.revenue_last_90d / nullif({{ clv_cancelled_to_zero(
                'btyd_summary.revenue_last_365d',
                'btyd_summary.gross_revenue_total + btyd_summary.refund_amount_total'
            ) }}, 0),
            0
        ) as revenue_ratio_90d_365d,
        coalesce(categories.distinct_categories, 0) as distinct_categories,
        case
            when customer_attributes.signup_date <= btyd_summary.cutoff_date
                then {{ clv_days_between('customer_attributes.signup_date', 'btyd_summary.cutoff_date') }}
        end as days_since_signup,
        coalesce(event_counts.events_total, 0) as events_total,
        coalesce(event_counts.events_last_30d, 0) as events_last_30d,
        coalesce(event_counts.events_last_90d, 0) as events_last_90d,
        coalesce(event_counts.add_to_cart_events_last_30d, 0) as add_to_cart_events_last_30d,
        coalesce(event_counts.add_to_cart_events_last_90d, 0) as add_to_cart_events_last_90d,
        {%- for name in settings.extra_features %}
        customer_attributes.{{ name }},
        {%- endfor %}
        btyd_summary.first_purchase_date,
        btyd_summary.last_purchase_date
        {%- if with_sequence %}
        {%- for column in clv_sequence_columns() %},
        btyd_summary.{{ column }}
        {%- endfor %}
        {%- endif %}

    from btyd_summary
    left join categories
        on btyd_summary.customer_id = categories.customer_id
        and btyd_summary.cutoff_date = categories.cutoff_date
    left join event_counts
        on btyd_summary.customer_id = event_counts.customer_id
        and btyd_summary.cutoff_date = event_counts.cutoff_date
    left join customer_attributes
        on btyd_summary.customer_id = customer_attributes.customer_id

)

select * from final
{% endmacro %}
