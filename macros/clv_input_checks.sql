{#-
    Input resolution and checks that run when staging compiles, before any SQL reads an input:
    column names and types come from the warehouse's description of the source (no row read),
    so a misspelled column or a missing one stops the build with one line naming the var to
    change, instead of an engine's binder error.
-#}


{#- How an input var is quoted in messages: its value, or the sample seed when it is empty. -#}
{% macro clv_input_label(var_name) %}
    {% set value = (var(var_name, '') or '') | string | trim %}
    {{ return("'" ~ value ~ "'" if value else 'the sample seed') }}
{% endmacro %}


{#-
    The transactions input (var clv_transactions), resolved and checked. Returns a dict:
      relation: SQL that can follow `from` (clv_source);
      columns: contract name -> the user's column or expression, none for an optional column
        the source lacks (clv_column_map, which checks the names against the source);
      data_types: the type of the customer_id, transaction_id and transacted_at columns or
        expressions, as the engine names it, for clv_id_text and clv_parse_timestamp;
      amount, amount_text: the amount as SQL (clv_numeric_operands) and its raw text, the
        example value of an invalid_amount row;
      has_rows: false when the source has no rows and only text columns, as a header-only
        CSV reads. Expressions such as `Quantity * UnitPrice` cannot bind to text columns, so
        staging then renders an empty relation: clv_data_quality still builds, and
        int_clv__cutoffs stops with one line saying the source is empty. Other sources are not
        probed (true).
    When dbt only compiles and the source is not built yet (clv_input_unbuilt), only relation
    is read, columns is none and has_rows false.
-#}
{% macro clv_transactions_source() %}
    {% set relation = clv_source('clv_transactions', 'clv_sample_transactions') %}
    {% if clv_input_unbuilt('clv_transactions', relation) %}
        {{ return({'relation': relation, 'columns': none, 'has_rows': false}) }}
    {% endif %}
    {% set schema = clv_source_schema(relation) %}
    {#- An empty file reads as one unnamed text column (DuckDB's column0) and no row. -#}
    {% if schema | length == 1 and schema[0].name | lower == 'column0'
          and clv_is_empty_text_source(relation, schema) %}
        {{ clv_fail('clv_transactions', clv_input_label('clv_transactions')
                                        ~ " is empty: it has neither a header nor rows") }}
    {% endif %}
    {% set columns = clv_column_map(schema) %}
    {% set amount = clv_numeric_operands(columns.amount, schema, relation) %}
    {{ return({
        'relation': relation,
        'columns': columns,
        'amount': amount.expression,
        'amount_text': amount.text,
        'data_types': clv_expression_types(relation, schema, columns,
                                           ['customer_id', 'transaction_id', 'transacted_at']),
        'has_rows': not clv_is_empty_text_source(relation, schema),
    }) }}
{% endmacro %}


{#-
    The type of each of `keys`' columns or expressions in `columns`: a plain column's from
    `schema`, an expression's from the warehouse's description of a query selecting it.
-#}
{% macro clv_expression_types(relation, schema, columns, keys) %}
    {% set types = {} %}
    {% set by_name = {} %}
    {% for column in schema %}
        {% do by_name.update({column.name | lower: column.data_type}) %}
    {% endfor %}
    {% set computed = [] %}
    {% for key in keys %}
        {% set expression = columns[key] %}
        {% set plain = modules.re.fullmatch('["`]?([A-Za-z_][A-Za-z0-9_$]*)["`]?', expression or '') %}
        {% if expression is none %}
            {% do types.update({key: none}) %}
        {% elif plain and plain.group(1) | lower in by_name %}
            {% do types.update({key: by_name[plain.group(1) | lower]}) %}
        {% else %}
            {% do computed.append(key) %}
        {% endif %}
    {% endfor %}
    {% if computed and execute %}
        {% set selected = [] %}
        {% for key in computed %}
            {% do selected.append(columns[key] ~ ' as ' ~ key) %}
        {% endfor %}
        {% for column in get_column_schema_from_query('select ' ~ (selected | join(', ')) ~ ' from ' ~ relation) %}
            {% do types.update({column.name | lower: column.dtype}) %}
        {% endfor %}
    {% endif %}
    {{ return(types) }}
{% endmacro %}


{#-
    True when the source has only text columns and no row (a header-only CSV reads as text
    columns). Other sources are not probed: their expressions bind whatever their row count,
    and int_clv__cutoffs reports an empty one.
-#}
{% macro clv_is_empty_text_source(relation, schema) %}
    {% if not execute or not schema %}
        {{ return(false) }}
    {% endif %}
    {% for column in schema %}
        {% if clv_data_type_kind(column.data_type) != 'text' %}
            {{ return(false) }}
        {% endif %}
    {% endfor %}
    {% set probe = run_query('select 1 as has_row from ' ~ relation ~ ' limit 1') %}
    {{ return(probe.rows | length == 0) }}
{% endmacro %}


{#-
    The columns of an optional input (clv_customers, clv_events) as lower-case name -> type,
    from its `schema` (clv_source_schema), after checking that it has every name in `required` (and `extra`, the columns var
    clv_extra_features adds): missing ones stop compilation with one line naming the var,
    every missing column and the columns the source has. `optional` names the columns read
    when there (the staging model fills a missing one with nulls), for the message.
-#}
{% macro clv_input_columns(var_name, schema, required, extra=[], optional=[]) %}
    {% set types = {} %}
    {% for column in schema %}
        {% do types.update({column.name | lower: column.data_type}) %}
    {% endfor %}
    {% if not schema %}
        {{ return(types) }}
    {% endif %}
    {% set names = schema | map(attribute='name') | join(', ') %}
    {% set missing_extra = extra | reject('in', types) | list %}
    {% set missing = required | reject('in', types) | list %}
    {% if missing %}
        {{ clv_fail(var_name, clv_input_label(var_name) ~ " has no column" ~ ("s " if missing | length > 1 else " ")
                              ~ clv_quoted_list(missing) ~ " (expected " ~ (required | join(', '))
                              ~ ("; optional: " ~ (optional | join(', ')) if optional else "") ~ ")"
                              ~ ("; clv_extra_features also names " ~ clv_quoted_list(missing_extra)
                                 ~ ", which it does not have" if missing_extra else "")
                              ~ "; its columns are: " ~ names
                              ~ " (clv_columns maps the transactions' columns only: name a view or model that"
                              ~ " renames these instead)") }}
    {% endif %}
    {% if missing_extra %}
        {{ clv_fail('clv_extra_features', "names " ~ clv_quoted_list(missing_extra) ~ ", which " ~ var_name
                                          ~ " (" ~ clv_input_label(var_name) ~ ") does not have; its columns are: "
                                          ~ names) }}
    {% endif %}
    {#- which of the columns clv reads the input has: an optional one it lacks (a column named
        otherwise, signed_up_on for signup_date) is null on every row, without another word -#}
    {% if model.resource_type == 'model' %}
        {% set found = (required + extra + optional) | select('in', types) | list %}
        {% set lacking = optional | reject('in', types) | list %}
        {#- customer attributes beside those clv reads are no model input unless declared: say
            which, since a user who added one expects the model to use it -#}
        {% set unread = [] %}
        {% for column in schema if var_name == 'clv_customers' and (column.name | lower) not in found %}
            {% do unread.append(column.name) %}
        {% endfor %}
        {{ log("clv: reading " ~ var_name ~ " (" ~ clv_input_label(var_name) ~ "): " ~ (found | join(', '))
               ~ ("; no column " ~ (lacking | join(' or ')) ~ ", so " ~ ("it is" if lacking | length == 1 else "they are")
                  ~ " null on every row (a model that renames a column can supply it)" if lacking else "")
               ~ ("; not read: " ~ (unread | join(', ')) ~ " (name a numeric one in clv_extra_features to make it a model input)"
                  if unread else ""),
               info=true) }}
    {% endif %}
    {{ return(types) }}
{% endmacro %}


{#-
    The amount expression with every text column of the source it reads taken as a number
    first (clv_to_number), so that a cell that is not a number makes its row an invalid_amount,
    counted in clv_data_quality, instead of stopping the build: a CSV reader types a Quantity
    column with one 'n/a' as text, and `Quantity * UnitPrice` or `coalesce(Quantity, 0) *
    UnitPrice` would not bind. A text column is read as a number wherever the expression names
    it (bare, in double quotes or in backticks). In an expression with a string literal, only
    a column that is an operand of arithmetic somewhere (`case when Type = 'Refund' then -Amount
    else Amount end`) is: `replace(Amount, ',', '')` works on the text and `Type = 'Refund'`
    compares text, so those are left as written. An integer column
    becomes a number with a fraction wherever the expression names it (a double; on
    PostgreSQL numeric, as text columns do there: clv_number_operand), so `amount_cents / 100`
    and `coalesce(amount_cents, 0) / 100` keep their cents on PostgreSQL too.
    With var clv_decimal_separator ',', an amount that is still text is read with the decimal
    comma (its type from `schema`, or for an expression from `relation`, the source).
    Returns a dict:
      expression: the amount as SQL;
      text: the raw text of a row's amount: the column's, or for an expression each column it
        reads, as `Quantity=n/a UnitPrice=2.5` (not the cleaned text of `replace(Amount, ...)`).
-#}
{% macro clv_numeric_operands(expression, schema, relation=none) %}
    {% set re = modules.re %}
    {% set text = dbt.type_string() %}
    {% set plain = re.fullmatch('["`]?([A-Za-z_][A-Za-z0-9_$]*)["`]?', expression) %}
    {% set columns = {} %}
    {% for column in schema %}
        {% do columns.update({column.name | lower: column}) %}
    {% endfor %}
    {% set referenced, mentioned = [], [] %}
    {% if not plain %}
        {#- the literals' text is not the expression's: 'a-b' is no subtraction -#}
        {% set bare = re.sub("'([^']|'')*'", "''", expression) %}
        {% for name in clv_expression_column_names(expression) %}
            {% if name | lower in columns and columns[name | lower] not in mentioned %}
                {% do mentioned.append(columns[name | lower]) %}
                {#- money wherever it stands: no function reads its text either -#}
                {% if "'" not in expression or clv_is_arithmetic_operand(columns[name | lower].name, bare)
                      or clv_data_type_kind(columns[name | lower].data_type) == 'money' %}
                    {% do referenced.append(columns[name | lower]) %}
                {% endif %}
            {% endif %}
        {% endfor %}
    {% endif %}
    {% set state = namespace(sql=expression, rewritten=false) %}
    {#- PostgreSQL's money, plain: as numeric (its text, '$1,064.46', no number parse reads) -#}
    {% set own = columns.get(plain.group(1) | lower) if plain else none %}
    {% if own is not none and clv_data_type_kind(own.data_type) == 'money' %}
        {{ return({'expression': clv_number_operand(expression, 'money') | trim,
                   'text': 'cast(' ~ expression ~ ' as ' ~ text ~ ')'}) }}
    {% endif %}
    {% for column in referenced if clv_data_type_kind(column.data_type) in ['text', 'integer', 'money'] %}
        {#- every reference, wherever it stands: a text column parsed (a bad cell null), so that
            `coalesce(Quantity, 0)` reads it as a number; an integer column a number with a
            fraction, so that `amount_cents / 100` and `coalesce(amount_cents, 0) / 100` divide
            as on DuckDB and Spark (PostgreSQL's integer division would drop the cents); a money
            column (PostgreSQL) as numeric -#}
        {% set cast = clv_number_operand('@column@', clv_data_type_kind(column.data_type)) | trim %}
        {% for edge in clv_column_references(column.name) %}
            {#- the replacement: the engine's number cast of the column as written (the match's
                group 1), with any other backslash escaped -#}
            {% set number = cast | replace('\\', '\\\\') %}
            {% set after = re.sub(edge, number | replace('@column@', '\\1'), state.sql) %}
            {% if after != state.sql %}
                {% set state.rewritten = true %}
                {% set state.sql = after %}
            {% endif %}
        {% endfor %}
    {% endfor %}
    {#- With a decimal comma, an amount that is still text (a text column, `replace(Amount, '€',
        '')`) is read with it; its type is the column's, or the warehouse's for an expression. -#}
    {% if clv_decimal_separator() == ',' and execute %}
        {% set own = columns.get(plain.group(1) | lower) if plain else none %}
        {% set type = own.data_type if own else (get_column_schema_from_query(
            'select ' ~ state.sql ~ ' as amount from ' ~ relation)[0].dtype if relation else none) %}
        {% if clv_data_type_kind(type) == 'text' %}
            {% set state.sql = clv_text_to_number(state.sql) | trim %}
        {% endif %}
    {% endif %}
    {% if not state.rewritten and not mentioned %}
        {{ return({'expression': state.sql, 'text': 'cast(' ~ expression ~ ' as ' ~ text ~ ')'}) }}
    {% endif %}
    {% set parts = [] %}
    {% for column in mentioned %}
        {% do parts.append("'" ~ ('' if loop.first else ' ') ~ (column.name | replace("'", "''")) ~ "='") %}
        {% do parts.append("coalesce(cast(" ~ clv_quote_name(column.name) ~ " as " ~ text ~ "), '<null>')") %}
    {% endfor %}
    {{ return({'expression': state.sql, 'text': dbt.concat(parts)}) }}
{% endmacro %}


{#-
    A source column read as a number inside an amount expression: a text column parsed (a bad
    cell null), an integer column as a double, so that `amount_cents / 100` keeps its cents.
    On PostgreSQL as numeric instead: its round(x, n) takes numeric only, so
    `round(quantity * unit_price, 2)` and `round(amount_cents / 100.0, 2)`, which PostgreSQL
    runs on its own columns, would not run on doubles; numeric division keeps the cents too.
-#}
{% macro clv_number_operand(column, kind) %}
    {{ return(adapter.dispatch('clv_number_operand', 'clv')(column, kind)) }}
{% endmacro %}

{% macro default__clv_number_operand(column, kind) %}
    {% if kind == 'text' %}
        {{ return(clv_text_to_number(column) | trim) }}
    {% endif %}
    {{ return('cast(' ~ column ~ ' as ' ~ clv_type_double() ~ ')') }}
{% endmacro %}

{% macro postgres__clv_number_operand(column, kind) %}
    {% if kind == 'text' %}
        {#- NaN and the infinities the text may hold are numeric values on PostgreSQL 14+ -#}
        {{ return('cast(' ~ (clv_text_to_number(column) | trim) ~ ' as numeric)') }}
    {% endif %}
    {{ return('cast(' ~ column ~ ' as numeric)') }}
{% endmacro %}


{#- Regular expressions of source column `name` standing alone in an expression: bare, in
    double quotes or in backticks (any case), not part of a longer name or a function call; the
    reference as written is group 1. -#}
{% macro clv_column_references(name) %}
    {% set spelled = '(?i:' ~ modules.re.escape(name) ~ ')' %}
    {% set patterns = [] %}
    {% for form in ['"' ~ spelled ~ '"', '`' ~ spelled ~ '`', spelled] %}
        {% do patterns.append('(?<![A-Za-z0-9_$."`])(' ~ form ~ ')(?![A-Za-z0-9_$."`(])') %}
    {% endfor %}
    {{ return(patterns) }}
{% endmacro %}


{#- True when source column `name` stands in `expression` (its string literals emptied) as an
    operand of + - * / or %, unary minus included, in parentheses or not (`-(Amount)`). -#}
{% macro clv_is_arithmetic_operand(name, expression) %}
    {% set re = modules.re %}
    {% for alone in clv_column_references(name) %}
        {% if re.search('[-+*/%][\\s(]*' ~ alone, expression) or re.search(alone ~ '[\\s)]*[-+*/%]', expression) %}
            {{ return(true) }}
        {% endif %}
    {% endfor %}
    {{ return(false) }}
{% endmacro %}


{#- 'a', 'b' and 'c': names quoted for a message. -#}
{% macro clv_quoted_list(names) %}
    {% set quoted = [] %}
    {% for name in names %}
        {% do quoted.append("'" ~ name ~ "'") %}
    {% endfor %}
    {{ return(quoted[0] if quoted | length == 1 else (quoted[:-1] | join(', ')) ~ ' and ' ~ quoted[-1]) }}
{% endmacro %}
