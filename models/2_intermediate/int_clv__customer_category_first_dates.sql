{#- One row per customer per product category: the first day the customer bought from it. -#}

with

classified_transactions as (

    select * from {{ ref('int_clv__transactions_classified') }}

),

first_dates as (

    select
        customer_id,
        product_category,
        min(transacted_date) as first_purchase_date

    from classified_transactions
    where exclusion_reason is null
        and amount > 0
        and product_category is not null
    group by customer_id, product_category

),

final as (

    select * from first_dates

)

select * from final
