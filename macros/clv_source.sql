{#-
    The relation a clv_* input var points at, as SQL that can follow `from`.
    - empty: the shipped sample seed (`default_seed`) while clv_load_sample() allows it (when
      it does not, a run stops with one line saying to set clv_transactions), or none when
      there is no default;
    - a path or glob ending in .csv / .parquet (optionally compressed): read as a file (DuckDB;
      on Spark Parquet only: a file, a directory or a glob ending in .parquet);
    - otherwise a relation name: `table`, `schema.table` or `database.schema.table`, each part
      plain or quoted ("..." or `...`), as `{{ ref('shop', 'orders') }}` (name the project: a
      bare ref from this package to the root project's model makes dbt warn) or
      `{{ source('shop', 'orders') }}` in the var renders. The var is rendered in the model's
      context, so such a ref is also an edge of the DAG: dbt builds the input first.
    Anything else is rejected before SQL runs.
-#}
{% macro clv_source(var_name, default_seed=none) %}
    {% set value = (var(var_name, '') or '') | string | trim %}
    {% if value == '' %}
        {% if default_seed is none %}
            {{ return(none) }}
        {% endif %}
        {% if clv_load_sample() %}
            {{ return(ref(default_seed)) }}
        {% endif %}
        {#- The seed is disabled (seeds/_seeds.yml): no ref to it; parsing goes on, so the
            root project's own models still build, and this model stops when it runs. -#}
        {% if execute %}
            {{ clv_fail('clv_transactions', "empty, and clv's sample seeds are not built here (clv_load_sample "
                        ~ "is '" ~ (var('clv_load_sample', 'auto') | string | lower) ~ "'; auto builds them only "
                        ~ "when clv is the root project): point clv_transactions at your transactions (a "
                        ~ "relation, a file or \"{{ ref('your_project', 'your_model') }}\"), or set "
                        ~ "clv_load_sample: true to build on the sample") }}
        {% endif %}
        {{ return(default_seed) }}
    {% endif %}
    {% if modules.re.search('\\.(csv|tsv|parquet)(\\.gz|\\.zst)?$', value, modules.re.IGNORECASE) %}
        {% if "'" in value or ';' in value %}
            {{ clv_fail(var_name, "a file path must not contain quotes or ';'") }}
        {% endif %}
        {#- DuckDB's own error for a missing file names neither the var nor where a relative
            path is read from; its glob tells first (local paths: a URL is the reader's). A
            directory named like a Parquet file (as Spark writes one: orders.parquet/part-*.parquet)
            is read as the Parquet files under it. -#}
        {% if execute and target.type == 'duckdb' and '://' not in value %}
            {% set matches = run_query("select count(*) from glob('" ~ value ~ "')").columns[0].values()[0] %}
            {% set inside = value.rstrip('/') ~ '/**/*.parquet' %}
            {% if matches == 0 and modules.re.search('\\.parquet/?$', value, modules.re.IGNORECASE)
                  and run_query("select count(*) from glob('" ~ inside ~ "')").columns[0].values()[0] > 0 %}
                {% set value = inside %}
            {% elif matches == 0 %}
                {{ clv_fail(var_name, "no file matches '" ~ value ~ "' (a relative path is read from the "
                                      ~ "directory dbt runs in)") }}
            {% endif %}
        {% endif %}
        {{ return(adapter.dispatch('clv_read_file', 'clv')(value)) }}
    {% endif %}
    {#- An ephemeral model renders as a CTE name no other model can read, and dbt's --empty and
        --sample render a ref or source as a subquery of a few rows or none: clv reads its
        inputs whole (their columns before any SQL runs, every row for the features). -#}
    {% if '__dbt__cte__' in value %}
        {{ clv_fail(var_name, "it refers to an ephemeral model ('" ~ value ~ "'), which no other "
                              ~ "model can read: materialize that model as a view or a table") }}
    {% endif %}
    {% if modules.re.match('[(]select [*] from ', value, modules.re.IGNORECASE) %}
        {{ exceptions.raise_compiler_error(
            "clv's models do not run with dbt's --empty or --sample, which render " ~ var_name
            ~ " as '" ~ value ~ "': clv reads its inputs whole. Run without the flag, or leave "
            ~ "clv out of that run (--exclude package:clv)") }}
    {% endif %}
    {% set part = '([A-Za-z_][A-Za-z0-9_$]*|"[^";]+"|`[^`;]+`)' %}
    {% if not modules.re.fullmatch(part ~ '(\\.' ~ part ~ '){0,2}', value) %}
        {{ clv_fail(var_name, "expected a relation name like schema.table or a .csv/.parquet file path, got '"
                              ~ value ~ "'") }}
    {% endif %}
    {{ return(value) }}
{% endmacro %}


{% macro default__clv_read_file(path) %}
    {{ exceptions.raise_compiler_error("Reading files directly is supported on DuckDB only; load '" ~ path
                                       ~ "' into a table and point the var at it.") }}
{% endmacro %}


{% macro duckdb__clv_read_file(path) %}
    {% if modules.re.search('\\.parquet$', path, modules.re.IGNORECASE) %}
        {{ return("read_parquet('" ~ path ~ "')") }}
    {% endif %}
    {#- sample_size = -1 sniffs the whole file, so a bad value late in a column widens its type
        instead of failing the read. Dates and times stay text, read by clv_parse_timestamp: the
        reader's own guess takes 01/02/21 as January 21 of the year 1 (with clv_timestamp_format
        '%d/%m/%y'), a column of month-first dates whose days are all 12 or less as day-first,
        and, with one value ending in an offset, every other value as UTC. -#}
    {{ return("read_csv('" ~ path ~ "', header = true, sample_size = -1, "
              ~ "auto_type_candidates = ['BOOLEAN', 'BIGINT', 'DOUBLE', 'VARCHAR'])") }}
{% endmacro %}


{% macro spark__clv_read_file(path) %}
    {% if '`' in path %}
        {{ exceptions.raise_compiler_error("A file path must not contain backticks on Spark: '" ~ path ~ "'") }}
    {% endif %}
    {% if modules.re.search('\\.parquet$', path, modules.re.IGNORECASE) %}
        {{ return("parquet.`" ~ path ~ "`") }}
    {% endif %}
    {{ exceptions.raise_compiler_error("On Spark only Parquet files are read directly (DuckDB reads CSV too); load '"
                                       ~ path ~ "' into a table and point the var at it.") }}
{% endmacro %}
