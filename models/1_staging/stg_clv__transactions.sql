{%- set settings = clv_settings() -%}
{#-
    The source is resolved and its columns checked against clv_columns before this view reads
    it (clv_transactions_source); ids keep the user's spelling (clv_id_text, clv_id_or_null).
    A header-only source gives an empty relation with the same columns.
-#}
{%- set source = clv_transactions_source() -%}
{%- set columns = source.columns -%}
{%- set logs = execute and model.resource_type == 'model' and columns is not none -%}
{%- if logs -%}{%- do clv_log_column_map(columns) -%}{%- endif %}

-- built after the validated settings, so that `--select clv_run_settings+` rebuilds it
-- depends_on: {{ ref('clv_run_settings') }}

with

{% if source.has_rows -%}
source as (

    select * from {{ source.relation }}

),

renamed as (

    select
        {% if columns.transaction_id -%}
        {{ clv_id_or_null(columns.transaction_id, source.data_types.transaction_id) }} as transaction_id,
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as transaction_id,
        {%- endif %}
        {{ clv_id_or_null(columns.customer_id, source.data_types.customer_id) }} as customer_id,
        {% if columns.product_category -%}
        nullif(trim(cast({{ columns.product_category }} as {{ dbt.type_string() }})), '') as product_category,
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as product_category,
        {%- endif %}
        {{ clv_parse_input_timestamp(columns.transacted_at, settings.timestamp_format, settings.time_zone,
                                     source.data_types.transacted_at) }} as transacted_at,
        {{ clv_to_number(source.amount) }} as amount,
        cast({{ columns.transacted_at }} as {{ dbt.type_string() }}) as transacted_at_text,
        {{ source.amount_text }} as amount_text

    from source

)
{%- else -%}
renamed as (

    select
        cast(null as {{ dbt.type_string() }}) as transaction_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as product_category,
        cast(null as {{ dbt.type_timestamp() }}) as transacted_at,
        cast(null as {{ clv_type_double() }}) as amount,
        cast(null as {{ dbt.type_string() }}) as transacted_at_text,
        cast(null as {{ dbt.type_string() }}) as amount_text
    where 1 = 0

)
{%- endif %},

final as (

    select * from renamed

)

select * from final
