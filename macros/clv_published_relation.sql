{#-
    Where this build writes the public model `name` (clv_predictions, clv_predictions_history),
    as schema.table: the schema dbt resolved for it (a folder's +schema included) and its
    alias, preceded by its database when a +database puts it outside the target's. The
    training step reads the previous build's predictions there to keep and prefer their
    models. Empty while dbt parses, or when the model is disabled.
-#}
{% macro clv_published_relation(name) %}
    {%- set node = clv_model_node(name) -%}
    {%- if node is none -%}
        {{ return('') }}
    {%- endif -%}
    {%- set relation = node.schema ~ '.' ~ (node.alias or node.name) -%}
    {%- if node.database and target.database and node.database | lower != target.database | lower -%}
        {%- set relation = node.database ~ '.' ~ relation -%}
    {%- endif -%}
    {{ return(relation) }}
{% endmacro %}


{#- clv's enabled model `name` as the graph holds it (schema and alias resolved), or none while
    dbt parses or when the model is disabled. -#}
{% macro clv_model_node(name) %}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.name == name
               and node.package_name == model.package_name -%}
            {{ return(node) }}
        {%- endfor -%}
    {%- endif -%}
    {{ return(none) }}
{% endmacro %}


{#-
    Where this build puts clv's Python steps: database.schema.alias of each (schema.alias where
    the engine has no database), in lower case, sorted (empty while dbt parses). Each step finds
    itself in this list (clv_run_settings.python_relations) before it acts on the settings row: a run that defers clv_run_settings to another
    environment (--defer, dbt clone) would otherwise train in, export to and prune that
    environment's model directory and files.
-#}
{% macro clv_python_step_relations() %}
    {%- set relations = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.language == 'python'
               and node.package_name == model.package_name -%}
            {%- set name = node.schema ~ '.' ~ (node.alias or node.name) -%}
            {%- do relations.append(((node.database ~ '.' if node.database else '') ~ name) | lower) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(relations | sort) }}
{% endmacro %}
