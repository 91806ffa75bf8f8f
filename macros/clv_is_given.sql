{#-
    Whether an input column holds a value: not null and, as text, not blank (spaces, tabs and
    line breaks). A typed column (a date, a number) is given when it is not null.
-#}
{% macro clv_is_given(column) %}
    {{ return('coalesce(' ~ clv_trim_whitespace('cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ')')
              ~ " <> '', false)") }}
{% endmacro %}
