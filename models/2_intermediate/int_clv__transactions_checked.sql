{{ config(materialized='view') }}

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
