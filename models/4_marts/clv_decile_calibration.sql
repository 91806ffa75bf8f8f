{#-
    One row per model per predictor per prediction decile: the published face of
    int_clv__decile_calibration (read from each model's metadata by a Python model, which cannot
    carry a contract), every column cast to its contract type.
    is_current comes from clv_model_registry: the model behind clv_predictions, so a build
    that fails while scoring leaves it on the model whose predictions users still read.
-#}

with

calibration as (

    select * from {{ ref('int_clv__decile_calibration') }}

),

registry as (

    select
        model_version,
        is_current
    from {{ ref('clv_model_registry') }}

),

final as (

    select
        cast(calibration.model_version as {{ dbt.type_string() }}) as model_version,
        cast(coalesce(registry.is_current, false) as boolean) as is_current,
        cast(calibration.validation_cutoff as date) as validation_cutoff,
        cast(calibration.predictor as {{ dbt.type_string() }}) as predictor,
        cast(calibration.decile as bigint) as decile,
        cast(calibration.customers as bigint) as customers,
        cast(calibration.mean_predicted as {{ clv_type_double() }}) as mean_predicted,
        cast(calibration.mean_actual as {{ clv_type_double() }}) as mean_actual

    from calibration
    left join registry
        on calibration.model_version = registry.model_version

)

select * from final
