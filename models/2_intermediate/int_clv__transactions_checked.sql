{#-
    One row per source row, with the reason it cannot be used whatever the as-of date (null
    when usable). Reasons, first match wins: missing_customer_id, invalid_timestamp,
    invalid_amount, duplicate_transaction. A duplicate is a later copy of a usable row that is
    identical in every mapped column (transaction id, customer, timestamp, amount, category):
    order lines that share a transaction id but differ in any of them are parts of one order
    and all count. Copies are ranked only among the few rows whose transaction_id repeats, so
    the ranking sorts those rows instead of every source row.

    problem_value is the raw text that shows the problem (the timestamp or the amount as
    written; the transaction id, else the timestamp, for a missing customer or a duplicate),
    null on usable rows: clv_data_quality's examples. Nothing downstream reads the transaction
    id or the raw texts of usable rows, and a text unique to each row is the costliest column
    to write (about a fifth of this table's time at 9M rows), so they are not kept.

    The only table of source rows: the source is parsed here once (its timestamps and amounts
    are text in most exports, and parsing them is the costliest step per row), and
    int_clv__transactions_classified adds the as-of date's reason as a view over it, so each
    build writes the source rows once.
-#}

with

transactions as (

    select * from {{ ref('stg_clv__transactions') }}

),

checked as (

    select
        *,
        case
            when customer_id is null then 'missing_customer_id'
            when transacted_at is null then 'invalid_timestamp'
            when amount is null or not {{ clv_is_finite('amount') }} then 'invalid_amount'
        end as row_problem

    from transactions

),

repeated_transaction_ids as (

    select transaction_id

    from checked
    where row_problem is null
        and transaction_id is not null
    group by transaction_id
    having count(*) > 1

),

flagged as (

    select
        checked.*,
        (
            checked.row_problem is null
            and repeated_transaction_ids.transaction_id is not null
        ) as has_repeated_id

    from checked
    left join repeated_transaction_ids
        on checked.transaction_id = repeated_transaction_ids.transaction_id

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

with_problem as (

    select
        *,
        case
            when row_problem is not null then row_problem
            when transaction_copy_number > 1 then 'duplicate_transaction'
        end as checked_problem

    from ranked

),

final as (

    select
        customer_id,
        product_category,
        transacted_at,
        amount,
        checked_problem as row_problem,
        case
            when checked_problem = 'invalid_timestamp' then coalesce(transacted_at_text, '<null>')
            when checked_problem = 'invalid_amount' then coalesce(amount_text, '<null>')
            when checked_problem is not null then coalesce(transaction_id, transacted_at_text, '<null>')
        end as problem_value

    from with_problem

)

select * from final
