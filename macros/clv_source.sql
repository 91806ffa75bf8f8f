{#-
    The relation a clv_* input var points at, as SQL that can follow `from`.
    - empty: the shipped sample seed (`default_seed`) while clv_load_sample() allows it (when
      it does not, a run stops with one line saying to set clv_transactions), or none when
      there is no default;
    - a path or glob ending in .csv, .tsv, .txt or .parquet (optionally compressed): read as a
      file (DuckDB: delimited text or Parquet; on Spark Parquet only: a file, a directory or a
      glob ending in .parquet);
    - otherwise a relation name: `table`, `schema.table` or `database.schema.table`, each part
      plain or quoted ("..." or `...`), as `{{ ref('shop', 'orders') }}` (name the project: a
      bare ref from this package to the root project's model makes dbt warn) or
      `{{ source('shop', 'orders') }}` in the var renders. The var is rendered in the model's
      context, so such a ref is also an edge of the DAG: dbt builds the input first.
    Anything else is rejected before SQL runs, and so is a relation name the warehouse surely
    does not hold (clv_relation_may_exist), or one the target's role may not read
    (clv_relation_unreadable).
-#}
{% macro clv_source(var_name, default_seed=none) %}
    {% set value = (var(var_name, '') or '') | string | trim %}
    {% if value == '' %}
        {% if default_seed is none %}
            {{ return(none) }}
        {% endif %}
        {% if clv_load_sample() %}
            {% set seed = ref(default_seed) %}
            {{ clv_check_read_whole(var_name, seed | string) }}
            {{ return(seed) }}
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
    {% if clv_file_kind(value) %}
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
        {{ return(adapter.dispatch('clv_read_file', 'clv')(value, var_name)) }}
    {% endif %}
    {#- An ephemeral model renders as a CTE name no other model can read, and dbt's --empty and
        --sample render a ref or source as a subquery of a few rows or none: clv reads its
        inputs whole (their columns before any SQL runs, every row for the features). -#}
    {% if '__dbt__cte__' in value %}
        {{ clv_fail(var_name, "it refers to an ephemeral model ('" ~ value ~ "'), which no other "
                              ~ "model can read: materialize that model as a view or a table") }}
    {% endif %}
    {{ clv_check_read_whole(var_name, value) }}
    {% set part = '(' ~ clv_relation_name_part() ~ ')' %}
    {% if not modules.re.fullmatch(part ~ '(\\.' ~ part ~ '){0,2}', value) %}
        {{ clv_fail(var_name, "expected a relation name like schema.table or a file path, got '"
                              ~ value ~ "' " ~ clv_file_endings_hint()) }}
    {% endif %}
    {#- (a command that only compiles goes on: staging compiles without the input's columns,
        clv_input_unbuilt) -#}
    {% if execute and flags.WHICH not in clv_compile_only_commands() and not clv_relation_may_exist(value) %}
        {#- PostgreSQL folds an unquoted name to lower case: a table created as "Orders" is found
            only quoted. The hint names the quoted spelling when that relation exists. -#}
        {% set quoted = [] %}
        {% for part in value.split('.') %}
            {% do quoted.append(part | tojson if part != part | lower else part) %}
        {% endfor %}
        {% set quoted = quoted | join('.') %}
        {% set folded = target.type == 'postgres' and '"' not in value and quoted != value
                        and clv_relation_may_exist(quoted) %}
        {{ clv_fail(var_name, "no table or view '" ~ value ~ "' in the warehouse of target '" ~ target.name
                              ~ "': check its spelling and schema, or build the model it names first "
                              ~ clv_file_endings_hint()
                              ~ ("; PostgreSQL reads an unquoted name in lower case, and the table "
                                 ~ "was created with capitals: write it in double quotes, as '"
                                 ~ quoted ~ "'" if folded else "")) }}
    {% endif %}
    {% if execute and flags.WHICH not in clv_compile_only_commands() %}
        {% set refused = clv_relation_unreadable(value) %}
        {% if refused %}
            {{ clv_fail(var_name, refused) }}
        {% endif %}
    {% endif %}
    {{ return(value) }}
{% endmacro %}


{#- What a file path must look like on this engine, for a hint after a name that is neither a
    file nor a relation there. -#}
{% macro clv_file_endings_hint() %}
    {% if target.type == 'duckdb' %}
        {{ return("(a file path must end in .csv, .tsv, .txt or .parquet)") }}
    {% elif target.type == 'spark' %}
        {{ return("(a file path must end in .parquet: Spark reads Parquet files)") }}
    {% endif %}
    {{ return("(" ~ target.type ~ " reads no files: load a file into a table)") }}
{% endmacro %}


{#-
    Stops when dbt's --empty or --sample renders an input (`value`, the ref or source as
    rendered) as a subquery of a few rows or none: clv reads its inputs whole (every row for
    the features), so such a build would report the data itself as empty.
-#}
{% macro clv_check_read_whole(var_name, value) %}
    {% if modules.re.match('[(]select [*] from ', value, modules.re.IGNORECASE) %}
        {{ exceptions.raise_compiler_error(clv_read_whole_message(var_name ~ " as '" ~ value ~ "'")) }}
    {% endif %}
{% endmacro %}


{#- The line for a run with `flag` (--empty, --sample); `rendered` says what it did. -#}
{% macro clv_read_whole_message(rendered, flag="--empty or --sample") %}
    {{ return("clv's models do not run with dbt's " ~ flag ~ ", which renders " ~ rendered
              ~ ": clv reads its inputs whole. Run without the flag"
              ~ (", or leave clv out of that run (--exclude package:clv)" if project_name != 'clv' else "")) }}
{% endmacro %}


{#- The dbt commands that compile models without running them. -#}
{% macro clv_compile_only_commands() %}
    {{ return(['compile', 'generate']) }}
{% endmacro %}


{#-
    True when dbt only compiles (dbt compile, dbt docs generate) and the input `relation` of
    `var_name` (from clv_source; not a file) is not in the warehouse yet: the sample seed before
    `dbt seed`, or the installing project's model before it is built. Staging then compiles as
    an empty relation of its own columns, without reading the input's, and logs why; a run
    stops on such an input (clv_source), and compiles the whole SQL once it is there.
-#}
{% macro clv_input_unbuilt(var_name, relation) %}
    {% if not execute or flags.WHICH not in clv_compile_only_commands() or relation is none
          or clv_file_kind(var(var_name, '') or '') %}
        {{ return(false) }}
    {% endif %}
    {% if clv_relation_may_exist(relation | string) %}
        {{ return(false) }}
    {% endif %}
    {{ log("clv: " ~ var_name ~ " (" ~ clv_input_label(var_name) ~ ") is not in the warehouse (not "
           ~ "built yet, or misspelled), so " ~ model.name ~ " compiles as an empty relation without "
           ~ "reading its columns; a run stops on it (build or seed the input first to compile the SQL "
           ~ "that runs)", info=true) }}
    {{ return(true) }}
{% endmacro %}


{#-
    What a clv_* input var's value names, by its ending: 'text' (.csv, .tsv or .txt: delimited
    text), 'compressed text' (one of those with .gz or .zst after it), 'parquet' (.parquet,
    compressed or not), or none (a relation name).
-#}
{% macro clv_file_kind(value) %}
    {% set ending = modules.re.search('\\.(csv|tsv|txt|parquet)(\\.gz|\\.zst)?$', value | string | trim,
                                      modules.re.IGNORECASE) %}
    {% if not ending %}
        {{ return(none) }}
    {% endif %}
    {% if ending.group(1) | lower == 'parquet' %}
        {{ return('parquet') }}
    {% endif %}
    {{ return('compressed text' if ending.group(2) else 'text') }}
{% endmacro %}


{% macro default__clv_read_file(path, var_name) %}
    {{ clv_fail(var_name, "'" ~ path ~ "' is a file, which clv reads directly on DuckDB (delimited text, "
                          ~ "Parquet) and Spark (Parquet) only: on " ~ target.type ~ ", load it into a "
                          ~ "table and point the var at the table") }}
{% endmacro %}


{% macro duckdb__clv_read_file(path, var_name) %}
    {% if clv_file_kind(path) == 'parquet' %}
        {{ return(clv_parquet_with_instants("read_parquet('" ~ path ~ "')", path)) }}
    {% endif %}
    {#- sample_size = -1 sniffs the whole file, so a bad value late in a column widens its type
        instead of failing the read. Dates and times stay text, read by clv_parse_timestamp: the
        reader's own guess takes 01/02/21 as January 21 of the year 1 (with clv_timestamp_format
        '%d/%m/%y'), a column of month-first dates whose days are all 12 or less as day-first,
        and, with one value ending in an offset, every other value as UTC. -#}
    {#- With a decimal comma, numbers with a fraction stay text for clv_text_to_number: the reader
        would take '1.250' for 1.25. -#}
    {% set types = "'BOOLEAN', 'BIGINT', " ~ ("" if clv_decimal_separator() == ',' else "'DOUBLE', ") ~ "'VARCHAR'" %}
    {% set options = "header = true, sample_size = -1, encoding = '" ~ clv_csv_encoding(path, var_name)
                     ~ "', auto_type_candidates = [" ~ types ~ "]" %}
    {% set read = "read_csv('" ~ path ~ "', " ~ options ~ ")" %}
    {#- Every query that names `read` sniffs the whole file again (a describe of a 490 MB file
        takes longer than a scan with known columns), and the staging and parsing steps name it
        several times: the file is sniffed once here, and read with what the sniffer found (its
        dialect and column types, auto_detect off). sniff_csv reads one file: a glob is read
        as it is, and so are an empty file (no header for the sniffer to agree with) and a
        compressed one (which may be empty). -#}
    {% if not execute or '://' in path or modules.re.search('[*?\\[{]', path)
          or clv_file_kind(path) == 'compressed text'
          or run_query("select sum(size) from read_blob('" ~ path ~ "')").columns[0].values()[0] == 0 %}
        {{ return(read) }}
    {% endif %}
    {% set prompt = run_query("select Prompt from sniff_csv('" ~ path ~ "', " ~ options ~ ")"
                              ).columns[0].values()[0] %}
    {% set sniffed = modules.re.fullmatch('\\s*FROM\\s+(read_csv[(].*[)])\\s*;?\\s*', prompt or '',
                                          modules.re.DOTALL) %}
    {#- The sniffer writes column names into `columns` unescaped: a name with a quote
        (customer's name) would not parse. Such a file is read as it is. -#}
    {% set typed = "'[^']*': '(BOOLEAN|BIGINT|DOUBLE|VARCHAR)'" %}
    {% if not sniffed or not modules.re.search('columns=[{]' ~ typed ~ '(, ' ~ typed ~ ')*[}]', prompt) %}
        {{ return(read) }}
    {% endif %}
    {{ return(sniffed.group(1)) }}
{% endmacro %}


{#-
    `read` (DuckDB's read_parquet of `path`), with its INT96 timestamp columns read as the UTC
    instants they hold. Spark writes timestamps as INT96 by default, and DuckDB reads those as
    timestamps without a zone, which clv would take for local time already: converted to
    clv_time_zone like any instant instead, the same files give the same days on DuckDB as on
    Spark. Only the files' footers are read.
-#}
{% macro clv_parquet_with_instants(read, path) %}
    {% if not execute or '://' in path %}
        {{ return(read) }}
    {% endif %}
    {% set names = run_query(
        "select distinct name from parquet_schema('" ~ path ~ "') where type = 'INT96' and name in "
        ~ "(select column_name from (describe select * from " ~ read ~ "))").columns[0].values() %}
    {% if names | length == 0 %}
        {{ return(read) }}
    {% endif %}
    {% set instants = [] %}
    {% for name in names | sort %}
        {% do instants.append("timezone('UTC', " ~ clv_quote_name(name) ~ ") as " ~ clv_quote_name(name)) %}
    {% endfor %}
    {{ return("(select * replace (" ~ (instants | join(', ')) ~ ") from " ~ read ~ ")") }}
{% endmacro %}


{#-
    The encoding DuckDB reads a CSV input in: var clv_csv_encoding when set, else (`auto`) the
    one the files' bytes show. UTF-16 when every file starts with its little-endian byte-order
    mark (Excel's "Unicode text"); UTF-8 when every file decodes as UTF-8; Latin-1 (ISO-8859-1,
    as older exports write) when some do not and the rest are plain ASCII, which reads the same
    either way. Files of one input in different encodings, and the two DuckDB cannot read,
    big-endian UTF-16 and Windows-1252 (Excel's CSV on Windows, Latin-1 with characters in the
    bytes 0x80-0x9F), stop the build with one line naming the var.
    Compressed and remote files, and files of more than 512 MB in all, are not probed: UTF-8
    unless the var says otherwise.
-#}
{% macro clv_csv_encoding(path, var_name) %}
    {% set chosen = clv_validate_csv_encoding('clv_csv_encoding', var('clv_csv_encoding', 'auto')) %}
    {% if chosen != 'auto' %}
        {{ return(chosen) }}
    {% endif %}
    {% if not execute or '://' in path or clv_file_kind(path) != 'text' %}
        {{ return('utf-8') }}
    {% endif %}
    {#- read_blob holds each file whole in memory, and refuses one over 4 GiB: beyond 512 MB in
        all, the files are read as UTF-8 unchecked (size alone reads no byte of them). -#}
    {% set size = run_query("select coalesce(sum(size), 0) from read_blob('" ~ path ~ "')").columns[0].values()[0] %}
    {% if size > 512 * 1024 * 1024 %}
        {{ log("clv: " ~ var_name ~ " ('" ~ path ~ "') holds " ~ (size // (1024 * 1024)) ~ " MB: read as UTF-8 "
               ~ "without checking its bytes (set clv_csv_encoding to read it in another encoding)", info=true) }}
        {{ return('utf-8') }}
    {% endif %}
    {#- decode() fails on bytes that are not UTF-8 (1.2 s of the 16.8 s the staging and parsing
        steps took on a 490 MB file, bench/bench_csv_input.py; a set var skips this read). Only
        when a file is not UTF-8 do the others need a second look: a UTF-8 file of plain ASCII
        has as many characters as bytes, and reads the same in Latin-1. -#}
    {% set blobs = "(select filename, hex(content[1:2]) as head, try(decode(content)) as text, "
                   ~ "octet_length(content) as bytes from read_blob('" ~ path ~ "'))" %}
    {% set probe = run_query(
        "select count(*) as files,"
        ~ " count(*) filter (where head = 'FFFE') as utf16,"
        ~ " min(filename) filter (where head = 'FEFF') as big_endian,"
        ~ " min(filename) filter (where head not in ('FFFE', 'FEFF') and text is null) as not_utf8"
        ~ " from " ~ blobs).rows[0] %}
    {% set label = var_name ~ " ('" ~ path ~ "')" %}
    {% if probe['big_endian'] %}
        {{ clv_fail(var_name, "'" ~ probe['big_endian'] ~ "' is UTF-16 big-endian, which DuckDB does not "
                              ~ "read: save it as UTF-8 or UTF-16 little-endian") }}
    {% endif %}
    {% if probe['utf16'] > 0 and probe['utf16'] < probe['files'] %}
        {{ clv_fail(var_name, "the files of " ~ label ~ " differ in encoding: some are UTF-16 and some "
                              ~ "are not; save them in one encoding") }}
    {% endif %}
    {% if probe['utf16'] > 0 %}
        {{ return('utf-16') }}
    {% endif %}
    {% set utf8_non_ascii = run_query("select min(filename) from " ~ blobs ~ " where length(text) < bytes"
                                      ).columns[0].values()[0] if probe['not_utf8'] else none %}
    {% if utf8_non_ascii %}
        {{ clv_fail(var_name, "the files of " ~ label ~ " differ in encoding: '" ~ probe['not_utf8']
                              ~ "' is not UTF-8 and '" ~ utf8_non_ascii ~ "' is UTF-8 with "
                              ~ "characters beyond ASCII; save them in one encoding, or set "
                              ~ "clv_csv_encoding to the one to read them in") }}
    {% endif %}
    {#- DuckDB's Latin-1 reader refuses the bytes 0x80-0x9F (control characters in Latin-1, the
        euro sign and curly quotes in Windows-1252). A blob cast to text writes every byte beyond
        ASCII, and the backslash itself, as \xHH, so the pattern finds exactly those bytes. -#}
    {% set windows = run_query("select min(filename) from read_blob('" ~ path ~ "') where try(decode(content)) is null "
                               ~ "and regexp_matches(cast(content as varchar), '\\\\x[89][0-9A-F]')"
                               ).columns[0].values()[0] if probe['not_utf8'] else none %}
    {% if windows %}
        {{ clv_fail(var_name, "'" ~ windows ~ "' is neither UTF-8 nor Latin-1: its bytes 0x80-0x9F are most "
                              ~ "likely Windows-1252 (the euro sign and curly quotes of a CSV saved by Excel "
                              ~ "on Windows), which DuckDB reads only through an extension clv does not load. "
                              ~ "Save it as UTF-8 (Excel: CSV UTF-8) or convert it, for example with "
                              ~ "iconv -f cp1252 -t utf-8 '" ~ windows ~ "' > orders_utf8.csv") }}
    {% endif %}
    {% if probe['not_utf8'] %}
        {% set example = '' if probe['not_utf8'] == path else " ('" ~ probe['not_utf8'] ~ "')" %}
        {{ log("clv: " ~ label ~ " is not UTF-8" ~ example ~ ": read as Latin-1 (ISO-8859-1); set "
               ~ "clv_csv_encoding to read it in another encoding", info=true) }}
        {{ return('latin-1') }}
    {% endif %}
    {{ return('utf-8') }}
{% endmacro %}


{% macro spark__clv_read_file(path, var_name) %}
    {% if '`' in path %}
        {{ exceptions.raise_compiler_error("A file path must not contain backticks on Spark: '" ~ path ~ "'") }}
    {% endif %}
    {% if clv_file_kind(path) == 'parquet' %}
        {{ return("parquet.`" ~ path ~ "`") }}
    {% endif %}
    {{ exceptions.raise_compiler_error("On Spark only Parquet files are read directly (DuckDB reads CSV too); load '"
                                       ~ path ~ "' into a table and point the var at it.") }}
{% endmacro %}
