{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['as_of_date', 'model_version'],
        on_schema_change='append_new_columns'
    )
}}
{#-
    One row per customer per as-of date per model version: every clv_predictions ever built.
    A build appends its as-of date; a rebuild at the same as-of date with the same model
    replaces that run's rows (delete+insert on as_of_date and model_version), so the table
    never holds a duplicate. New columns are added, never dropped: a history written by an
    older version stays readable.
-#}

with

predictions as (

    select * from {{ ref('clv_predictions') }}

),

final as (

    select * from predictions

)

select * from final
