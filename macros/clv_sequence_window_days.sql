{#-
    The customer-days inside each cutoff's sequence window (the last clv_sequence_periods
    periods of clv_period_days days, the cutoff day included), one row per customer-day and
    cutoff, with the period it falls in: period_lag 1 ends on the cutoff day, period_lag N is
    the oldest. Shared by the per-period activity and the sequence pivot, so both bucket days
    the same way.
-#}
{% macro clv_sequence_window_days(customer_days, cutoffs) %}
    {%- set settings = clv_settings() -%}
    select
        {{ customer_days }}.customer_id,
        {{ cutoffs }}.cutoff_date,
        {{ customer_days }}.orders,
        {{ customer_days }}.net_revenue,
        {{ customer_days }}.is_purchase_day,
        cast(floor({{ clv_days_between(customer_days ~ '.activity_date', cutoffs ~ '.cutoff_date') }} / {{ settings.period_days }}) as integer) + 1
            as period_lag

    from {{ customer_days }}
    inner join {{ cutoffs }}
        on {{ customer_days }}.activity_date <= {{ cutoffs }}.cutoff_date
        and {{ customer_days }}.activity_date > {{ clv_add_days(cutoffs ~ '.cutoff_date', -settings.period_days * settings.sequence_periods) }}
{% endmacro %}
