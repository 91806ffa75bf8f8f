{#-
    An id as text, spelled as the user wrote it: text ids keep their characters (leading zeros
    included; surrounding spaces, tabs and line breaks are trimmed), and a number keeps its
    digits. A float or decimal column, which a file reader gives an id column with blanks
    (pandas reads 17850 and an empty cell as 17850.0 and NaN), renders its integral values
    without a fraction: 17850, not 17850.0 (and clv_id_or_null reads such text alike).
    `data_type` is the column's type as the engine names it (clv_source_schema); null stays
    null.
-#}
{% macro clv_id_text(expression, data_type) %}
    {%- set text_type = dbt.type_string() -%}
    {%- set value = '(' ~ expression ~ ')' -%}
    {%- if clv_data_type_kind(data_type) in ['float', 'decimal'] -%}
        {#- Doubles are exact integers up to 2^53; beyond it, or NaN and infinities, the
            engine's own text. -#}
        {%- set text -%}
            case
                when not (abs({{ value }}) < 9007199254740992) then cast({{ value }} as {{ text_type }})
                when {{ value }} = floor({{ value }}) then cast(cast({{ value }} as bigint) as {{ text_type }})
                else cast({{ value }} as {{ text_type }})
            end
        {%- endset -%}
    {%- else -%}
        {%- set text = 'cast(' ~ value ~ ' as ' ~ text_type ~ ')' -%}
    {%- endif -%}
    {{ return(clv_trim_whitespace(text)) }}
{% endmacro %}


{#-
    An id as clv_id_text renders it, a whole number written with a zero fraction without it
    (17850.0 is 17850, as a float column's id is), or null when it means "no id": empty,
    whitespace only (tabs and line breaks included), or one of the values of var
    clv_missing_customer_ids,
    compared case-insensitively. A customer id so read counts as missing_customer_id in
    clv_data_quality; a transaction id so read is no id, so its row is never a duplicate (an
    export that writes n/a for every order would otherwise make two equal purchases of a day
    one). The test runs on few rows: only an id no longer than the longest listed value can be
    one of them, and only an id that starts with a control character (after the spaces are
    trimmed) can be whitespace only.
-#}
{% macro clv_id_or_null(expression, data_type) %}
    {%- set text = clv_id_text(expression, data_type) -%}
    {%- set missing = clv_settings().missing_customer_ids -%}
    {%- set longest = missing | map('length') | max -%}
    {%- set condition -%}
        (length({{ text }}) <= {{ longest }} or ascii({{ text }}) < 32)
        and (
            lower({{ text }}) in ('{{ missing | join("', '") }}')
            or (ascii({{ text }}) < 32 and {{ clv_trim_whitespace(text) }} = '')
        )
    {%- endset -%}
    {#- A whole number with a zero fraction (17850.0, 17850.00) is the text a float column
        becomes in an export, or in a file whose one odd cell made the reader type it as text:
        it is the id 17850 of the other files of a glob and of the attributes. LIKE first: the
        pattern runs only on the few ids with a dot that end in 0. -#}
    {%- set whole -%}
        when {{ text }} like '%.%0' and {{ clv_regex_matches(text, '^[0-9]+[.]0+$') }}
            then substring({{ text }}, 1, {{ dbt.position("'.'", text) }} - 1)
    {%- endset -%}
    {{ return('case when ' ~ condition ~ ' then null ' ~ whole ~ ' else ' ~ text ~ ' end') }}
{% endmacro %}
