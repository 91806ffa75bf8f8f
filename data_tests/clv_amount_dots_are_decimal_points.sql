{#-
    "WARN 1 clv_amount_dots_are_decimal_points": the usable amounts look like whole numbers
    written with a dot between the thousands (1.250 for 1,250, as German or Brazilian exports
    write them), which a CSV reader takes for decimals (1.25): at least 20 usable amounts, and
    at least half of those with a fraction, have exactly three decimals, and no whole amount
    reaches 1,000. Money has two decimals;
    with a dot between the thousands, every amount from 1,000 up has three. Such amounts read
    a thousand times too small, without a row left out. Set clv_decimal_separator: ',' (which
    reads the file's numbers as text), or turn this test off for a currency with three
    decimals. The row holds the counts and the smallest such amount.
-#}
{{ config(severity='warn') }}

with

usable_amounts as (

    select amount
    from {{ ref('int_clv__transactions_checked') }}
    where row_problem is null

),

kinds as (

    select
        amount,
        amount <> round(amount) as has_fraction,
        abs(amount * 100 - round(amount * 100)) > 1e-6
        and abs(amount * 1000 - round(amount * 1000)) <= 1e-6 as has_three_decimals
    from usable_amounts

),

counts as (

    select
        sum(case when has_fraction then 1 else 0 end) as amounts_with_a_fraction,
        sum(case when has_three_decimals then 1 else 0 end) as amounts_with_three_decimals,
        sum(case when not has_fraction and abs(amount) >= 1000 then 1 else 0 end) as whole_amounts_from_1000,
        min(case when has_three_decimals then abs(amount) end) as smallest_three_decimal_amount
    from kinds

)

select *
from counts
where
    amounts_with_three_decimals >= 20
    and amounts_with_three_decimals * 2 >= amounts_with_a_fraction
    and whole_amounts_from_1000 = 0
