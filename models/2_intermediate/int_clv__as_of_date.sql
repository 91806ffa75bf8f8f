{%- set settings = clv_settings() -%}
{{ config(post_hook="{{ clv_check_day_month_order() }}") }}
{#-
    One row: the as-of date and the first usable day. The as-of date is clv_as_of_date, or the
    last day with a purchase (a usable row of a positive amount) before today in
    clv_time_zone: today is not over (a source loaded during the day holds part of it, and a
    customer's day would count as inactive until its first order), a far-future row is a clock
    error, and a tail of cancelled orders read as 0, or of refunds, is no sign that the
    business was selling then (an export that lists orders cancelled weeks after the last
    sale would move the as-of date past the data, and every customer would read as quiet since).
    Without a single purchase, every usable day counts. Computed once
    for int_clv__cutoffs and int_clv__transactions_classified, so clv_data_quality does not
    wait for the cutoffs. A duplicate is a copy of a usable row, so excluding it moves neither
    date. Both dates are null when no row is usable.
    With them, how current the data is at the as-of date: the last day with a purchase on or
    before it, and the longest quiet spell before that (the most days from one such day to the
    next), so
    that a test can warn when the as-of date lies further past the data than the data was ever
    quiet (a source that stopped loading, read as every customer going quiet); and the quiet
    spell before the last usable day beside the longest before it, so that a test can warn
    when the last day stands apart from the rest (a mistyped year, 2025 for 2023, becomes the
    as-of date and every customer reads as gone quiet for the years between). And where the
    longest quiet spell ends, so that a test can warn about a month or more without a single
    usable row inside the history (a load that lost months: the windows that span it read as
    every customer going quiet, and the level and the calibration learn from them).
-#}

with

checked_transactions as (

    select * from {{ ref('int_clv__transactions_checked') }}

),

usable_days as (

    select
        cast(transacted_at as date) as transacted_date,
        max(case when amount > 0 then 1 else 0 end) as has_purchase

    from checked_transactions
    where row_problem is null
    group by cast(transacted_at as date)

),

-- a purchase before today: a first load whose only sales are today's is read as before
purchase_presence as (

    select
        max(
            case
                when transacted_date < {{ clv_current_date(settings.time_zone) }} then has_purchase
                else 0
            end
        ) as any_purchase

    from usable_days

),

-- the days the business sold on: with a purchase, or every usable day when none has one
selling_days as (

    select usable_days.transacted_date

    from usable_days
    cross join purchase_presence
    where usable_days.has_purchase = 1 or purchase_presence.any_purchase = 0

),

dates as (

    {% if settings.as_of_date -%}
    select
        cast('{{ settings.as_of_date }}' as date) as as_of_date,
        min(transacted_date) as first_transaction_date

    from usable_days
    {%- else -%}
    select
        max(
            case
                when selling_days.transacted_date < {{ clv_current_date(settings.time_zone) }}
                    then selling_days.transacted_date
            end
        ) as as_of_date,
        min(usable_days.transacted_date) as first_transaction_date

    from usable_days
    left join selling_days on usable_days.transacted_date = selling_days.transacted_date
    {%- endif %}

),

days_to_as_of as (

    select
        selling_days.transacted_date,
        lag(selling_days.transacted_date) over (order by selling_days.transacted_date) as previous_date

    from selling_days
    inner join dates on selling_days.transacted_date <= dates.as_of_date

),

quiet_spells as (

    select
        transacted_date,
        {{ clv_days_between('previous_date', 'transacted_date') }} as quiet_days

    from days_to_as_of

),

recency as (

    select
        max(transacted_date) as last_transaction_date,
        max(quiet_days) as longest_quiet_days,
        {{ clv_arg_max('transacted_date', 'quiet_days') }} as longest_quiet_ends,
        {{ clv_arg_max('quiet_days', 'transacted_date') }} as quiet_days_before_last

    from quiet_spells

),

earlier as (

    select max(quiet_spells.quiet_days) as longest_earlier_quiet_days

    from quiet_spells
    inner join recency on quiet_spells.transacted_date < recency.last_transaction_date

),

final as (

    select
        dates.as_of_date,
        dates.first_transaction_date,
        recency.last_transaction_date,
        {{ clv_days_between('recency.last_transaction_date', 'dates.as_of_date') }} as days_since_last_transaction,
        recency.longest_quiet_days,
        recency.longest_quiet_ends,
        recency.quiet_days_before_last,
        earlier.longest_earlier_quiet_days

    from dates
    cross join recency
    cross join earlier

)

select * from final
