{#-
    One row per source row, with the reason it cannot be used (null when usable).
    Reasons, first match wins: missing_customer_id, invalid_timestamp, invalid_amount,
    duplicate_transaction (a later copy of a usable row's transaction_id), after_as_of_date.
-#}

with

checked_transactions as (

    select * from {{ ref('int_clv__transactions_checked') }}

),

cutoffs as (

    select * from {{ ref('clv_cutoffs') }}

),

as_of as (

    select max(as_of_date) as as_of_date from cutoffs

),

ranked as (

    select
        *,
        row_number() over (
            partition by case when row_problem is null then transaction_id end
            order by transacted_at, customer_id, amount
        ) as transaction_copy_number

    from checked_transactions

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
            when ranked.transaction_id is not null and ranked.transaction_copy_number > 1
                then 'duplicate_transaction'
            when as_of.as_of_date is null or cast(ranked.transacted_at as date) > as_of.as_of_date
                then 'after_as_of_date'
        end as exclusion_reason

    from ranked
    cross join as_of

)

select * from classified
