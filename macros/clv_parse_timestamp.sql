{#-
    A timestamp from text or a timestamp/date column; null when it cannot be parsed. `format` is
    a strptime format (var clv_timestamp_format); empty reads ISO dates and date-times. Every
    engine accepts the same text: PostgreSQL and Spark match it against the pattern of
    clv_timestamp_patterns.sql first, then try the cast (a zone suffix is ignored, as DuckDB
    ignores it).
-#}
{% macro clv_parse_timestamp(expression, format='') %}
    {{ return(adapter.dispatch('clv_parse_timestamp', 'clv')(expression, format)) }}
{% endmacro %}

{% macro default__clv_parse_timestamp(expression, format='') %}
    {{ dbt.safe_cast(expression, dbt.type_timestamp()) }}
{% endmacro %}

{% macro duckdb__clv_parse_timestamp(expression, format='') %}
    {%- if format -%}
        try_strptime(cast({{ expression }} as varchar), '{{ format }}')
    {%- else -%}
        try_cast({{ expression }} as timestamp)
    {%- endif -%}
{% endmacro %}

{% macro postgres__clv_parse_timestamp(expression, format='') %}
    {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as text)') -%}
    {%- if format -%}
        {%- set patterns = clv_timestamp_format_patterns(format) -%}
        case
            when {{ clv_regex_matches(text, patterns.regex) }}
                then {{ clv_warehouse_function('clv_try_to_timestamp') }}({{ text }}, '{{ patterns.postgres }}')
        end
    {%- else -%}
        {#- PostgreSQL rounds a fraction beyond microseconds; DuckDB and Spark truncate it. -#}
        case
            when {{ clv_regex_matches(text, clv_iso_timestamp_regex()) }}
                then {{ clv_warehouse_function('clv_try_cast_timestamp') }}(
                    regexp_replace({{ text }}, '([.][0-9]{6})[0-9]+', '\1')
                )
        end
    {%- endif -%}
{% endmacro %}

{% macro spark__clv_parse_timestamp(expression, format='') %}
    {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as string)') -%}
    {%- if format -%}
        {%- set patterns = clv_timestamp_format_patterns(format) -%}
        case
            when {{ clv_regex_matches(text, patterns.regex) }}
                then try_to_timestamp(regexp_replace({{ text }}, ' +', ' '), '{{ patterns.spark }}')
        end
    {%- else -%}
        {#- timestamp_ntz ignores a zone suffix (timestamp would shift the time by it). 24:00 is
            midnight of the next day in DuckDB and PostgreSQL; Spark rejects it. -#}
        {%- set iso_text = "translate(" ~ text ~ ", '/', '-')" -%}
        case
            when not {{ clv_regex_matches(text, clv_iso_timestamp_regex()) }} then null
            when {{ clv_regex_matches(text, '[ T]24:00(:00([.]0+)?)? *(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$') }}
                then cast(date_add(try_cast(regexp_extract({{ iso_text }}, '^[0-9-]+', 0) as date), 1) as timestamp)
            else cast(try_cast({{ iso_text }} as timestamp_ntz) as timestamp)
        end
    {%- endif -%}
{% endmacro %}
