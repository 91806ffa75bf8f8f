{#-
    One row per model per predictor: the published face of int_clv__model_evaluation (validation
    metrics read from each model's metadata by a Python model, which cannot carry a contract).
    Every column is cast to its contract type: a table without rows, or a metric no saved model
    has yet, still has its type.
    is_current comes from clv_model_registry: the model behind clv_predictions, so a build
    that fails while scoring leaves it on the model whose predictions users still read.
-#}

with

evaluation as (

    select * from {{ ref('int_clv__model_evaluation') }}

),

registry as (

    select
        model_version,
        is_current
    from {{ ref('clv_model_registry') }}

),

final as (

    select
        cast(evaluation.model_version as {{ dbt.type_string() }}) as model_version,
        cast(coalesce(registry.is_current, false) as boolean) as is_current,
        cast(evaluation.validation_cutoff as date) as validation_cutoff,
        cast(evaluation.predictor as {{ dbt.type_string() }}) as predictor,
        cast(evaluation.customers as bigint) as customers,
        cast(evaluation.actual_total as {{ clv_type_double() }}) as actual_total,
        cast(evaluation.predicted_total as {{ clv_type_double() }}) as predicted_total,
        cast(evaluation.normalized_gini as {{ clv_type_double() }}) as normalized_gini,
        cast(evaluation.spearman as {{ clv_type_double() }}) as spearman,
        cast(evaluation.aggregate_error as {{ clv_type_double() }}) as aggregate_error,
        cast(evaluation.decile_mape as {{ clv_type_double() }}) as decile_mape,
        cast(evaluation.top_decile_capture as {{ clv_type_double() }}) as top_decile_capture,
        cast(evaluation.mae as {{ clv_type_double() }}) as mae,
        cast(evaluation.rmse as {{ clv_type_double() }}) as rmse,
        cast(evaluation.auc as {{ clv_type_double() }}) as auc,
        cast(evaluation.brier_score as {{ clv_type_double() }}) as brier_score,
        cast(evaluation.p10_p90_coverage as {{ clv_type_double() }}) as p10_p90_coverage,
        cast(evaluation.p90_exceedance as {{ clv_type_double() }}) as p90_exceedance,
        cast(evaluation.p10_shortfall as {{ clv_type_double() }}) as p10_shortfall,
        cast(evaluation.purchase_probability_ece as {{ clv_type_double() }}) as purchase_probability_ece,
        cast(evaluation.gini_difference_se as {{ clv_type_double() }}) as gini_difference_se

    from evaluation
    left join registry
        on evaluation.model_version = registry.model_version

)

select * from final
