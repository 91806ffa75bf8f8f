{#-
    clv_table: the table materialization this project uses on Spark (dbt_project.yml picks it
    when target.type is spark; every other engine uses dbt's own `table`).

    dbt-spark's `table` drops the existing table before it runs the model's query unless the
    table is Delta or Iceberg, so a query that fails (or a connection lost while it runs) leaves
    no table at all: a failed build would take the previous clv_predictions with it. Here the
    query writes a table under a staging name first; only when it has succeeded is the previous
    table dropped and the new one renamed into place, two catalog operations, as the Python
    steps' writes do (clv.warehouse.spark). A staging table left by an earlier failure is dropped
    before the query runs. Contracts, file format, grants and hooks behave as in `table`.
-#}
{% materialization clv_table, adapter='spark', supported_languages=['sql'] %}
    {#- dbt-spark places a table with a location_root at <location_root>/<alias>, whatever
        name it is created under: the staging table would be written where the live table's
        files are. Stop with the reason rather than fail inside Spark or overwrite them. -#}
    {%- if config.get('location_root') -%}
        {{ exceptions.raise_compiler_error(
            "clv_table (the project's table materialization on Spark) writes each table under a "
            ~ "staging name and renames it into place, which needs managed tables: unset the "
            ~ "location_root config of the clv models (" ~ model['alias'] ~ " has location_root "
            ~ config.get('location_root') ~ ")"
        ) }}
    {%- endif -%}
    {%- set target_relation = api.Relation.create(identifier=model['alias'], schema=schema,
                                                  database=database, type='table') -%}
    {%- set staging_relation = target_relation.incorporate(
            path={'identifier': model['alias'] ~ '__clv_staging'}) -%}
    {%- set old_relation = adapter.get_relation(database=database, schema=schema,
                                                identifier=model['alias']) -%}
    {%- set old_staging = adapter.get_relation(database=database, schema=schema,
                                               identifier=staging_relation.identifier) -%}

    {{ run_hooks(pre_hooks) }}

    {%- if old_staging is not none -%}
        {{ adapter.drop_relation(old_staging) }}
    {%- endif -%}

    {%- call statement('main') -%}
        {{ create_table_as(False, staging_relation, sql) }}
    {%- endcall -%}

    {%- if old_relation is not none -%}
        {{ adapter.drop_relation(old_relation) }}
    {%- endif -%}
    {{ adapter.rename_relation(staging_relation, target_relation) }}

    {%- do apply_grants(target_relation, config.get('grants'),
                        should_revoke(old_relation, full_refresh_mode=True)) -%}
    {%- do persist_docs(target_relation, model) -%}
    {%- do persist_constraints(target_relation, model) -%}

    {{ run_hooks(post_hooks) }}

    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
