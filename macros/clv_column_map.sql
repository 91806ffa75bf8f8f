{#-
    The user's column (or SQL expression) for each input-contract name, from var `clv_columns`,
    checked against the source's columns (`source_columns`, from clv_source_schema) before any
    SQL reads the source. Required names not given default to the contract name itself.
    Optional names not given are used when the source has a column of that name, and are null
    otherwise. Columns the source lacks stop compilation with one line naming clv_columns,
    every contract name whose column is missing, and the columns the source has.
-#}
{% macro clv_column_map(source_columns) %}
    {% set given = var('clv_columns', {}) or {} %}
    {% if given is not mapping %}
        {{ clv_fail('clv_columns',
                    "expected a mapping such as {customer_id: CustomerID, amount: 'Quantity * UnitPrice'}") }}
    {% endif %}
    {% set required = ['customer_id', 'transacted_at', 'amount'] %}
    {% set optional = ['transaction_id', 'product_category'] %}
    {% for key in given %}
        {% if key not in required + optional %}
            {{ clv_fail('clv_columns', "unknown key '" ~ key ~ "'; allowed: " ~ ((required + optional) | join(', '))) }}
        {% endif %}
    {% endfor %}
    {% set names = source_columns | map(attribute='name') | map('lower') | list %}
    {% set columns = {} %}
    {% set problems = [] %}
    {% for key in required + optional %}
        {% if key in given %}
            {% set expression = given[key] | string | trim %}
            {% if expression == '' or ';' in expression or '--' in expression or '/*' in expression %}
                {{ clv_fail('clv_columns', "the expression for '" ~ key
                                           ~ "' must be non-empty and contain no ';' or SQL comments") }}
            {% endif %}
            {#- the name of a source column (a CSV header such as "Customer ID", or a SQL word
                such as Order) is that column, quoted as the engine quotes names -#}
            {% set named = namespace(expression=expression) %}
            {% for column in source_columns if column.name | lower == expression | lower %}
                {% set named.expression = clv_quote_name(column.name) %}
            {% endfor %}
            {% set expression = named.expression %}
        {% elif key in required or key in names %}
            {% set expression = key %}
        {% else %}
            {% set expression = none %}
        {% endif %}
        {% if expression is not none and source_columns %}
            {% set problem = clv_missing_columns_problem(key, expression, key in given, source_columns,
                                                          first=not problems) %}
            {% do problems.append(problem) if problem %}
            {% set expression = clv_quote_source_columns(expression, source_columns) %}
        {% endif %}
        {% do columns.update({key: expression}) %}
    {% endfor %}
    {% if problems %}
        {{ clv_fail('clv_columns', problems | join('; ') ~ "; its columns are: "
                                   ~ (source_columns | map(attribute='name') | join(', '))) }}
    {% endif %}
    {{ return(columns) }}
{% endmacro %}


{#-
    `expression` with each source column it names bare spelled as the source spells it, where
    the engine would not find it otherwise: PostgreSQL folds an unquoted name to lower case,
    so a column with capitals (a CSV imported with its header: "CustomerID") is found only in
    double quotes. String literals, quoted names and function names stay as written. Other
    engines match names in any case: the expression is returned as it is.
-#}
{% macro clv_quote_source_columns(expression, source_columns) %}
    {{ return(adapter.dispatch('clv_quote_source_columns', 'clv')(expression, source_columns)) }}
{% endmacro %}

{% macro default__clv_quote_source_columns(expression, source_columns) %}
    {{ return(expression) }}
{% endmacro %}

{% macro postgres__clv_quote_source_columns(expression, source_columns) %}
    {% set re = modules.re %}
    {% set keywords = clv_sql_keywords() %}
    {% set parts = re.split("('(?:[^']|'')*')", expression) %}
    {% set quoted = [] %}
    {% for part in parts %}
        {% set state = namespace(text=part) %}
        {% if loop.index0 % 2 == 0 %}
            {#- a name that is also a SQL word (a column "Date") could be a type here: left bare -#}
            {% for column in source_columns if column.name != column.name | lower
                                               and column.name | lower not in keywords %}
                {% set pattern = '(?<![A-Za-z0-9_$."])(?i:' ~ re.escape(column.name) ~ ')(?![A-Za-z0-9_$"(])' %}
                {% set state.text = re.sub(pattern, clv_quote_name(column.name) | replace('\\', '\\\\'),
                                           state.text) %}
            {% endfor %}
        {% endif %}
        {% do quoted.append(state.text) %}
    {% endfor %}
    {{ return(quoted | join('')) }}
{% endmacro %}


{#-
    What is wrong when `expression` (mapped to contract name `key`, or taken by default when
    not `is_given`) names a column the source does not have, with the likely spelling; '' when
    nothing is. The first problem of a message names the input (`first`). A file that reads as
    one column stops here, whatever the key: its header is the problem.
-#}
{% macro clv_missing_columns_problem(key, expression, is_given, source_columns, first=true) %}
    {% set names = source_columns | map(attribute='name') | list %}
    {% set lowered = names | map('lower') | list %}
    {% set missing = [] %}
    {#- a lone name is a column, SQL word or not (Date, Timestamp); so are words separated by
        spaces only, a header such as "Created date" that the source does not have -#}
    {% if modules.re.fullmatch('[A-Za-z_][A-Za-z0-9_$]*( +[A-Za-z0-9_$]+)*', expression)
          and expression | lower not in lowered and expression | lower != 'null' %}
        {% do missing.append(expression) %}
    {% else %}
        {% for name in clv_expression_column_names(expression) %}
            {% if name | lower not in lowered and name not in missing %}
                {% do missing.append(name) %}
            {% endif %}
        {% endfor %}
    {% endif %}
    {% if not missing %}
        {{ return('') }}
    {% endif %}
    {#- A spelling that differs only in case, underscores or spaces is likely the one meant;
        else one that shares a start of at least four characters and half the name. -#}
    {% set hints = [] %}
    {% for name in missing %}
        {% set wanted = modules.re.sub('[_ ]', '', name | lower) %}
        {% set found = namespace(any=false) %}
        {% for candidate in names %}
            {% if modules.re.sub('[_ ]', '', candidate | lower) == wanted %}
                {% do hints.append(candidate) %}
                {% set found.any = true %}
            {% endif %}
        {% endfor %}
        {% set meant = none if found.any else clv_closest_name(name, names, [4, (name | length + 1) // 2] | max) %}
        {% if meant %}
            {% do hints.append(meant) %}
        {% endif %}
    {% endfor %}
    {% set quoted = "'" ~ (missing | join("', '")) ~ "'" %}
    {% set input = "clv_transactions" ~ (" (" ~ clv_input_label('clv_transactions') ~ ")" if first else "") %}
    {% if is_given %}
        {% set problem = key ~ " maps to " ~ quoted ~ ", which " ~ input ~ " does not have" %}
    {% else %}
        {% set problem = input ~ " has no column " ~ quoted ~ " and clv_columns does not map " ~ key %}
    {% endif %}
    {#- One column whose name is the whole header line: the reader found no separator, or rows
        whose fields do not line up with the header's (it then reads every line whole). -#}
    {% set text_file = clv_file_kind(var('clv_transactions', '') or '') in ['text', 'compressed text'] %}
    {% set one_column = text_file and names | length == 1 %}
    {% set separator = modules.re.search('[,;\t|]', names[0]) if one_column else none %}
    {% if separator %}
        {{ clv_fail('clv_columns', problem ~ ": it reads as one column, '" ~ names[0] ~ "'. Its header "
                                   ~ "separates fields with '" ~ separator.group(0) ~ "', but some rows "
                                   ~ "have more or fewer fields than the header (a text field holding the "
                                   ~ "separator without quotes, say), so DuckDB's reader took every line "
                                   ~ "whole: quote such fields, or fix or remove those rows") }}
    {% elif one_column %}
        {{ clv_fail('clv_columns', problem ~ ": it reads as one column, '" ~ names[0] ~ "'. Its fields are "
                                   ~ "not separated by a comma, semicolon, tab or '|', the separators "
                                   ~ "DuckDB's reader recognizes: convert a file separated by spaces or "
                                   ~ "aligned in fixed widths (as CDNOW's master file) to CSV first") }}
    {% endif %}
    {{ return(problem ~ (" (did you mean '" ~ (hints | join("', '")) ~ "'?)" if hints else "")) }}
{% endmacro %}


{#-
    The column names a column-map expression reads: a plain name, or the names in an
    expression such as `Quantity * UnitPrice` or `cast(amount_cents as double) / 100`. String
    literals, function names (followed by a parenthesis), type names after `as` or `::`,
    qualified names and SQL keywords are not column names. Quoted names ("..." or `...`)
    count as written.
-#}
{% macro clv_expression_column_names(expression) %}
    {% set re = modules.re %}
    {% set text = re.sub("'([^']|'')*'", ' ', expression) %}
    {% set names = re.findall('"([^"]+)"|`([^`]+)`', text) | map('join', '') | list %}
    {% set text = re.sub('"[^"]*"|`[^`]*`', ' ', text) %}
    {% set text = re.sub('(?i)(::|\\bas\\b)\\s*[a-z_][a-z0-9_]*(\\s+precision)?(\\s*[(][0-9 ,]*[)])?', ' ', text) %}
    {% set keywords = clv_sql_keywords() %}
    {% for name in re.findall('(?<![A-Za-z0-9_$.])([A-Za-z_][A-Za-z0-9_$]*)(?![A-Za-z0-9_$])(?!\\s*[(.])', text) %}
        {% if name | lower not in keywords %}
            {% do names.append(name) %}
        {% endif %}
    {% endfor %}
    {{ return(names) }}
{% endmacro %}


{#- Words of SQL expressions that are not column names: operators, literals, date parts, types. -#}
{% macro clv_sql_keywords() %}
    {{ return((
        'and or not is null true false case when then else end in between like ilike similar glob escape '
        ~ 'distinct from as cast try_cast interval at time zone with without over partition by order '
        ~ 'asc desc nulls first last filter where within group rows range preceding following '
        ~ 'unbounded current row exists any all some collate both leading trailing for '
        ~ 'current_date current_time current_timestamp localtime localtimestamp '
        ~ 'epoch millennium century decade year years quarter month months week weeks day days dow '
        ~ 'doy isodow isoyear hour hours minute minutes second seconds millisecond milliseconds '
        ~ 'microsecond microseconds date timestamp timestamptz timestamp_ntz timestamp_ltz '
        ~ 'varchar text string char character varying double precision float float4 float8 real '
        ~ 'decimal numeric int int2 int4 int8 integer bigint smallint tinyint hugeint uinteger '
        ~ 'ubigint usmallint utinyint uhugeint long short byte boolean bool '
        ~ 'rlike regexp div mod xor unknown array map struct e'
    ).split()) }}
{% endmacro %}


{#-
    One line in the build's output saying what each contract name reads, and which were taken
    from a column of that name because clv_columns does not map them: a column named `amount`
    that holds a quantity (Ta-Feng's AMOUNT beside SALES_PRICE) is otherwise read as the spend
    without a word.
-#}
{% macro clv_log_column_map(columns) %}
    {% set given = var('clv_columns', {}) or {} %}
    {% set mapped = [] %}
    {% set by_name = [] %}
    {% for key, expression in columns.items() if expression is not none %}
        {% do (mapped.append(key ~ " = " ~ expression) if key in given else by_name.append(key)) %}
    {% endfor %}
    {% set named = (by_name[:-1] | join(', ') ~ " and " ~ by_name[-1]) if by_name | length > 1
                   else by_name | join('') %}
    {% if by_name %}
        {% do mapped.append(named ~ " from the column" ~ ("s" if by_name | length > 1 else "")
                            ~ " of " ~ ("those names" if by_name | length > 1 else "that name")
                            ~ " (map " ~ ("them" if by_name | length > 1 else "it")
                            ~ " in clv_columns if " ~ ("they hold" if by_name | length > 1 else "it holds")
                            ~ " something else)") %}
    {% endif %}
    {{ log("clv: reading clv_transactions (" ~ clv_input_label('clv_transactions') ~ "): " ~ (mapped | join('; ')),
           info=true) }}
{% endmacro %}
