{#-
    One row per model per feature group: the published face of int_clv__feature_importance
    (permutation importance read from each model's metadata by a Python model, which cannot carry
    a contract), every column cast to its contract type.
    is_current comes from clv_model_registry: the model behind clv_predictions, so a build
    that fails while scoring leaves it on the model whose predictions users still read.
-#}

with

importance as (

    select * from {{ ref('int_clv__feature_importance') }}

),

registry as (

    select
        model_version,
        is_current
    from {{ ref('clv_model_registry') }}

),

final as (

    select
        cast(importance.model_version as {{ dbt.type_string() }}) as model_version,
        cast(coalesce(registry.is_current, false) as boolean) as is_current,
        cast(importance.validation_cutoff as date) as validation_cutoff,
        cast(importance.feature_group as {{ dbt.type_string() }}) as feature_group,
        cast(importance.columns as bigint) as columns,  -- noqa: RF04
        cast(importance.repeats as bigint) as repeats,
        cast(importance.baseline_gini as {{ clv_type_double() }}) as baseline_gini,
        cast(importance.permuted_gini as {{ clv_type_double() }}) as permuted_gini,
        cast(importance.gini_drop as {{ clv_type_double() }}) as gini_drop,
        cast(importance.gini_drop_std as {{ clv_type_double() }}) as gini_drop_std,
        cast(importance.baseline_aggregate_error as {{ clv_type_double() }}) as baseline_aggregate_error,
        cast(importance.permuted_aggregate_error as {{ clv_type_double() }}) as permuted_aggregate_error,
        cast(importance.aggregate_error_change as {{ clv_type_double() }}) as aggregate_error_change

    from importance
    left join registry
        on importance.model_version = registry.model_version

)

select * from final
