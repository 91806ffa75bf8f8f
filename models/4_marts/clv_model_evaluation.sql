{#-
    One row per model per predictor: the published face of int_clv__model_evaluation (validation
    metrics read from each model's metadata by a Python model, which cannot carry a contract).
    Every column is cast to its contract type: a table without rows, or a metric no saved model
    has yet, still has its type.
-#}

with

evaluation as (

    select * from {{ ref('int_clv__model_evaluation') }}

),

final as (

    select
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(is_current as boolean) as is_current,
        cast(validation_cutoff as {{ dbt.type_string() }}) as validation_cutoff,
        cast(predictor as {{ dbt.type_string() }}) as predictor,
        cast(customers as bigint) as customers,
        cast(actual_total as {{ clv_type_double() }}) as actual_total,
        cast(predicted_total as {{ clv_type_double() }}) as predicted_total,
        cast(normalized_gini as {{ clv_type_double() }}) as normalized_gini,
        cast(spearman as {{ clv_type_double() }}) as spearman,
        cast(aggregate_error as {{ clv_type_double() }}) as aggregate_error,
        cast(decile_mape as {{ clv_type_double() }}) as decile_mape,
        cast(top_decile_capture as {{ clv_type_double() }}) as top_decile_capture,
        cast(mae as {{ clv_type_double() }}) as mae,
        cast(rmse as {{ clv_type_double() }}) as rmse,
        cast(auc as {{ clv_type_double() }}) as auc,
        cast(brier_score as {{ clv_type_double() }}) as brier_score,
        cast(p10_p90_coverage as {{ clv_type_double() }}) as p10_p90_coverage,
        cast(p90_exceedance as {{ clv_type_double() }}) as p90_exceedance,
        cast(p10_shortfall as {{ clv_type_double() }}) as p10_shortfall,
        cast(purchase_probability_ece as {{ clv_type_double() }}) as purchase_probability_ece

    from evaluation

)

select * from final
