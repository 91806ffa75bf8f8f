{#-
    One row per product category: the customers whose first purchase was in that category, their
    mean predicted_clv and purchase_probability from clv_predictions, the same means over every
    customer in clv_predictions, and the ratios of the two ("which products bring valuable
    customers"). The medians of predicted_clv, and their ratio, beside the means: a few large
    accounts among a category's customers move its mean, not its median.

    First purchase category: a customer's first purchase day is the earliest day on or before
    the as-of date with a usable purchase (a positive amount, as in int_clv__customer_days). Of
    that day's usable purchases with a category, the category with the largest spend that day
    wins; equal spend goes to the category first in alphabetical order. A customer none of whose
    first-day purchases has a category has no first purchase category: left out of the rows,
    but counted in the overall means. Without product categories the model is empty.
-#}

with

classified_transactions as (

    select * from {{ ref('int_clv__transactions_classified') }}

),

predictions as (

    select * from {{ ref('clv_predictions') }}

),

usable_purchases as (

    select * from classified_transactions where exclusion_reason is null and amount > 0

),

first_purchase_days as (

    select
        customer_id,
        min(transacted_date) as first_purchase_date

    from usable_purchases
    group by customer_id

),

first_day_category_spend as (

    select
        usable_purchases.customer_id,
        usable_purchases.product_category,
        sum(usable_purchases.amount) as category_spend

    from usable_purchases
    inner join first_purchase_days
        on usable_purchases.customer_id = first_purchase_days.customer_id
        and usable_purchases.transacted_date = first_purchase_days.first_purchase_date
    where usable_purchases.product_category is not null
    group by usable_purchases.customer_id, usable_purchases.product_category

),

first_day_categories_ranked as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by {{ clv_round('category_spend', 6) }} desc, {{ clv_collate_binary('product_category') }} asc
        ) as category_rank

    from first_day_category_spend

),

first_purchase_categories as (

    select * from first_day_categories_ranked where category_rank = 1

),

overall as (

    select
        max(as_of_date) as as_of_date,
        count(*) as all_customers,
        avg(predicted_clv) as overall_mean_predicted_clv,
        percentile_cont(0.5) within group (order by predicted_clv) as overall_median_predicted_clv,
        avg(purchase_probability) as overall_mean_purchase_probability

    from predictions

),

category_means as (

    select
        first_purchase_categories.product_category,
        count(*) as customers,
        avg(predictions.predicted_clv) as mean_predicted_clv,
        percentile_cont(0.5) within group (order by predictions.predicted_clv) as median_predicted_clv,
        avg(predictions.purchase_probability) as mean_purchase_probability

    from first_purchase_categories
    inner join predictions
        on first_purchase_categories.customer_id = predictions.customer_id
    group by first_purchase_categories.product_category

),

final as (

    select
        category_means.product_category,
        overall.as_of_date,
        category_means.customers,
        cast(category_means.customers as {{ clv_type_double() }}) / overall.all_customers as share_of_customers,
        category_means.mean_predicted_clv,
        overall.overall_mean_predicted_clv,
        category_means.mean_predicted_clv
        / nullif(overall.overall_mean_predicted_clv, 0) as predicted_clv_ratio,
        category_means.median_predicted_clv,
        overall.overall_median_predicted_clv,
        category_means.median_predicted_clv
        / nullif(overall.overall_median_predicted_clv, 0) as median_predicted_clv_ratio,
        category_means.mean_purchase_probability,
        overall.overall_mean_purchase_probability,
        category_means.mean_purchase_probability
        / nullif(overall.overall_mean_purchase_probability, 0) as purchase_probability_ratio

    from category_means
    cross join overall

)

select * from final
