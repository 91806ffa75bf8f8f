{#-
    One row per model per predictor per percent: the published face of int_clv__gain_curve (read
    from each model's metadata by a Python model, which cannot carry a contract), every column
    cast to its contract type.
    is_current comes from clv_model_registry: the model behind clv_predictions, so a build
    that fails while scoring leaves it on the model whose predictions users still read.
-#}

with

gain_curve as (

    select * from {{ ref('int_clv__gain_curve') }}

),

registry as (

    select
        model_version,
        is_current
    from {{ ref('clv_model_registry') }}

),

final as (

    select
        cast(gain_curve.model_version as {{ dbt.type_string() }}) as model_version,
        cast(coalesce(registry.is_current, false) as boolean) as is_current,
        cast(gain_curve.validation_cutoff as date) as validation_cutoff,
        cast(gain_curve.predictor as {{ dbt.type_string() }}) as predictor,
        cast(gain_curve.percent as bigint) as percent,
        cast(gain_curve.customers as bigint) as customers,
        cast(gain_curve.captured_share as {{ clv_type_double() }}) as captured_share,
        cast(gain_curve.oracle_share as {{ clv_type_double() }}) as oracle_share

    from gain_curve
    left join registry
        on gain_curve.model_version = registry.model_version

)

select * from final
