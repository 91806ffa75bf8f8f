{#- Every non-null value of the column is one of the exclusion reasons of clv_settings(). -#}
{% test clv_accepted_exclusion_reasons(model, column_name) %}
    {%- set reasons = clv_settings().exclusion_reasons -%}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
        and {{ column_name }} not in ('{{ reasons | join("', '") }}')
{% endtest %}
