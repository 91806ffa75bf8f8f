{#-
    The business's local time of an instant (a timestamp with time zone; on Spark the
    timestamp type) in `time_zone` (var clv_time_zone, validated by clv_settings), daylight
    saving included: a timestamp without zone on DuckDB and PostgreSQL, timestamp_ntz on Spark.
    The result does not depend on the session's time zone.
-#}
{% macro clv_to_time_zone(expression, time_zone) %}
    {{ return(adapter.dispatch('clv_to_time_zone', 'clv')(expression, time_zone)) }}
{% endmacro %}

{% macro default__clv_to_time_zone(expression, time_zone) %}
    {{ return('(' ~ expression ~ ") at time zone '" ~ time_zone ~ "'") }}
{% endmacro %}

{#- In microseconds whatever the input's precision (an instant in nanoseconds gives one). -#}
{% macro duckdb__clv_to_time_zone(expression, time_zone) %}
    {{ return("cast(timezone('" ~ time_zone ~ "', " ~ expression ~ ') as timestamp)') }}
{% endmacro %}

{#- The instant's UTC wall clock as timestamp_ntz (from its microseconds, which a cast would
    render in the session's zone), then converted from UTC. -#}
{% macro spark__clv_to_time_zone(expression, time_zone) %}
    {{ return("convert_timezone('UTC', '" ~ time_zone ~ "', timestampadd(microsecond, unix_micros("
              ~ expression ~ "), timestamp_ntz '1970-01-01 00:00:00'))") }}
{% endmacro %}


{#-
    True when a column type, as the engine names it (clv_source_schema), holds instants rather
    than wall-clock times: DuckDB's TIMESTAMP WITH TIME ZONE (TIMESTAMPTZ_NS in nanoseconds,
    as pandas writes Parquet), PostgreSQL's timestamptz (its driver reports DATETIMETZ), Spark's
    timestamp (timestamp_ntz is a wall-clock time).
-#}
{% macro clv_is_instant_type(data_type) %}
    {{ return(adapter.dispatch('clv_is_instant_type', 'clv')(data_type)) }}
{% endmacro %}

{% macro default__clv_is_instant_type(data_type) %}
    {{ return((data_type or '') | string | trim | lower
              in ['timestamp with time zone', 'timestamptz', 'datetimetz', 'timestamp_tz',
                  'timestamptz_ns']) }}
{% endmacro %}

{% macro spark__clv_is_instant_type(data_type) %}
    {{ return((data_type or '') | string | trim | lower in ['timestamp', 'timestamp_ltz']) }}
{% endmacro %}


{#- Today in `time_zone` as YYYY-MM-DD: the day the dbt invocation started (run_started_at), not
    the clock's as each model compiles or each query runs, so every model, hook and test of one
    build reads the same today, a build that runs past midnight included. `clv build` on
    PostgreSQL and Spark runs several dbt commands and passes its own start to each
    (CLV_BUILD_STARTED_AT, clv.build.one_start), read only when executing: the parse does not
    depend on it. -#}
{% macro clv_today(time_zone) %}
    {% set now = run_started_at or modules.datetime.datetime.now(modules.pytz.utc) %}
    {% set given = env_var('CLV_BUILD_STARTED_AT', '') if execute else '' %}
    {% set started = now %}
    {% if given %}
        {#- a value left in a shell would freeze today: only a build's own start, in UTC,
            before this command's and at most a week before it -#}
        {% set re = modules.re %}
        {% set parsed = modules.datetime.datetime.fromisoformat(given)
                        if re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[+]00:00', given) else none %}
        {% if parsed is none or parsed > now or (now - parsed).days >= 7 %}
            {{ exceptions.raise_compiler_error(
                "CLV_BUILD_STARTED_AT is " ~ given ~ ": clv build sets it for the dbt commands of"
                ~ " its own build; unset it in the environment dbt runs in") }}
        {% endif %}
        {% set started = parsed %}
    {% endif %}
    {{ return(started.astimezone(modules.pytz.timezone(time_zone)).date().isoformat()) }}
{% endmacro %}

{#- Today in `time_zone` (clv_today), as a SQL date. -#}
{% macro clv_current_date(time_zone) %}
    {{ return("cast('" ~ clv_today(time_zone) ~ "' as date)") }}
{% endmacro %}


{#-
    SQL for the on-run-start hook: stops the run with one line naming the var when the engine
    does not know clv_time_zone. Names are checked against pytz's list when the vars are read
    (clv_validate_time_zone), which every engine's zone data covers, except a Java runtime's
    older data on Spark (for example America/Coyhaique, named in 2025) and the pytz aliases
    Java leaves out (ROC): Spark itself would stop at the first SQL that converts a time, with
    an error about a timezone and not the var. Nothing on DuckDB and PostgreSQL.
-#}
{% macro clv_check_time_zone() %}
    {{ return(adapter.dispatch('clv_check_time_zone', 'clv')()) }}
{% endmacro %}

{% macro default__clv_check_time_zone() %}
    {{ return('') }}
{% endmacro %}

{% macro spark__clv_check_time_zone() %}
    {% if execute %}
        {% set zone = clv_validate_time_zone('clv_time_zone', var('clv_time_zone', 'UTC')) %}
        {#- ZoneId.getAvailableZoneIds() rendered as text: [Zone/A, Zone/B, ...] -#}
        {% set known = run_query(
            "select array_contains(split(translate(reflect('java.time.ZoneId', 'getAvailableZoneIds'), "
            ~ "'[] ', ''), ','), '" ~ zone ~ "')"
        ).columns[0].values()[0] %}
        {% if not known %}
            {{ clv_fail('clv_time_zone', "'" ~ zone ~ "' is not in the time zone data of Spark's Java runtime"
                        ~ " (older than the name, or an alias Java leaves out): use another name of that"
                        ~ " zone, or run Spark on a Java runtime with newer time zone data") }}
        {% endif %}
    {% endif %}
    {{ return('') }}
{% endmacro %}
