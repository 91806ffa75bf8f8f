{#-
    SQL for the on-run-start hook: creates the helper functions an engine lacks, in the target
    schema; nothing on DuckDB and Spark. PostgreSQL 15 has no try_cast (and no
    pg_input_is_valid, new in 16): a regular expression cannot tell 2022-02-30 from a real
    date, so each cast is tried in a PL/pgSQL block whose data exceptions return null. The
    text is matched against a strict pattern first (clv_parse_timestamp, clv_to_number), so
    PostgreSQL's more lenient input rules ('now', 'Jan 5 2024', trailing text) do not apply.
    The functions are PARALLEL UNSAFE (the default): a subtransaction cannot start in a
    parallel worker.
-#}
{% macro clv_create_warehouse_functions() %}
    {{ return(adapter.dispatch('clv_create_warehouse_functions', 'clv')()) }}
{% endmacro %}

{% macro default__clv_create_warehouse_functions() %}
    {{ return('') }}
{% endmacro %}

{% macro postgres__clv_create_warehouse_functions() %}
    {%- set schema = adapter.quote(target.schema) -%}
    {#- Only when it is missing: `create schema if not exists` needs the right to create
        schemas in the database even when the schema is there, which a role granted only its
        own schema lacks. -#}
    do $clv$
    begin
        if not exists (select from pg_namespace where nspname = '{{ target.schema | replace("'", "''") }}') then
            create schema {{ schema }};
        end if;
    end
    $clv$;

    create or replace function {{ schema }}.clv_try_cast_timestamp(value text)
    returns timestamp
    language plpgsql
    stable
    as $clv$
    begin
        return cast(value as timestamp);
    exception when data_exception then
        return null;
    end
    $clv$;

    -- text with a UTC offset (clv_parse_timestamp): the offset fixes the instant, whatever the
    -- session's time zone
    create or replace function {{ schema }}.clv_try_cast_timestamptz(value text)
    returns timestamptz
    language plpgsql
    stable
    as $clv$
    begin
        return cast(value as timestamptz);
    exception when data_exception then
        return null;
    end
    $clv$;

    -- to_timestamp returns a timestamp with time zone read in the session's time zone: read
    -- in UTC, its UTC wall clock is the text's own (no daylight-saving gap moves it)
    create or replace function {{ schema }}.clv_try_to_timestamp(value text, template text)
    returns timestamp
    language plpgsql
    stable
    set timezone to 'UTC'
    as $clv$
    begin
        return cast(to_timestamp(value, template) as timestamp);
    exception when data_exception then
        return null;
    end
    $clv$;

    -- out of range (PostgreSQL raises): a magnitude below the smallest double is a signed
    -- zero, above the largest a signed infinity, as DuckDB and Spark read them
    create or replace function {{ schema }}.clv_try_cast_double(value text)
    returns double precision
    language plpgsql
    immutable
    as $clv$
    begin
        return cast(value as double precision);
    exception when data_exception then
        begin
            return case when cast(value as numeric) < 0 then -1 else 1 end
                * case when abs(cast(value as numeric)) < 1 then 0 else cast('Infinity' as double precision) end;
        exception when data_exception then
            return null;
        end;
    end
    $clv$;
{% endmacro %}


{#- The qualified name of a function created by clv_create_warehouse_functions(). -#}
{% macro clv_warehouse_function(name) %}
    {{ return(adapter.quote(target.schema) ~ '.' ~ name) }}
{% endmacro %}
