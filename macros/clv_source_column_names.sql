{#- Lower-cased column names of a relation or file read, looked up in the warehouse at run time. -#}
{% macro clv_source_column_names(source_sql) %}
    {% if not execute %}
        {{ return([]) }}
    {% endif %}
    {% set result = run_query('select * from ' ~ source_sql ~ ' where 1 = 0') %}
    {{ return(result.column_names | map('lower') | list) }}
{% endmacro %}
