{#-
    On-run-start: stops the run when a selected model of clv is materialized in a way that
    loses data or cannot run, which a project that installs clv does by setting
    `+materialized` at the top of its `models:` (dbt applies it to every package's models,
    over clv's own configs): clv_predictions_history as a table would be replaced by each
    build, the prediction history lost; another model as incremental would add its rows again
    each build; a Python model as a view does not run (dbt's "materialization_view_default only
    supports languages ['sql']"); an ephemeral model can be read by no Python step. One line
    names the model, the materialization and the fix. So does a run with dbt's --empty, in
    which clv's models cannot read their inputs. The first hook, so nothing runs before.
-#}
{% macro clv_check_materializations() %}
    {% if not execute %}
        {{ return('') }}
    {% endif %}
    {% set selected = [] %}
    {% for node in graph.nodes.values() if node.resource_type == 'model' and node.package_name == 'clv'
                                           and node.unique_id in selected_resources %}
        {% do selected.append(node) %}
    {% endfor %}
    {#- dbt's --empty reads every ref and source as a subquery of no rows: staging would stop on
        it (clv_check_read_whole) and the rest report the data as empty (a sample of 26,885 rows
        "has no rows"). (--sample filters only inputs with an event_time, which staging names.) -#}
    {% if selected and flags.EMPTY %}
        {{ exceptions.raise_compiler_error(clv_read_whole_message(
            "every ref and source as a subquery of no rows (the selection holds "
            ~ (selected[:2] | map(attribute='name') | join(', ')) ~ (", ..." if selected | length > 2 else "")
            ~ ")", "--empty")) }}
    {% endif %}
    {% set problems = [] %}
    {% for node in selected %}
        {% set materialized = node.config.materialized %}
        {% if node.name == 'clv_predictions_history' %}
            {% if materialized != 'incremental' %}
                {% do problems.append(node.name ~ " is materialized as '" ~ materialized ~ "', not "
                                      ~ "'incremental': each build would replace the prediction history") %}
            {% endif %}
        {% elif node.language == 'python' and materialized not in ['table', 'clv_table'] %}
            {% do problems.append(node.name ~ " (a Python model) is materialized as '" ~ materialized
                                  ~ "': Python models run as tables only") %}
        {% elif materialized == 'incremental' %}
            {% do problems.append(node.name ~ " is materialized as 'incremental': each build would add "
                                  ~ "its rows again") %}
        {% elif materialized == 'ephemeral' %}
            {% do problems.append(node.name ~ " is materialized as 'ephemeral': clv's Python steps "
                                  ~ "read its tables") %}
        {% endif %}
    {% endfor %}
    {#- dbt runs Python models on DuckDB (and Databricks), not on PostgreSQL or with Spark's
        session method: there clv build runs them itself, between the dbt stages it starts. A
        command that runs no model (compile, docs generate, ls) goes on. -#}
    {% set python = selected | selectattr('language', 'equalto', 'python') | map(attribute='name') | list %}
    {% if python and target.type in ['postgres', 'spark'] and flags.WHICH in ['build', 'run', 'retry'] %}
        {{ exceptions.raise_compiler_error(
            "clv: dbt does not run Python models on " ~ target.type ~ " (selected: " ~ (python[:2] | join(', '))
            ~ (", ..." if python | length > 2 else "") ~ "): build with clv build --target "
            ~ target.name ~ ", which runs them itself between the dbt stages (README: Running on Spark / "
            ~ "PostgreSQL); clv-backfill does the same") }}
    {% endif %}
    {% if problems %}
        {{ exceptions.raise_compiler_error(
            "clv: " ~ problems[0] ~ (" (and " ~ (problems | length - 1) ~ " more)" if problems | length > 1 else "")
            ~ ". A +materialized at the top of your project's models: applies to the models of every "
            ~ "package, clv's included: set it under your project's name instead (models: "
            ~ "<your_project>: +materialized: ...), or set clv's own models back (models: clv: ...).") }}
    {% endif %}
    {{ return('') }}
{% endmacro %}
