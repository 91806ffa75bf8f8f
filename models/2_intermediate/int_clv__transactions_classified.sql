{#-
    One row per source row, with the reason it cannot be used (null when usable).
    Reasons, first match wins: missing_customer_id, invalid_timestamp, invalid_amount,
    duplicate_transaction, after_as_of_date. A duplicate is a later copy of a usable row that
    is identical in every mapped column (transaction id, customer, timestamp, amount, category):
    order lines that share a transaction id but differ in any of them are parts of one order
    and all count. Copies are ranked only among the few rows whose transaction_id repeats, so
    the ranking sorts those rows instead of every source row. The as-of date comes from
    int_clv__as_of_date, not from the cutoffs, so clv_data_quality builds even when no cutoff
    can (no usable row).
-#}

with

checked_transactions as (

    select * from {{ ref('int_clv__transactions_checked') }}

),

as_of as (

    select as_of_date from {{ ref('int_clv__as_of_date') }}

),

repeated_transaction_ids as (

    select transaction_id

    from checked_transactions
    where row_problem is null
        and transaction_id is not null
    group by transaction_id
    having count(*) > 1

),

flagged as (

    select
        checked_transactions.*,
        (
            checked_transactions.row_problem is null
            and repeated_transaction_ids.transaction_id is not null
        ) as has_repeated_id

    from checked_transactions
    left join repeated_transaction_ids
        on checked_transactions.transaction_id = repeated_transaction_ids.transaction_id

),

repeated_copies_ranked as (

    select
        *,
        row_number() over (
            partition by transaction_id, customer_id, transacted_at, amount, product_category
            order by {{ clv_collate_binary('transacted_at_text') }}, {{ clv_collate_binary('amount_text') }}
        ) as transaction_copy_number

    from flagged
    where has_repeated_id

),

single_copies as (

    select
        *,
        1 as transaction_copy_number

    from flagged
    where not has_repeated_id

),

ranked as (

    select * from repeated_copies_ranked
    union all
    select * from single_copies

),

classified as (

    select
        ranked.transaction_id,
        ranked.customer_id,
        ranked.product_category,
        ranked.transacted_at,
        cast(ranked.transacted_at as date) as transacted_date,
        ranked.amount,
        ranked.transacted_at_text,
        ranked.amount_text,
        case
            when ranked.row_problem is not null then ranked.row_problem
            when ranked.transaction_copy_number > 1 then 'duplicate_transaction'
            when as_of.as_of_date is null or cast(ranked.transacted_at as date) > as_of.as_of_date
                then 'after_as_of_date'
        end as exclusion_reason

    from ranked
    cross join as_of

)

select * from classified
