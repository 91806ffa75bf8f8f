{#- Optional customer attributes; an empty, typed relation when none are configured. -#}
{%- set source_relation = clv_optional_source('clv_customers', 'clv_sample_customers') -%}
{%- set settings = clv_settings() -%}
{%- set extra_features = settings.extra_features -%}
{%- if extra_features and source_relation is none -%}
    {{ clv_fail('clv_extra_features', "names columns of clv_customers, but clv_customers is not set") }}
{%- endif -%}
{%- set source_relation = none if clv_input_unbuilt('clv_customers', source_relation) else source_relation -%}
{%- set source_schema = clv_source_schema(source_relation) if source_relation is not none else [] -%}
{%- set source_types = clv_input_columns(
    'clv_customers', source_schema, ['customer_id'], extra_features, ['signup_date', 'country', 'age_band']
) if source_relation is not none else {} -%}
{#- a column the input lacks (at parse time, every column: the schema is read when it runs) is
    null on every row -#}
{%- set has = {
    'signup_date': 'signup_date' in source_types or not execute,
    'country': 'country' in source_types or not execute,
    'age_band': 'age_band' in source_types or not execute,
} -%}

-- built after the validated settings, so that `--select clv_run_settings+` rebuilds it
-- depends_on: {{ ref('clv_run_settings') }}

with

{% if source_relation is not none -%}
source as (

    select
        {{ clv_input_select(source_schema, ['customer_id', 'signup_date', 'country', 'age_band'] + extra_features) }}
    from {{ source_relation }}

),

renamed as (

    select
        {{ clv_id_or_null('customer_id', source_types.customer_id) }} as customer_id,
        {%- if has.signup_date %}
        cast({{ clv_parse_input_timestamp('signup_date', settings.timestamp_format, settings.time_zone,
                                          source_types.signup_date) }} as date) as signup_date,
        {{ clv_is_given('signup_date') }} as has_signup_text,
        {%- else %}
        cast(null as date) as signup_date,
        false as has_signup_text,
        {%- endif %}
        {%- for name in ['country', 'age_band'] %}
        cast({{ name if has[name] else 'null' }} as {{ dbt.type_string() }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
        {%- for name in extra_features %},
        {{ clv_text_to_number(name) if clv_data_type_kind(source_types[name]) == 'text' else clv_to_number(name) }}
            as {{ name }}{% endfor %}

    from source

),

final as (

    select
        customer_id,
        signup_date,
        country,
        age_band,
        {%- for name in extra_features %}
        {{ name }},
        {%- endfor %}
        -- text no format reads: the attribute is missing (a warn test counts such rows)
        has_signup_text and signup_date is null as signup_date_unreadable

    from renamed

)
{%- else -%}
final as (

    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as date) as signup_date,
        cast(null as {{ dbt.type_string() }}) as country,
        cast(null as {{ dbt.type_string() }}) as age_band,
        false as signup_date_unreadable
    where 1 = 0

)
{%- endif %}

select * from final
