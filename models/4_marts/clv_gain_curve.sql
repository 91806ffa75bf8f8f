{#-
    One row per model per predictor per percent: the published face of int_clv__gain_curve (read
    from each model's metadata by a Python model, which cannot carry a contract), every column
    cast to its contract type.
-#}

with

gain_curve as (

    select * from {{ ref('int_clv__gain_curve') }}

),

final as (

    select
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(is_current as boolean) as is_current,
        cast(validation_cutoff as {{ dbt.type_string() }}) as validation_cutoff,
        cast(predictor as {{ dbt.type_string() }}) as predictor,
        cast(percent as bigint) as percent,
        cast(customers as bigint) as customers,
        cast(captured_share as {{ clv_type_double() }}) as captured_share,
        cast(oracle_share as {{ clv_type_double() }}) as oracle_share

    from gain_curve

)

select * from final
