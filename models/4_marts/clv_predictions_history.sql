{#-
    One row per customer per as-of date per model version: every clv_predictions ever built.
    A build appends its run; a rebuild at the same as-of date with the same model first deletes
    that run's rows (the pre-hook, in the same transaction as the insert), so the table never
    holds a duplicate. clv_predictions holds one as-of date and one model version, so the two
    semi-joins select exactly that run (dbt's delete+insert on a two-column key would join every
    old row of the run with every new one instead). New columns are added, never dropped: a
    history written by an older version stays readable. A --full-refresh leaves it as it is
    (full_refresh=false): it holds runs no rebuild could reproduce.
    Spark cannot delete from a Parquet table: there the table is partitioned by as-of date and
    model version, and a build overwrites the partition of its run (dynamic insert_overwrite),
    which replaces a rebuilt run the same way. Spark keeps partition columns last.
-#}
{{
    config(
        materialized='incremental',
        on_schema_change='append_new_columns',
        full_refresh=false
    )
}}
{%- if target.type == 'spark' %}
{{
    config(
        incremental_strategy='insert_overwrite',
        file_format='parquet',
        partition_by=['as_of_date', 'model_version']
    )
}}
{%- else %}
{{
    config(
        incremental_strategy='append',
        pre_hook="""
            {% if is_incremental() %}
            delete from {{ this }}
            where as_of_date in (select distinct as_of_date from {{ ref('clv_predictions') }})
                and model_version in (select distinct model_version from {{ ref('clv_predictions') }})
            {% endif %}
        """
    )
}}
{%- endif %}

with

predictions as (

    select * from {{ ref('clv_predictions') }}

),

final as (

    select * from predictions

)

select * from final
