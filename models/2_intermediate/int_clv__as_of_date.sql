{%- set settings = clv_settings() -%}
{{ config(post_hook="{{ clv_check_day_month_order() }}") }}
{#-
    One row: the as-of date and the first usable day. The as-of date is clv_as_of_date, or the
    last usable day before today in clv_time_zone: today is not over (a source loaded during
    the day holds part of it, and a customer's day would count as inactive until its first
    order), and a far-future row is a clock error. Computed once
    for int_clv__cutoffs and int_clv__transactions_classified, so clv_data_quality does not
    wait for the cutoffs. A duplicate is a copy of a usable row, so excluding it moves neither
    date. Both dates are null when no row is usable.
-#}

with

checked_transactions as (

    select * from {{ ref('int_clv__transactions_checked') }}

),

usable_dates as (

    select cast(transacted_at as date) as transacted_date

    from checked_transactions
    where row_problem is null

),

final as (

    select
        {% if settings.as_of_date -%}
        cast('{{ settings.as_of_date }}' as date) as as_of_date,
        {%- else -%}
        max(case when transacted_date < {{ clv_current_date(settings.time_zone) }} then transacted_date end)
            as as_of_date,
        {%- endif %}
        min(transacted_date) as first_transaction_date

    from usable_dates

)

select * from final
