{#-
    One row per customer in clv_scoring_examples: the published face of
    int_clv__prediction_explanations (the Python explanations step, which cannot carry a
    contract), every column cast to its contract type, so an empty table (clv_explanations
    false) has the same columns and types as a full one. as_of_date is the scoring run's the
    explanations step read, so a rebuild of this table alone keeps the date they are for.
-#}

with

explanations as (

    select * from {{ ref('int_clv__prediction_explanations') }}

),

final as (

    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(reference_clv as {{ clv_type_double() }}) as reference_clv,
        cast(predicted_clv as {{ clv_type_double() }}) as predicted_clv,
        cast(driver_1_group as {{ dbt.type_string() }}) as driver_1_group,
        cast(driver_1_contribution as {{ clv_type_double() }}) as driver_1_contribution,
        cast(driver_2_group as {{ dbt.type_string() }}) as driver_2_group,
        cast(driver_2_contribution as {{ clv_type_double() }}) as driver_2_contribution,
        cast(driver_3_group as {{ dbt.type_string() }}) as driver_3_group,
        cast(driver_3_contribution as {{ clv_type_double() }}) as driver_3_contribution,
        cast(contribution_total as {{ clv_type_double() }}) as contribution_total,
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(as_of_date as date) as as_of_date

    from explanations

)

select * from final
