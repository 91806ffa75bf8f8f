{#-
    Text without leading and trailing spaces, tabs and line breaks, which DuckDB's casts from
    text ignore too (trim() alone removes spaces only).
-#}
{% macro clv_trim_whitespace(expression) %}
    {{ return(adapter.dispatch('clv_trim_whitespace', 'clv')(expression)) }}
{% endmacro %}

{% macro default__clv_trim_whitespace(expression) %}
    {{ return('trim(' ~ expression ~ ')') }}
{% endmacro %}

{% macro duckdb__clv_trim_whitespace(expression) %}
    {{ return('trim(' ~ expression ~ ", ' ' || chr(9) || chr(10) || chr(13))") }}
{% endmacro %}

{% macro postgres__clv_trim_whitespace(expression) %}
    {{ return('btrim(' ~ expression ~ ", ' ' || chr(9) || chr(10) || chr(13))") }}
{% endmacro %}

{% macro spark__clv_trim_whitespace(expression) %}
    {{ return("trim(both concat(' ', char(9), char(10), char(13)) from " ~ expression ~ ')') }}
{% endmacro %}
