{%- set settings = clv_settings() -%}
{%- set source_relation = clv_source('clv_transactions', 'clv_sample_transactions') -%}
{%- set columns = clv_column_map(source_relation) -%}

with

source as (

    select * from {{ source_relation }}

),

renamed as (

    select
        {% if columns.transaction_id -%}
        nullif(trim(cast({{ columns.transaction_id }} as {{ dbt.type_string() }})), '') as transaction_id,
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as transaction_id,
        {%- endif %}
        nullif(trim(cast({{ columns.customer_id }} as {{ dbt.type_string() }})), '') as customer_id,
        {% if columns.product_category -%}
        nullif(trim(cast({{ columns.product_category }} as {{ dbt.type_string() }})), '') as product_category,
        {%- else -%}
        cast(null as {{ dbt.type_string() }}) as product_category,
        {%- endif %}
        {{ clv_parse_timestamp(columns.transacted_at, settings.timestamp_format) }} as transacted_at,
        {{ clv_to_number(columns.amount) }} as amount,
        cast({{ columns.transacted_at }} as {{ dbt.type_string() }}) as transacted_at_text,
        cast({{ columns.amount }} as {{ dbt.type_string() }}) as amount_text

    from source

)

select * from renamed
