{#-
    Post-hook of int_clv__as_of_date: a clv_timestamp_format with the day and the month in the
    wrong order (%d/%m/%Y on month-first text) reads every date whose day is 12 or less with
    day and month swapped and leaves the others unparsed, so the build would go on with half
    of its rows at wrong dates. When at least a tenth of the rows are invalid_timestamp and
    nine in ten of those parse with %d and %m swapped, the build stops with one line naming
    clv_timestamp_format and the format that fits; when fewer rows are affected (a source
    that mixes both orders), dbt warns. Renders no SQL, and reads nothing unless the format
    holds both %d and %m.
-#}
{% macro clv_check_day_month_order() %}
    {% if not execute %}
        {{ return('') }}
    {% endif %}
    {% set settings = clv_settings() %}
    {% set format = settings.timestamp_format or '' %}
    {% set swapped = clv_day_month_swapped(format) %}
    {% if not swapped %}
        {{ return('') }}
    {% endif %}
    {% set counts_sql %}
        select
            count(*) as source_rows,
            sum(case when row_problem = 'invalid_timestamp' then 1 else 0 end) as invalid_rows,
            sum(
                case
                    when row_problem = 'invalid_timestamp'
                        and {{ clv_parse_timestamp('problem_value', swapped, settings.time_zone) }} is not null
                        then 1
                    else 0
                end
            ) as swapped_rows
        from {{ ref('int_clv__transactions_checked') }}
    {% endset %}
    {% set counts = run_query(counts_sql).rows[0] %}
    {% set rows, invalid, fits = counts['source_rows'] | int, counts['invalid_rows'] | int,
                                 counts['swapped_rows'] | int %}
    {% if invalid == 0 or fits * 2 < invalid %}
        {{ return('') }}
    {% endif %}
    {% set message = fits ~ " of the " ~ invalid ~ " rows (of " ~ rows ~ ") that clv_timestamp_format '"
                     ~ format ~ "' cannot read are read by '" ~ swapped ~ "': " %}
    {% if invalid * 10 >= rows and fits * 10 >= invalid * 9 %}
        {{ exceptions.raise_compiler_error(
            "Invalid value for var 'clv_timestamp_format': " ~ message ~ "the day and the month look swapped, "
            ~ "and rows with a day of 12 or less would be read at wrong dates; set clv_timestamp_format to '"
            ~ swapped ~ "'."
        ) }}
    {% endif %}
    {% do exceptions.warn(
        "clv_timestamp_format: " ~ message ~ "the source may write dates in both orders; those rows are "
        ~ "excluded as invalid_timestamp (see clv_data_quality)."
    ) %}
    {{ return('') }}
{% endmacro %}


{#- `format` with %d and %m (or %-d and %-m) exchanged, or none when it lacks either. -#}
{% macro clv_day_month_swapped(format) %}
    {% set pairs = [('%-d', '%-m'), ('%d', '%m')] %}
    {% set text = namespace(value=format | replace('%%', '@@clv_percent@@')) %}
    {% set found = namespace(any=false) %}
    {% for day, month in pairs if day in text.value and month in text.value %}
        {% set text.value = text.value | replace(day, '@@clv_day@@') | replace(month, day)
                                       | replace('@@clv_day@@', month) %}
        {% set found.any = true %}
    {% endfor %}
    {{ return((text.value | replace('@@clv_percent@@', '%%')) if found.any else none) }}
{% endmacro %}
