{#-
    `name` (a column name read from the input: a file's header, a table's schema) quoted as an
    identifier of the engine, the quote character doubled inside it. dbt's adapter.quote wraps
    a name without escaping it, so a name holding the quote character would end the identifier
    and the rest of the name would run as SQL: a Parquet file's column names are whoever wrote
    the file's.
-#}
{% macro clv_quote_name(name) %}
    {%- set mark = adapter.quote('x')[0] -%}
    {{ return(mark ~ (name | string | replace(mark, mark ~ mark)) ~ mark) }}
{% endmacro %}
