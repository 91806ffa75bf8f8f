{#-
    A double-precision number from text or a numeric column; null when it cannot be parsed.
    Every engine reads the same text as a number (clv_number_regex, the text DuckDB's try_cast
    reads but for '+-'), and reads it as DuckDB does, NaN and infinities included
    (clv_is_finite rejects them downstream).
-#}
{% macro clv_to_number(expression) %}
    {{ return(adapter.dispatch('clv_to_number', 'clv')(expression)) }}
{% endmacro %}

{#-
    clv_to_number of a text column or expression written with the decimal separator of var
    clv_decimal_separator: with ',' the dots between thousands go and the comma becomes the
    point ('1.038,75' reads 1038.75), on every engine alike.
-#}
{% macro clv_text_to_number(expression) %}
    {% if clv_decimal_separator() == ',' %}
        {% set text = 'cast(' ~ expression ~ ' as ' ~ dbt.type_string() ~ ')' %}
        {{ return(clv_to_number("replace(replace(" ~ text ~ ", '.', ''), ',', '.')")) }}
    {% endif %}
    {{ return(clv_to_number(expression)) }}
{% endmacro %}

{% macro default__clv_to_number(expression) %}
    {{ dbt.safe_cast(expression, clv_type_double()) }}
{% endmacro %}

{#-
    DuckDB's try_cast also reads a sign followed by a minus ('+-1' as -1), which
    clv_number_regex, and so PostgreSQL and Spark, refuse: such a value is null here too. No
    number DuckDB reads otherwise holds '+-', and only a value at or below 0 (or NaN) can come
    from one, so the text is looked at for those alone.
-#}
{% macro duckdb__clv_to_number(expression) %}
    {%- set number = 'try_cast(' ~ expression ~ ' as double)' -%}
    case
        when not ({{ number }} > 0 and isfinite({{ number }}))
            and contains(cast({{ expression }} as varchar), '+-') then null
        else {{ number }}
    end
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
