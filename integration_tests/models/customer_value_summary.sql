{#- A root-project model built on the package's predictions: one row per segment. -#}

with

predictions as (

    select * from {{ ref('clv', 'clv_predictions') }}

),

final as (

    select
        segment,
        count(*) as customers,
        sum(predicted_clv) as predicted_value

    from predictions
    group by segment

)

select * from final
