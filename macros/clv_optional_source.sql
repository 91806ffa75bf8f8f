{#-
    The relation for an optional input (clv_customers, clv_events). With no var set it falls
    back to the sample's companion seed, but only while the transactions are the sample too.
-#}
{% macro clv_optional_source(var_name, sample_seed) %}
    {% if (var('clv_transactions', '') or '') | string | trim == '' %}
        {{ return(clv_source(var_name, sample_seed)) }}
    {% endif %}
    {{ return(clv_source(var_name)) }}
{% endmacro %}
