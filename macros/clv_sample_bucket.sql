{#-
    A row's sample bucket, 0 to 999,999: the first 32 bits of md5 of its key columns as text,
    joined by '|', modulo 1,000,000. Every engine computes the same md5 of the same text, so a
    sample "bucket below a limit" holds the same rows on DuckDB, PostgreSQL and Spark. It is the
    rule of clv.warehouse (bucket_of, Warehouse.bucket_sql) that the Python steps sample with.
-#}
{% macro clv_sample_bucket(columns) %}
    {%- set text = [] -%}
    {%- for column in columns -%}
        {%- do text.append('cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ')') -%}
    {%- endfor -%}
    {{ return('(' ~ adapter.dispatch('clv_md5_int', 'clv')(text | join(" || '|' || ")) ~ ' % 1000000)') }}
{% endmacro %}

{#- The first 32 bits of md5(text) as a non-negative integer. -#}
{% macro default__clv_md5_int(text) -%}
    cast('0x' || left(md5({{ text }}), 8) as ubigint)
{%- endmacro %}

{% macro postgres__clv_md5_int(text) -%}
    (('x' || left(md5({{ text }}), 8))::bit(32)::bigint)
{%- endmacro %}

{% macro spark__clv_md5_int(text) -%}
    cast(conv(substr(md5({{ text }}), 1, 8), 16, 10) as bigint)
{%- endmacro %}
