{#-
    True when the text matches the regular expression `pattern` (a Jinja string; a match
    anywhere unless anchored with ^ and $). Patterns are kept to the syntax PostgreSQL, Java
    and RE2 share: no backslashes, classes such as [0-9] and [.] instead.
-#}
{% macro clv_regex_matches(expression, pattern) %}
    {{ return(adapter.dispatch('clv_regex_matches', 'clv')(expression, pattern)) }}
{% endmacro %}

{% macro default__clv_regex_matches(expression, pattern) %}
    {{ return('regexp_like(' ~ expression ~ ", '" ~ pattern ~ "')") }}
{% endmacro %}

{% macro duckdb__clv_regex_matches(expression, pattern) %}
    {{ return('regexp_matches(' ~ expression ~ ", '" ~ pattern ~ "')") }}
{% endmacro %}

{% macro postgres__clv_regex_matches(expression, pattern) %}
    {{ return('(' ~ expression ~ " ~ '" ~ pattern ~ "')") }}
{% endmacro %}

{% macro spark__clv_regex_matches(expression, pattern) %}
    {{ return('(' ~ expression ~ " rlike '" ~ pattern ~ "')") }}
{% endmacro %}
