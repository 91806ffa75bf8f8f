{#-
    One row per customer per training cutoff: the features and sequence as of the cutoff and
    the label, the customer's net spend in (cutoff, cutoff + horizon], floored at 0.
    The latest training cutoff (cutoff_role = 'validation') is held out for validation.
-#}

with

customer_features as (

    select * from {{ ref('clv_customer_features') }}

),

customer_sequences as (

    select * from {{ ref('clv_customer_sequences') }}

),

customer_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }}

),

training_cutoffs as (

    select * from cutoffs where cutoff_role in ('training', 'validation')

),

labels as (

    select
        customer_days.customer_id,
        training_cutoffs.cutoff_date,
        sum(customer_days.net_revenue) as net_revenue,
        cast(sum(customer_days.orders) as bigint) as orders

    from customer_days
    inner join training_cutoffs
        on customer_days.activity_date > training_cutoffs.cutoff_date
        and customer_days.activity_date <= training_cutoffs.label_end_date
    group by customer_days.customer_id, training_cutoffs.cutoff_date

),

final as (

    select
        customer_features.*,
        training_cutoffs.cutoff_role,
        {%- for column in clv_sequence_columns() %}
        customer_sequences.{{ column }},
        {%- endfor %}
        greatest(coalesce(labels.net_revenue, 0), 0) as label_revenue,
        coalesce(labels.orders, 0) as label_orders

    from customer_features
    inner join training_cutoffs
        on customer_features.cutoff_date = training_cutoffs.cutoff_date
    inner join customer_sequences
        on customer_features.customer_id = customer_sequences.customer_id
        and customer_features.cutoff_date = customer_sequences.cutoff_date
    left join labels
        on customer_features.customer_id = labels.customer_id
        and customer_features.cutoff_date = labels.cutoff_date

)

select * from final
