{{ config(materialized='view') }}
{%- set settings = clv_settings() -%}
{#-
    One row: the run's settings after validation (macros/clv_settings.sql), read by every
    Python model, so vars are checked in one place and the Python steps never re-read them.
    It sits at the top of models/ so that dbt parses it before any other model: an invalid var
    is then reported in this model ("Compilation Error in model clv_run_settings"), not in
    whichever model dbt happened to parse first.
-#}

with

final as (

    select
        {{ "cast('" ~ settings.as_of_date ~ "' as date)" if settings.as_of_date else 'cast(null as date)' }}
            as as_of_date,
        {{ settings.horizon_days }} as horizon_days,
        {{ settings.training_cutoffs }} as training_cutoffs,
        {{ settings.cutoff_spacing_days }} as cutoff_spacing_days,
        {{ settings.period_days }} as period_days,
        {{ settings.sequence_periods }} as sequence_periods,
        '{{ settings.retrain }}' as retrain,
        '{{ settings.model_dir }}' as model_dir,
        {{ settings.keep_models }} as keep_models,
        {{ settings.seed }} as seed,
        {{ settings.ensemble_size }} as ensemble_size,
        {{ settings.max_train_rows }} as max_train_rows,
        {{ settings.max_validation_rows }} as max_validation_rows,
        '{{ settings.export_path }}' as export_path,
        '{{ settings.bi_database_path }}' as bi_database_path,
        '{{ settings.static_features | join(",") }}' as static_features,
        '{{ settings.channels | join(",") }}' as channels,
        {{ 'true' if settings.explanations else 'false' }} as explanations,
        '{{ settings.scoring_engine }}' as scoring_engine,
        '{{ settings.time_zone }}' as time_zone,
        -- {"group": ["column", ...], ...} in declared order: the units of feature importance
        -- and of the prediction explanations
        '{{ tojson(settings.feature_groups) }}' as feature_groups,
        -- where this build writes the public predictions and their history (schema.table)
        '{{ clv_published_relation('clv_predictions') }}' as predictions_relation,
        '{{ clv_published_relation('clv_predictions_history') }}' as history_relation,
        -- where this build puts the Python steps (JSON), which each step checks it is among
        '{{ tojson(clv_python_step_relations()) | replace("'", "''") }}' as python_relations

)

select * from final
