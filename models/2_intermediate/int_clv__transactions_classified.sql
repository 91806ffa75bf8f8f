{{ config(materialized="view") }}
{#-
    One row per source row, with the reason it cannot be used (null when usable): the row's
    own problem from int_clv__transactions_checked (missing_customer_id, invalid_timestamp,
    invalid_amount, duplicate_transaction), else after_as_of_date. A view: the readers (the
    customer days, the first purchase categories, clv_data_quality and clv_category_value) read
    the one table of source rows. The as-of date comes from int_clv__as_of_date, not from the
    cutoffs, so clv_data_quality builds even when no cutoff can (no usable row).
-#}

with

checked_transactions as (

    select * from {{ ref('int_clv__transactions_checked') }}

),

as_of as (

    select as_of_date from {{ ref('int_clv__as_of_date') }}

),

classified as (

    select
        checked_transactions.customer_id,
        checked_transactions.product_category,
        checked_transactions.transacted_at,
        cast(checked_transactions.transacted_at as date) as transacted_date,
        checked_transactions.amount,
        checked_transactions.problem_value,
        case
            when checked_transactions.row_problem is not null then checked_transactions.row_problem
            when as_of.as_of_date is null or cast(checked_transactions.transacted_at as date) > as_of.as_of_date
                then 'after_as_of_date'
        end as exclusion_reason

    from checked_transactions
    cross join as_of

),

final as (

    select * from classified

)

select * from final
