{#- A timestamp from text or a timestamp/date column; null when it cannot be parsed. -#}
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
