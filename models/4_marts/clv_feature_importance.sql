{#-
    One row per model per feature group: the published face of int_clv__feature_importance
    (permutation importance read from each model's metadata by a Python model, which cannot carry
    a contract), every column cast to its contract type.
-#}

with

importance as (

    select * from {{ ref('int_clv__feature_importance') }}

),

final as (

    select
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(is_current as boolean) as is_current,
        cast(validation_cutoff as {{ dbt.type_string() }}) as validation_cutoff,
        cast(feature_group as {{ dbt.type_string() }}) as feature_group,
        cast(columns as bigint) as columns,  -- noqa: RF04
        cast(repeats as bigint) as repeats,
        cast(baseline_gini as {{ clv_type_double() }}) as baseline_gini,
        cast(permuted_gini as {{ clv_type_double() }}) as permuted_gini,
        cast(gini_drop as {{ clv_type_double() }}) as gini_drop,
        cast(gini_drop_std as {{ clv_type_double() }}) as gini_drop_std,
        cast(baseline_aggregate_error as {{ clv_type_double() }}) as baseline_aggregate_error,
        cast(permuted_aggregate_error as {{ clv_type_double() }}) as permuted_aggregate_error,
        cast(aggregate_error_change as {{ clv_type_double() }}) as aggregate_error_change

    from importance

)

select * from final
