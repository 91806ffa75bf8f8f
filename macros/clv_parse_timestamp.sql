{#-
    A timestamp in the business's local time (`time_zone`, var clv_time_zone) from text or a
    timestamp/date column; null when it cannot be parsed. An instant is converted to that zone,
    daylight saving included: a column whose type holds instants (clv_is_instant_type; on
    Spark the timestamp type), or ISO text that ends with a UTC offset (2024-03-10T23:30:00Z,
    +02, +0200, +02:00; an offset beyond 15 hours is invalid). A time without offset, a
    timestamp without zone and a date are local time already and stay as they are. `format` is
    a strptime format (var clv_timestamp_format) for text; empty reads ISO dates and date-times.
    A column typed as a date or timestamp (a table's or a Parquet file's; a CSV file's dates
    reach this as text, clv_read_file) is cast as it is, whatever the format. On
    DuckDB a format with %z or %Z gives instants, converted the same way. `data_type` is the
    column's type as the engine names it (clv_source_schema). Every engine accepts the same
    text: each engine matches it against the pattern of clv_timestamp_patterns.sql first, then
    tries the cast (DuckDB's cast alone would read `2024-03-10 11:30:00 PM` as 11:30 and drop a
    trailing zone name). On Spark the result is a timestamp whose rendering in the
    session's time zone is the local time (as a cast from timestamp_ntz gives), so the dates
    taken from it in that session are the local dates.
-#}
{% macro clv_parse_timestamp(expression, format='', time_zone='UTC', data_type=none) %}
    {%- if clv_data_type_kind(data_type) == 'temporal' and not clv_is_instant_type(data_type) -%}
        {{ return('cast(' ~ expression ~ ' as ' ~ dbt.type_timestamp() ~ ')') }}
    {%- endif -%}
    {{ return(adapter.dispatch('clv_parse_timestamp', 'clv')(expression, format, time_zone, data_type)) }}
{% endmacro %}

{#-
    An input's timestamp (transacted_at, clv_events.event_at, clv_customers.signup_date): read
    with clv_timestamp_format when it is set and describes the text, else with the format's
    date part alone (a sign-up written 25/12/2010 beside transactions written 25/12/2010
    14:30), else as ISO, so the events and sign-ups of an export written like its transactions
    are read, and ISO text still is (a glob of an old export's files beside new ISO ones).
-#}
{% macro clv_parse_input_timestamp(expression, format='', time_zone='UTC', data_type=none) %}
    {%- set iso = clv_parse_timestamp(expression, '', time_zone, data_type) -%}
    {%- if not format or clv_data_type_kind(data_type) == 'temporal' -%}
        {{ return(iso) }}
    {%- endif -%}
    {%- set readers = [clv_parse_timestamp(expression, format, time_zone, data_type)] -%}
    {%- set date_format = clv_date_part_of_format(format) -%}
    {%- if date_format and date_format != format -%}
        {%- do readers.append(clv_parse_timestamp(expression, date_format, time_zone, data_type)) -%}
    {%- endif -%}
    {{ return('coalesce(' ~ (readers + [iso]) | join(', ') ~ ')') }}
{% endmacro %}

{#- The date directives a format starts with, up to its first time directive ('%d/%m/%Y %H:%M'
    gives '%d/%m/%Y'); empty when it holds no year or starts with the time. -#}
{% macro clv_date_part_of_format(format) %}
    {%- set date_part = modules.re.sub('[ T]*%[HIklMSfpzZ].*$', '', format) -%}
    {{ return(date_part if modules.re.search('%[Yy]', date_part) else '') }}
{% endmacro %}

{% macro default__clv_parse_timestamp(expression, format='', time_zone='UTC', data_type=none) %}
    {%- if clv_is_instant_type(data_type) -%}
        {{ clv_to_time_zone(expression, time_zone) }}
    {%- else -%}
        {{ dbt.safe_cast(expression, dbt.type_timestamp()) }}
    {%- endif -%}
{% endmacro %}

{% macro duckdb__clv_parse_timestamp(expression, format='', time_zone='UTC', data_type=none) %}
    {%- if clv_is_instant_type(data_type) -%}
        {{ clv_to_time_zone(expression, time_zone) }}
    {%- elif format -%}
        {#- As on PostgreSQL and Spark: trimmed text that matches the format's pattern (try_strptime
            alone reads '2024031' with %Y%m%d as March 1), runs of spaces read as one. A format with
            directives only DuckDB reads has no pattern: try_strptime alone decides. -#}
        {%- set patterns = clv_timestamp_format_patterns(format, strict=false) -%}
        {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as varchar)') -%}
        {%- set parsed = "try_strptime(" ~ ("regexp_replace(" ~ text ~ ", ' +', ' ', 'g')" if patterns else text)
                         ~ ", '" ~ format ~ "')" -%}
        {%- if patterns -%}
            {%- set parsed = "case when " ~ clv_regex_matches(text, patterns.regex) ~ " then " ~ parsed ~ " end" -%}
        {%- endif -%}
        {{ clv_to_time_zone(parsed, time_zone) if modules.re.search('(^|[^%])(%%)*%[zZ]', format) else parsed }}
    {%- elif data_type and clv_data_type_kind(data_type) != 'text' -%}
        try_cast({{ expression }} as timestamp)
    {%- else -%}
        {#- The timestamptz cast takes no space before the offset. -#}
        {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as varchar)') -%}
        case
            when not {{ clv_regex_matches(text, clv_iso_timestamp_regex()) }} then null
            when {{ clv_regex_matches(text, clv_timestamp_offset_regex()) }}
                then {{ clv_to_time_zone("try_cast(regexp_replace(" ~ text ~ ", ' +([Z+-])', '\\1') as timestamptz)",
                                         time_zone) }}
            when {{ clv_regex_matches(text, clv_timestamp_offset_regex(valid=false)) }} then null
            else try_cast({{ text }} as timestamp)
        end
    {%- endif -%}
{% endmacro %}

{% macro postgres__clv_parse_timestamp(expression, format='', time_zone='UTC', data_type=none) %}
    {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as text)') -%}
    {%- if clv_is_instant_type(data_type) -%}
        {{ clv_to_time_zone(expression, time_zone) }}
    {%- elif format -%}
        {%- set patterns = clv_timestamp_format_patterns(format) -%}
        case
            when {{ clv_regex_matches(text, patterns.regex) }}
                then {{ clv_warehouse_function('clv_try_to_timestamp') }}({{ text }}, '{{ patterns.postgres }}')
        end
    {%- else -%}
        {#- PostgreSQL rounds a fraction beyond microseconds; DuckDB and Spark truncate it. -#}
        {%- set truncated = "regexp_replace(" ~ text ~ ", '([.][0-9]{6})[0-9]+', '\\1')" -%}
        case
            when not {{ clv_regex_matches(text, clv_iso_timestamp_regex()) }} then null
            when {{ clv_regex_matches(text, clv_timestamp_offset_regex()) }}
                then {{ clv_to_time_zone(clv_warehouse_function('clv_try_cast_timestamptz') ~ '(' ~ truncated ~ ')',
                                         time_zone) }}
            else {{ clv_warehouse_function('clv_try_cast_timestamp') }}({{ truncated }})
        end
    {%- endif -%}
{% endmacro %}

{% macro spark__clv_parse_timestamp(expression, format='', time_zone='UTC', data_type=none) %}
    {%- set text = clv_trim_whitespace('cast(' ~ expression ~ ' as string)') -%}
    {%- if clv_is_instant_type(data_type) -%}
        cast({{ clv_to_time_zone(expression, time_zone) }} as timestamp)
    {%- elif format -%}
        {%- set patterns = clv_timestamp_format_patterns(format) -%}
        case
            when {{ clv_regex_matches(text, patterns.regex) }}
                then try_to_timestamp(regexp_replace({{ text }}, ' +', ' '), '{{ patterns.spark }}')
        end
    {%- else -%}
        {#- The wall-clock time is read as timestamp_ntz (timestamp would read it in the session's
            zone) without the offset, then converted from the offset to the local zone. -#}
        {%- set iso_text = "translate(" ~ text ~ ", '/', '-')" -%}
        {%- set offset = clv_utc_offset_regex() -%}
        case
            when not {{ clv_regex_matches(text, clv_iso_timestamp_regex()) }} then null
            when {{ clv_regex_matches(text, clv_timestamp_offset_regex()) }}
                then cast(convert_timezone(
                    regexp_extract({{ text }}, '({{ offset }})$', 1),
                    '{{ time_zone }}',
                    {{ clv_spark_wall_clock("regexp_replace(" ~ iso_text ~ ", ' *(" ~ offset ~ ")$', '')") }}
                ) as timestamp)
            else cast({{ clv_spark_wall_clock(iso_text) }} as timestamp)
        end
    {%- endif -%}
{% endmacro %}

{#- ISO text without offset as timestamp_ntz. 24:00 is midnight of the next day in DuckDB and
    PostgreSQL; Spark rejects it. -#}
{% macro clv_spark_wall_clock(iso_text) -%}
    case
        when {{ clv_regex_matches(iso_text, '[ T]24:00(:00([.]0+)?)?$') }}
            then cast(date_add(try_cast(regexp_extract({{ iso_text }}, '^[0-9-]+', 0) as date), 1) as timestamp_ntz)
        else try_cast({{ iso_text }} as timestamp_ntz)
    end
{%- endmacro %}
