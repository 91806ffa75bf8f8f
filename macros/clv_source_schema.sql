{#-
    The columns of a relation or file read (SQL that can follow `from`), looked up in the
    warehouse at run time without reading a row: a list of {'name': ..., 'data_type': ...} in
    the source's order, names spelled as the source spells them, types as the engine names them
    (DuckDB's DOUBLE, PostgreSQL's FLOAT, Spark's double). Empty while dbt parses the project.
-#}
{% macro clv_source_schema(source_sql) %}
    {% if not execute %}
        {{ return([]) }}
    {% endif %}
    {% set columns = [] %}
    {% for column in get_column_schema_from_query('select * from ' ~ source_sql) %}
        {% do columns.append({'name': column.name, 'data_type': column.dtype}) %}
    {% endfor %}
    {{ return(columns) }}
{% endmacro %}


{#-
    The kind of a column type as an engine names it: 'text', 'integer', 'float', 'decimal',
    'temporal' (a date or timestamp; which of them hold instants is clv_is_instant_type's to say),
    'money' (PostgreSQL's, whose text is written for the locale: '$1,064.46') or 'other'. Covers
    DuckDB's names, PostgreSQL's as its driver reports them (STRING, INTEGER, LONGINTEGER, FLOAT,
    DECIMAL) and Spark's (string, bigint, double, decimal(10,2)).
-#}
{% macro clv_data_type_kind(data_type) %}
    {% set name = (data_type or '') | string | trim | lower %}
    {#- PostgreSQL's money: psycopg2 has no name for it; clv build gives it one (MONEY,
        clv.warehouse.postgres), else dbt reports its type code (790, fixed in the catalog) -#}
    {% set patterns = [
        ('text', '(varchar|nvarchar|text|string|bpchar|char|character( varying)?)( ?[(].*[)])?'),
        ('integer', 'u?(tiny|small|big|huge)?int(eger)?|int[248]|longinteger|long|short|byte'),
        ('float', 'double( precision)?|float[48]?|real'),
        ('decimal', '(decimal|numeric)( ?[(].*[)])?'),
        ('temporal', 'date|datetime|timestamp(_ntz|_s|_ms|_ns)?( ?[(].*[)])?( without time zone)?'),
        ('money', 'money|unknown type_code 790'),
    ] %}
    {% for kind, pattern in patterns %}
        {% if modules.re.fullmatch(pattern, name) %}
            {{ return(kind) }}
        {% endif %}
    {% endfor %}
    {{ return('other') }}
{% endmacro %}


{#-
    The select list that reads an optional input's columns (`names`, lower case) under those
    names, from its `schema` (clv_source_schema): each selected by the name the source gives
    it, quoted as the engine quotes names, since PostgreSQL finds a column named with capitals
    ("Customer_ID") only in double quotes and folds an unquoted customer_id to lower case. `*`
    before the schema is read (parse time).
-#}
{% macro clv_input_select(schema, names) %}
    {% set selected = [] %}
    {% set seen = [] %}
    {% for column in schema if (column.name | lower) in names and (column.name | lower) not in seen %}
        {% do seen.append(column.name | lower) %}
        {% do selected.append(clv_quote_name(column.name) ~ ' as ' ~ (column.name | lower)) %}
    {% endfor %}
    {{ return(selected | join(',\n        ') if selected else '*') }}
{% endmacro %}
