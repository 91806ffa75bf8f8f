{#-
    One row per model per predictor per prediction decile: the published face of
    int_clv__decile_calibration (read from each model's metadata by a Python model, which cannot
    carry a contract), every column cast to its contract type.
-#}

with

calibration as (

    select * from {{ ref('int_clv__decile_calibration') }}

),

final as (

    select
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(is_current as boolean) as is_current,
        cast(validation_cutoff as {{ dbt.type_string() }}) as validation_cutoff,
        cast(predictor as {{ dbt.type_string() }}) as predictor,
        cast(decile as bigint) as decile,
        cast(customers as bigint) as customers,
        cast(mean_predicted as {{ clv_type_double() }}) as mean_predicted,
        cast(mean_actual as {{ clv_type_double() }}) as mean_actual

    from calibration

)

select * from final
