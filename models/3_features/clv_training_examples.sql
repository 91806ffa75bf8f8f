{%- set settings = clv_settings() -%}
{#-
    One row per customer per training cutoff: the features and sequence as of the cutoff and
    the label, the customer's net spend in (cutoff, cutoff + horizon], rounded to 6 decimals and
    floored at 0.
    The latest training cutoff (cutoff_role = 'validation') is held out for validation.
    Above the rows training reads (clv_max_train_rows, clv_max_validation_rows), a uniform
    sample of the customers of each cutoff: those of int_clv__training_sample.

    Built one cutoff at a time (a UNION ALL of one query per cutoff, each with its own label
    join), so no step holds more than one cutoff's customers; with clv_retrain = never,
    int_clv__cutoffs has no training cutoff and every part is empty.
-#}

with

label_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

training_cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }} where cutoff_role in ('training', 'validation')

),

training_sample as (

    select * from {{ ref('int_clv__training_sample') }}

),

final as (

    {% for cutoff_index in settings.training_cutoff_indexes %}
    {{- 'union all' if not loop.first }}
    select
        features.*,
        training_cutoffs.cutoff_role,
        -- purchases and refunds that cancel leave a sum of doubles such as 5.6e-17 (0.1 + 0.2
        -- - 0.3), or 1e-6 for amounts of 1e10, which would make a buyer whose log spend is -37
        greatest(coalesce({{ clv_cancelled_to_zero('labels.net_revenue', 'labels.turnover') }}, 0), 0)
            as label_revenue,
        coalesce(labels.orders, 0) as label_orders

    from ({{ clv_customer_features_at(cutoff_index, with_sequence=true, sampled=true) }}) as features
    inner join training_cutoffs
        on features.cutoff_date = training_cutoffs.cutoff_date
    -- the labels of this cutoff only, inside its part of the union (a CTE would hold every
    -- cutoff's labels at once)
    left join (  -- noqa: ST05

        select
            label_days.customer_id,
            sum(label_days.net_revenue) as net_revenue,
            sum(label_days.gross_revenue + label_days.refund_amount) as turnover,
            cast(sum(label_days.orders) as bigint) as orders

        from label_days
        inner join training_cutoffs as label_cutoff
            on label_days.activity_date > label_cutoff.cutoff_date
            and label_days.activity_date <= label_cutoff.label_end_date
        inner join training_sample
            on label_days.customer_id = training_sample.customer_id
            and label_cutoff.cutoff_index = training_sample.cutoff_index
        where label_cutoff.cutoff_index = {{ cutoff_index }}
        group by label_days.customer_id

    ) as labels
        on features.customer_id = labels.customer_id
    {% endfor %}

)

select * from final
