{#-
    A double-precision number from text or a numeric column; null when it cannot be parsed.
    PostgreSQL and Spark accept the text DuckDB's try_cast accepts (clv_number_regex) and read
    it as DuckDB does, NaN and infinities included (clv_is_finite rejects them downstream).
-#}
{% macro clv_to_number(expression) %}
    {{ return(adapter.dispatch('clv_to_number', 'clv')(expression)) }}
{% endmacro %}

{% macro default__clv_to_number(expression) %}
    {{ dbt.safe_cast(expression, clv_type_double()) }}
{% endmacro %}

{% macro duckdb__clv_to_number(expression) %}
    try_cast({{ expression }} as double)
{% endmacro %}

{#-
    Numbers as DuckDB reads them, on whitespace-trimmed text: decimal or scientific notation,
    digits grouped by single underscores, NaN, inf and infinity in any case. Spark alone would
    also read Java's '1.5d' and '1.5f'.
-#}
{% macro clv_number_regex() %}
    {%- set digits = '[0-9]+(_[0-9]+)*' -%}
    {%- set special = '[Nn][Aa][Nn]|[Ii][Nn][Ff]([Ii][Nn][Ii][Tt][Yy])?' -%}
    {{ return('^[+-]?(' ~ digits ~ '([.](' ~ digits ~ ')?)?([eE][+-]?' ~ digits ~ ')?|[.]' ~ digits
              ~ '([eE][+-]?' ~ digits ~ ')?|' ~ special ~ ')$') }}
{% endmacro %}

{% macro postgres__clv_to_number(expression) %}
    {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as text)') -%}
    case
        when {{ clv_regex_matches(text, clv_number_regex()) }}
            then {{ clv_warehouse_function('clv_try_cast_double') }}(replace({{ text }}, '_', ''))
    end
{% endmacro %}

{% macro spark__clv_to_number(expression) %}
    {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as string)') -%}
    case
        when {{ clv_regex_matches(text, clv_number_regex()) }}
            then try_cast(replace({{ text }}, '_', '') as double)
    end
{% endmacro %}
