{#-
    Where this build writes the public model `name` (clv_predictions, clv_predictions_history),
    as schema.table: the schema dbt resolved for it (a folder's +schema included) and its
    alias. The training step reads the previous build's predictions there to keep and prefer
    their models. Empty while dbt parses, or when the model is disabled.
-#}
{% macro clv_published_relation(name) %}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.name == name
               and node.package_name == model.package_name -%}
            {{ return(node.schema ~ '.' ~ (node.alias or node.name)) }}
        {%- endfor -%}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}
