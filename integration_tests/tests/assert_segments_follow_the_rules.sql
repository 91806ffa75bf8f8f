{#-
    Each prediction's segment is the one the documented rules give (clv's _marts__models.yml,
    first match wins), recomputed from its value decile, its days since the first purchase
    (t_days at the as-of date) and its purchase probability.
-#}

with

predictions as (

    select * from {{ ref('clv', 'clv_predictions') }}

),

customer_features as (

    select * from {{ ref('clv', 'clv_customer_features') }}

),

segments_by_rule as (

    select
        predictions.customer_id,
        predictions.segment,
        case
            when predictions.value_decile <= 2 then 'high_value'
            when customer_features.t_days < 90 then 'new'
            when predictions.purchase_probability >= 0.5 then 'active'
            when predictions.purchase_probability >= 0.2 then 'at_risk'
            else 'dormant'
        end as segment_by_rule

    from predictions
    inner join customer_features
        on predictions.customer_id = customer_features.customer_id
        and predictions.as_of_date = customer_features.cutoff_date

)

select * from segments_by_rule
where segment is distinct from segment_by_rule
