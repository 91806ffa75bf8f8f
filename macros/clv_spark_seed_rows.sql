{#-
    dbt-spark's load_csv_rows for the root project on Spark: the inserts of a seed, with each
    value written as an escaped SQL literal. dbt-spark's session cursor formats bindings itself
    and turns an empty cell into the text 'None' (and does not escape quotes), so the sample's
    missing customer ids and amounts would be read as text instead of null and be counted
    differently in clv_data_quality. Each column's type is looked up once (dbt-spark looks it up
    for every cell), and a text column's literal goes in without a cast (Spark analyses every
    cast of an insert): together, the sample loads in less than half dbt-spark's time. When every
    column is text (the sample's seeds), a batch goes in as one JSON literal that Spark splits
    into rows (from_json, explode) instead of a literal per cell: rendering each cell in Jinja
    took most of the load's time, Spark's insert little of it. Otherwise the same as dbt-spark's
    macro.
    dbt dispatches load_csv_rows to the root project's macros first, then dbt's: this one
    applies while clv is the root project. A project that installs clv and builds seeds on
    Spark (its own, or clv's sample with clv_load_sample: true) opts in with
        dispatch:
          - macro_namespace: dbt
            search_order: ['<its project name>', 'clv', 'dbt']
    in its dbt_project.yml; the seeds of every project then load through it.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {% set batch_size = get_batch_size() %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {#- each column's type once, not once per cell -#}
    {% set types = [] %}
    {% for col_name in agate_table.column_names %}
        {% do types.append(column_override.get(col_name, adapter.convert_type(agate_table, loop.index0))) %}
    {% endfor %}
    {% set statements = [] %}
    {% set all_text = types | map('lower') | reject('equalto', 'string') | list | length == 0 %}
    {% set picked = [] %}
    {% for name in agate_table.column_names %}
        {% do picked.append('row[' ~ loop.index0 ~ ']') %}
    {% endfor %}
    {% for chunk in agate_table.rows | batch(batch_size) %}
        {% if all_text %}
            {#- A backslash first, then a quote: Spark's string literal gives back the JSON. -#}
            {% set payload = tojson(chunk | map('list') | list).replace('\\', '\\\\').replace("'", "\\'") %}
            {% set sql = 'insert into ' ~ this.render() ~ '\nselect ' ~ picked | join(', ')
                         ~ "\nfrom (select explode(from_json('" ~ payload
                         ~ "', 'array<array<string>>')) as row)" %}
            {% do adapter.add_query(sql, abridge_sql_log=True) %}
            {% if loop.index0 == 0 %}
                {% do statements.append(sql) %}
            {% endif %}
            {% continue %}
        {% endif %}
        {% set rows = [] %}
        {% for row in chunk %}
            {% set cells = [] %}
            {% for value in row %}
                {% set literal = 'null' if value is none
                    else "'" ~ (value | string).replace('\\', '\\\\').replace("'", "\\'") ~ "'" %}
                {% do cells.append(literal if types[loop.index0] | lower == 'string'
                                   else 'cast(' ~ literal ~ ' as ' ~ types[loop.index0] ~ ')') %}
            {% endfor %}
            {% do rows.append('(' ~ cells | join(', ') ~ ')') %}
        {% endfor %}
        {% set sql = 'insert into ' ~ this.render() ~ ' values\n' ~ rows | join(',\n') %}
        {% do adapter.add_query(sql, abridge_sql_log=True) %}
        {% if loop.index0 == 0 %}
            {% do statements.append(sql) %}
        {% endif %}
    {% endfor %}
    {{ return(statements[0]) }}
{% endmacro %}
