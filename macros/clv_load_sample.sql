{#-
    Whether the shipped sample seeds (seeds/clv_sample_*.csv) are built and read, from var
    clv_load_sample: true, false, or auto (the default): only while this project is the root
    project and clv_transactions is empty. Installed as a package, or pointed at the user's
    data, the package loads nothing of its own into the user's warehouse.
    seeds/_seeds.yml enables the seeds with the same rule, written out there because a
    properties file cannot call macros: the two must agree.
-#}
{% macro clv_load_sample() %}
    {% set choice = clv_validate_choice('clv_load_sample', var('clv_load_sample', 'auto') | string | lower,
                                        ['auto', 'true', 'false']) %}
    {% if choice != 'auto' %}
        {{ return(choice == 'true') }}
    {% endif %}
    {{ return(project_name == 'clv' and (var('clv_transactions', '') or '') | string | trim == '') }}
{% endmacro %}
