{#- Optional customer attributes; an empty, typed relation when none are configured. -#}
{%- set source_relation = clv_optional_source('clv_customers', 'clv_sample_customers') -%}

with

{% if source_relation is not none -%}
source as (

    select * from {{ source_relation }}

),

renamed as (

    select
        nullif(trim(cast(customer_id as {{ dbt.type_string() }})), '') as customer_id,
        cast({{ clv_parse_timestamp('signup_date') }} as date) as signup_date,
        cast(country as {{ dbt.type_string() }}) as country,
        cast(age_band as {{ dbt.type_string() }}) as age_band

    from source

)
{%- else -%}
renamed as (

    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as date) as signup_date,
        cast(null as {{ dbt.type_string() }}) as country,
        cast(null as {{ dbt.type_string() }}) as age_band
    where 1 = 0

)
{%- endif %}

select * from renamed
