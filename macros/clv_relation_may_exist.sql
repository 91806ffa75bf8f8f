{#-
    False when the warehouse surely holds no table or view that `name` (a relation name as
    clv_source accepts it: one to three parts, each plain or quoted) can resolve to; true when
    it may. Only a sure miss is false: the engine's own error for a missing relation names
    neither the var nor what to do ("Table with name orders does not exist! Did you mean
    duckdb_tables?"), so clv_source stops with one line instead, and a name the engine might
    still resolve is left for the engine to read. Engines without a lookup here say true.
-#}
{% macro clv_relation_may_exist(name) %}
    {{ return(adapter.dispatch('clv_relation_may_exist', 'clv')(clv_relation_parts(name))) }}
{% endmacro %}


{#- The parts of relation name `name`: {'name': as written, unquoted; 'quoted': whether it was}. -#}
{% macro clv_relation_parts(name) %}
    {% set parts = [] %}
    {% for part in modules.re.findall(clv_relation_name_part(), name) %}
        {% do parts.append({'name': part[1:-1] if part[:1] in ['"', '`'] else part,
                            'quoted': part[:1] in ['"', '`']}) %}
    {% endfor %}
    {{ return(parts) }}
{% endmacro %}


{#- One part of a relation name as clv_source accepts it: plain, "quoted" or `quoted`. -#}
{% macro clv_relation_name_part() %}
    {{ return('[A-Za-z_][A-Za-z0-9_$]*|"[^";]+"|`[^`;]+`') }}
{% endmacro %}


{% macro default__clv_relation_may_exist(parts) %}
    {{ return(true) }}
{% endmacro %}


{#- DuckDB matches names without regard to case, quoted or not. A one-part name may be in any
    schema of the search path, a two-part one is a schema or a database (its default schema).
    A quoted name with a dot or a slash may be a file DuckDB reads by its name ("orders.json").
    Databases of other kinds attached (PostgreSQL, SQLite, MotherDuck) may not list their
    tables here: with one attached, every name may exist. -#}
{% macro duckdb__clv_relation_may_exist(parts) %}
    {% if parts | length == 1 and parts[0].quoted and modules.re.search('[./]', parts[0].name) %}
        {{ return(true) }}
    {% endif %}
    {% if run_query("select count(*) from duckdb_databases() where not internal and type <> 'duckdb'"
                    ).columns[0].values()[0] > 0 %}
        {{ return(true) }}
    {% endif %}
    {% set text = [] %}
    {% for part in parts %}
        {% do text.append("lower('" ~ (part.name | replace("'", "''")) ~ "')") %}
    {% endfor %}
    {% set where = ["lower(name) = " ~ text[-1]] %}
    {% if parts | length == 3 %}
        {% do where.append("lower(database_name) = " ~ text[0] ~ " and lower(schema_name) = " ~ text[1]) %}
    {% elif parts | length == 2 %}
        {% do where.append("(lower(schema_name) = " ~ text[0] ~ " or lower(database_name) = " ~ text[0] ~ ")") %}
    {% endif %}
    {% set found = run_query(
        "select count(*) from (select database_name, schema_name, table_name as name from duckdb_tables()"
        ~ " union all select database_name, schema_name, view_name from duckdb_views())"
        ~ " where " ~ (where | join(' and '))).columns[0].values()[0] %}
    {{ return(found > 0) }}
{% endmacro %}


{#- PostgreSQL folds a plain name to lower case and keeps a quoted one as written, and cuts a
    name to 63 characters (bytes, strictly: its NAMEDATALEN); a one-part name may be in any
    schema of the search path; a database part can only be the one connected to (PostgreSQL's
    own error says so otherwise). Each part as PostgreSQL stores the name, as an SQL string
    literal. -#}
{% macro clv_postgres_name_literals(parts) %}
    {% set text = [] %}
    {% for part in parts %}
        {% set spelled = (part.name if part.quoted else part.name | lower)[:63] %}
        {% do text.append("'" ~ (spelled | replace("'", "''")) ~ "'") %}
    {% endfor %}
    {{ return(text) }}
{% endmacro %}


{% macro postgres__clv_relation_may_exist(parts) %}
    {% set text = clv_postgres_name_literals(parts) %}
    {% set schema = " and n.nspname = " ~ text[-2] if parts | length > 1 else "" %}
    {% set found = run_query(
        "select count(*) from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n"
        ~ " on n.oid = c.relnamespace where c.relkind in ('r', 'v', 'm', 'f', 'p')"
        ~ " and c.relname = " ~ text[-1] ~ schema).columns[0].values()[0] %}
    {{ return(found > 0) }}
{% endmacro %}


{#- Spark (its default: names without regard to case) lists a schema's tables and views, the
    session's temporary views with them. Quoted names and three-part names (a catalog: Unity
    Catalog, Iceberg) are left to the engine; so is a name whose schema is `global_temp`. -#}
{% macro spark__clv_relation_may_exist(parts) %}
    {% if parts | length > 2 or parts | selectattr('quoted') | list | length > 0
          or (parts | length == 2 and parts[0].name | lower == 'global_temp') %}
        {{ return(true) }}
    {% endif %}
    {% set name = parts[-1].name | lower %}
    {% if parts | length == 2 %}
        {% set schema = parts[0].name | lower %}
        {% if run_query("show schemas like '" ~ schema ~ "'").rows | length == 0 %}
            {{ return(false) }}
        {% endif %}
        {% set tables = run_query("show tables in `" ~ schema ~ "` like '" ~ name ~ "'") %}
    {% else %}
        {% set tables = run_query("show tables like '" ~ name ~ "'") %}
    {% endif %}
    {{ return(tables.rows | length > 0) }}
{% endmacro %}


{#-
    Why the role this target connects as may not read relation `name` (clv_source's
    spelling), as a sentence naming the grants it lacks; empty when it may, or when that is not
    known here. The engine's own error ("permission denied for table orders") names neither the
    var, the schema nor the grant. PostgreSQL only, and only for a name with its schema; a role
    with a grant on some of the columns is left to the engine (select on every column reads).
-#}
{% macro clv_relation_unreadable(name) %}
    {{ return(adapter.dispatch('clv_relation_unreadable', 'clv')(clv_relation_parts(name))) }}
{% endmacro %}


{% macro default__clv_relation_unreadable(parts) %}
    {{ return('') }}
{% endmacro %}


{% macro postgres__clv_relation_unreadable(parts) %}
    {% if parts | length < 2 %}
        {{ return('') }}
    {% endif %}
    {% set text = clv_postgres_name_literals(parts[-2:]) %}
    {% set found = run_query(
        "select format('%I', n.nspname), format('%I.%I', n.nspname, c.relname), format('%I', current_user),"
        ~ " has_schema_privilege(n.oid, 'USAGE'), has_any_column_privilege(c.oid, 'SELECT')"
        ~ " from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on n.oid = c.relnamespace"
        ~ " where c.relkind in ('r', 'v', 'm', 'f', 'p') and n.nspname = " ~ text[0]
        ~ " and c.relname = " ~ text[1]).rows %}
    {% if found | length != 1 %}
        {{ return('') }}
    {% endif %}
    {% set schema, relation, role, usable, readable = found[0] %}
    {% set grants = [] %}
    {% if not usable %}
        {% do grants.append('grant usage on schema ' ~ schema ~ ' to ' ~ role) %}
    {% endif %}
    {% if not readable %}
        {% do grants.append('grant select on ' ~ relation ~ ' to ' ~ role) %}
    {% endif %}
    {% if not grants %}
        {{ return('') }}
    {% endif %}
    {{ return("the role " ~ role ~ " may not read " ~ relation ~ ": its owner (or a superuser) can "
              ~ (grants | join('; ')) ~ ", or the profile can connect as a role that may") }}
{% endmacro %}
