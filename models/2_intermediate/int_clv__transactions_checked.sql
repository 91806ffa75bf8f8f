{#-
    A table: the source is parsed here once (its timestamps and amounts are text in most
    exports, and parsing them is the costliest step per row); the as-of date, the
    classification and its readers read this table instead of parsing the source again.
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

)

select * from checked
