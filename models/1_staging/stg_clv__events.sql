{#- Optional browsing events; an empty, typed relation when none are configured. -#}
{%- set settings = clv_settings() -%}
{%- set source_relation = clv_optional_source('clv_events', 'clv_sample_events') -%}
{%- set source_relation = none if clv_input_unbuilt('clv_events', source_relation) else source_relation -%}
{%- set source_schema = clv_source_schema(source_relation) if source_relation is not none else [] -%}
{%- set source_types = clv_input_columns(
    'clv_events', source_schema, ['customer_id', 'event_at'], optional=['event_type']
) if source_relation is not none else {} -%}
{#- without event_type (at parse time the schema is not read) every event is of no type -#}
{%- set has_type = 'event_type' in source_types or not execute -%}

-- built after the validated settings, so that `--select clv_run_settings+` rebuilds it
-- depends_on: {{ ref('clv_run_settings') }}

with

{% if source_relation is not none -%}
source as (

    select
        {{ clv_input_select(source_schema, ['customer_id', 'event_at', 'event_type']) }}
    from {{ source_relation }}

),

renamed as (

    select
        {{ clv_id_or_null('customer_id', source_types.customer_id) }} as customer_id,
        {{ clv_parse_input_timestamp('event_at', settings.timestamp_format, settings.time_zone,
                                     source_types.event_at) }} as event_at,
        lower(trim(cast({{ 'event_type' if has_type else 'null' }} as {{ dbt.type_string() }}))) as event_type,
        {{ clv_is_given('event_at') }} as has_event_at_text

    from source

),

final as (

    select
        customer_id,
        event_at,
        event_type,
        -- text no format reads: the event counts nowhere (a warn test counts such rows)
        has_event_at_text and event_at is null as event_at_unreadable

    from renamed

)
{%- else -%}
final as (

    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_timestamp() }}) as event_at,
        cast(null as {{ dbt.type_string() }}) as event_type,
        false as event_at_unreadable
    where 1 = 0

)
{%- endif %}

select * from final
