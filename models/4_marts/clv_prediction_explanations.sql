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
        cast(explanations.customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(explanations.reference_clv as {{ clv_type_double() }}) as reference_clv,
        cast(explanations.predicted_clv as {{ clv_type_double() }}) as predicted_clv,
        cast(explanations.driver_1_group as {{ dbt.type_string() }}) as driver_1_group,
        cast(explanations.driver_1_contribution as {{ clv_type_double() }}) as driver_1_contribution,
        cast(explanations.driver_2_group as {{ dbt.type_string() }}) as driver_2_group,
        cast(explanations.driver_2_contribution as {{ clv_type_double() }}) as driver_2_contribution,
        cast(explanations.driver_3_group as {{ dbt.type_string() }}) as driver_3_group,
        cast(explanations.driver_3_contribution as {{ clv_type_double() }}) as driver_3_contribution,
        cast(explanations.contribution_total as {{ clv_type_double() }}) as contribution_total,
        cast(explanations.model_version as {{ dbt.type_string() }}) as model_version,
        cast(explanations.as_of_date as date) as as_of_date

    from explanations

)

select * from final
