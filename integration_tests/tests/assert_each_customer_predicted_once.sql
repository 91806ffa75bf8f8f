{#-
    Every customer with a usable transaction on or before the as-of date (a row of
    clv_customer_features at the as-of date) has exactly one prediction, with a purchase
    probability in [0, 1]; nobody else has one. Fails with one row per customer that breaks it.
-#}

with

predictions as (

    select * from {{ ref('clv', 'clv_predictions') }}

),

customer_features as (

    select * from {{ ref('clv', 'clv_customer_features') }}

),

customers_at_as_of_date as (

    select distinct customer_id

    from customer_features
    where cutoff_date = cast('{{ var("clv_as_of_date") }}' as date)

),

predictions_per_customer as (

    select
        customer_id,
        count(*) as predictions,
        min(purchase_probability) as min_purchase_probability,
        max(purchase_probability) as max_purchase_probability

    from predictions
    group by customer_id

),

final as (

    select
        coalesce(customers_at_as_of_date.customer_id, predictions_per_customer.customer_id) as customer_id,
        customers_at_as_of_date.customer_id is not null as is_customer,
        coalesce(predictions_per_customer.predictions, 0) as predictions,
        predictions_per_customer.min_purchase_probability,
        predictions_per_customer.max_purchase_probability

    from customers_at_as_of_date
    full outer join predictions_per_customer
        on customers_at_as_of_date.customer_id = predictions_per_customer.customer_id

)

select * from final
where not is_customer
    or predictions <> 1
    or not (min_purchase_probability >= 0 and max_purchase_probability <= 1)
