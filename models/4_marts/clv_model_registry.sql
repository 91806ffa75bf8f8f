{#-
    One row per trained model kept under clv_model_dir: the published face of
    int_clv__model_registry (the Python training step; a Python model cannot carry a contract).
    is_current marks the model behind clv_predictions, so this table is built after it: when
    a build fails before clv_predictions is replaced (while scoring, say), this table keeps
    pointing at the model of the predictions users still read.
    Every column is cast to its contract type, so the table has the same types on every engine;
    created_at is UTC without a time zone (the training step writes it so), as every timestamp
    of the public tables is, and the settings are integers, as in clv_predictions.
-#}

with

registry as (

    select * from {{ ref('int_clv__model_registry') }}

),

predictions as (

    select * from {{ ref('clv_predictions') }}

),

scored_model as (

    select distinct model_version from predictions

),

final as (

    select
        cast(registry.model_version as {{ dbt.type_string() }}) as model_version,
        cast(registry.created_at as timestamp) as created_at,
        cast(scored_model.model_version is not null as boolean) as is_current,
        cast(registry.horizon_days as integer) as horizon_days,
        cast(registry.period_days as integer) as period_days,
        cast(registry.sequence_periods as integer) as sequence_periods,
        cast(registry.training_cutoffs as {{ dbt.type_string() }}) as training_cutoffs,
        cast(registry.validation_cutoff as date) as validation_cutoff,
        cast(registry.training_rows as bigint) as training_rows,
        cast(registry.validation_rows as bigint) as validation_rows,
        cast(registry.validation_loss as {{ clv_type_double() }}) as validation_loss,
        cast(registry.normalized_gini as {{ clv_type_double() }}) as normalized_gini,
        cast(registry.aggregate_error as {{ clv_type_double() }}) as aggregate_error,
        cast(registry.decile_mape as {{ clv_type_double() }}) as decile_mape,
        cast(registry.btyd_level_correction as {{ clv_type_double() }}) as btyd_level_correction,
        cast(registry.network_level_weight as {{ clv_type_double() }}) as network_level_weight,
        cast(registry.level_log_sd as {{ clv_type_double() }}) as level_log_sd,
        cast(registry.is_seasonal_level as boolean) as is_seasonal_level,
        cast(registry.level_note as {{ dbt.type_string() }}) as level_note,
        cast(registry.btyd_fit_note as {{ dbt.type_string() }}) as btyd_fit_note,
        cast(registry.feature_note as {{ dbt.type_string() }}) as feature_note,
        cast(registry.settings as {{ dbt.type_string() }}) as settings,  -- noqa: RF04
        cast(registry.feature_count as bigint) as feature_count,
        cast(registry.onnx_path as {{ dbt.type_string() }}) as onnx_path,
        cast(registry.sha256 as {{ dbt.type_string() }}) as sha256

    from registry
    left join scored_model
        on registry.model_version = scored_model.model_version

)

select * from final
