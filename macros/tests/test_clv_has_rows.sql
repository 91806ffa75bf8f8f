{#- Fails when the model is empty, with `message` saying what to check. -#}
{% test clv_has_rows(model, message) %}

select '{{ message | replace("'", "''") }}' as problem
where not exists (select 1 from {{ model }})

{% endtest %}
