{#-
    Post-hook of int_clv__cutoffs: no cutoff means that no transaction is usable (none at all,
    or every row excluded). Stops the build with one line that says which, names the vars to
    check and points to clv_data_quality, which is built from the same rows whatever happens
    here. Renders no SQL; the row counts behind the message are read only when it fails.
-#}
{% macro clv_require_usable_transactions(cutoffs) %}
    {% if not execute %}
        {{ return('') }}
    {% endif %}
    {% if run_query('select 1 as has_cutoff from ' ~ cutoffs ~ ' limit 1').rows | length > 0 %}
        {{ return('') }}
    {% endif %}
    {% set settings = clv_settings() %}
    {#- the default as-of date is yesterday: a row of today is after it -#}
    {% set as_of = "cast('" ~ settings.as_of_date ~ "' as date)" if settings.as_of_date
                    else clv_add_days(clv_current_date(settings.time_zone), -1) %}
    {% set reasons = ['missing_customer_id', 'invalid_timestamp', 'invalid_amount', 'duplicate_transaction'] %}
    {% set counts_sql %}
        select
            count(*) as source_rows,
            {% for reason in reasons -%}
            sum(case when row_problem = '{{ reason }}' then 1 else 0 end) as {{ reason }},
            min(case when row_problem = '{{ reason }}' then {{ clv_collate_binary('problem_value') }} end)
                as {{ reason }}_example,
            {% endfor -%}
            {#- a second time example: one of day-first or month-first times whose numbers are
                all 12 or less cannot tell the two apart, the last in text order more likely can -#}
            max(case when row_problem = 'invalid_timestamp' then {{ clv_collate_binary('problem_value') }} end)
                as invalid_timestamp_last,
            sum(case when row_problem is null and cast(transacted_at as date) > {{ as_of }} then 1 else 0 end)
                as after_as_of_date
        from {{ ref('int_clv__transactions_checked') }}
    {% endset %}
    {% set counts = run_query(counts_sql).rows[0] %}
    {% set source = "clv_transactions (" ~ clv_input_label('clv_transactions') ~ ")" %}
    {% if (counts['source_rows'] | int) == 0 %}
        {{ exceptions.raise_compiler_error(
            "No usable transactions: " ~ source ~ " has no rows; point clv_transactions at a table or file"
            ~ " with transactions (clv_data_quality shows 0 source rows)."
        ) }}
    {% endif %}
    {#- reason -> (the clv_columns key behind it, the other var that decides it) -#}
    {% set causes = {
        'missing_customer_id': ('customer_id', 'clv_missing_customer_ids'),
        'invalid_timestamp': ('transacted_at', 'clv_timestamp_format'),
        'invalid_amount': ('amount', none),
        'duplicate_transaction': (none, none),
        'after_as_of_date': (none, 'clv_as_of_date (' ~ settings.as_of_date ~ ' is before every usable row)'
                                   if settings.as_of_date else 'clv_as_of_date (every usable row is from today or later)'),
    } %}
    {% set found = [] %}
    {% set keys = [] %}
    {% set others = [] %}
    {% for reason in reasons + ['after_as_of_date'] %}
        {% if (counts[reason] | int) > 0 %}
            {% set example = counts.get(reason ~ '_example') if reason != 'after_as_of_date' else none %}
            {#- a missing id's or a duplicate's example is the row's transaction id (else its time) -#}
            {% set label = " the row of '" if reason in ['missing_customer_id', 'duplicate_transaction'] else " '" %}
            {% do found.append(reason ~ ' ' ~ (counts[reason] | int)
                               ~ (", e.g." ~ label ~ (example | string)[:40] ~ "'" if example is not none else '')) %}
            {% if causes[reason][0] %}
                {% do keys.append(causes[reason][0]) %}
            {% endif %}
            {% if causes[reason][1] %}
                {% do others.append(causes[reason][1]) %}
            {% endif %}
        {% endif %}
    {% endfor %}
    {% set checks = (['clv_columns (' ~ (keys | join(', ')) ~ ')'] if keys else []) + others %}
    {{ exceptions.raise_compiler_error(
        "No usable transactions: all " ~ (counts['source_rows'] | int) ~ " rows of " ~ source
        ~ " are excluded (" ~ (found | join('; ')) ~ "); see clv_data_quality for an example of each, and check "
        ~ (checks | join(', ')) ~ "." ~ clv_number_as_time_hint(counts['invalid_timestamp_example'])
        ~ clv_timestamp_format_hint([counts['invalid_timestamp_example'], counts['invalid_timestamp_last']],
                                    settings.timestamp_format)
        ~ clv_amount_text_hint(counts['invalid_amount_example'])
    ) }}
{% endmacro %}


{#-
    When the unreadable times are whole numbers, what they likely are and the expression that
    reads them, in the engine's SQL: day numbers (up to six digits, as dunnhumby's DAY) count
    from a start date the user knows; ten digits are Unix seconds, thirteen milliseconds. Any
    other example, nothing.
-#}
{% macro clv_number_as_time_hint(example) %}
    {% set text = (example if example is not none else '') | string | trim %}
    {% set spark = target.type == 'spark' %}
    {% if modules.re.fullmatch('-?[0-9]{1,6}', text) %}
        {{ return(" The times are whole numbers ('" ~ text ~ "'): if they count days from a start, map "
                  ~ "transacted_at to a date made of them, e.g. "
                  ~ ("date_add(DATE '2020-01-01', DAY)" if spark else "DATE '2020-01-01' + cast(DAY as integer)")
                  ~ " with your start date and column.") }}
    {% elif modules.re.fullmatch('[0-9]{10}', text) %}
        {{ return(" The times are whole numbers ('" ~ text ~ "'), most likely Unix seconds: map transacted_at to "
                  ~ ("timestamp_seconds(cast(your_column as bigint))" if spark
                     else "to_timestamp(cast(your_column as " ~ clv_type_double() ~ "))") ~ ".") }}
    {% elif modules.re.fullmatch('[0-9]{13}', text) %}
        {{ return(" The times are whole numbers ('" ~ text ~ "'), most likely Unix milliseconds: map transacted_at to "
                  ~ ("timestamp_millis(cast(your_column as bigint))" if spark
                     else "to_timestamp(cast(your_column as " ~ clv_type_double() ~ ") / 1000)") ~ ".") }}
    {% endif %}
    {{ return('') }}
{% endmacro %}


{#-
    The clv_timestamp_format that reads `examples` (a list of unreadable time texts), from the
    first that tells day and month apart, else the first: see clv_timestamp_formats. Nothing
    when the var already holds the guess, or for other text.
-#}
{% macro clv_timestamp_format_hint(examples, current_format) %}
    {% set chosen = namespace(example=examples[0], formats=clv_timestamp_formats(examples[0])) %}
    {% for example in examples[1:] if chosen.formats | length == 2 %}
        {% set formats = clv_timestamp_formats(example) %}
        {% if formats | length == 1 %}
            {% set chosen.example, chosen.formats = example, formats %}
        {% endif %}
    {% endfor %}
    {% set formats = chosen.formats %}
    {% if not formats or current_format in formats %}
        {{ return('') }}
    {% endif %}
    {% if formats | length == 2 %}
        {{ return(" The times look like '" ~ (chosen.example | string | trim) ~ "': set clv_timestamp_format to '"
                  ~ formats[0] ~ "' if the month comes first, '" ~ formats[1] ~ "' if the day does.") }}
    {% endif %}
    {{ return(" The times look like '" ~ (chosen.example | string | trim) ~ "': set clv_timestamp_format to '"
              ~ formats[0] ~ "'.") }}
{% endmacro %}


{#-
    The clv_timestamp_formats that read `example` (unreadable time text), when it is written in
    one of the common orders: day or month first with /, . or - between (both formats, month
    first, when both numbers are 12 or less, which one example cannot tell apart), an optional
    time of hours and minutes, seconds, AM/PM; eight digits (%Y%m%d); a month name (January 2,
    2024; 2-Jan-2024). None for other text.
-#}
{% macro clv_timestamp_formats(example) %}
    {% set text = (example if example is not none else '') | string | trim %}
    {% set re = modules.re %}
    {% set time = re.search(' ([0-9]{1,2}):[0-9]{2}(:[0-9]{2})?( ?)([AaPp][Mm])?$', text) %}
    {% set clock = '' %}
    {% if time %}
        {% set clock = ' ' ~ ('%I' if time.group(4) else '%H') ~ ':%M' ~ (':%S' if time.group(2) else '')
                       ~ ((time.group(3) ~ '%p') if time.group(4) else '') %}
        {% set text = text[:time.start()] %}
    {% endif %}
    {% set formats = [] %}
    {% set numeric = re.fullmatch('([0-9]{1,2})([/.-])([0-9]{1,2})[/.-]([0-9]{4})', text) %}
    {#- a month as %b reads (Jan) or as %B does (January): Sept or Jan. neither -#}
    {% set months = 'Jan(uary)?|Feb(ruary)?|Mar(ch)?|Apr(il)?|May|June?|July?|Aug(ust)?|Sep(tember)?'
                    ~ '|Oct(ober)?|Nov(ember)?|Dec(ember)?' %}
    {% set named = re.fullmatch('(' ~ months ~ ') ([0-9]{1,2}), ([0-9]{4})', text, re.IGNORECASE) %}
    {% set day_named = re.fullmatch('([0-9]{1,2})([- ])(' ~ months ~ ')[- ]([0-9]{4})', text, re.IGNORECASE) %}
    {% if numeric and numeric.group(2) in text[numeric.end(2):] %}
        {% set sep = numeric.group(2) %}
        {% set first, second = numeric.group(1) | int, numeric.group(3) | int %}
        {% if second <= 12 %}
            {% do formats.append('%d' ~ sep ~ '%m' ~ sep ~ '%Y' ~ clock) %}
        {% endif %}
        {% if first <= 12 %}
            {% do formats.insert(0, '%m' ~ sep ~ '%d' ~ sep ~ '%Y' ~ clock) %}
        {% endif %}
    {% elif re.fullmatch('(19|20)[0-9]{6}', text) %}
        {% do formats.append('%Y%m%d' ~ clock) %}
    {% elif named %}
        {% do formats.append(('%b' if named.group(1) | length == 3 else '%B') ~ ' %d, %Y' ~ clock) %}
    {% elif day_named %}
        {% set sep = day_named.group(2) %}
        {% do formats.append('%d' ~ sep ~ ('%b' if day_named.group(3) | length == 3 else '%B') ~ sep ~ '%Y'
                             ~ clock) %}
    {% endif %}
    {{ return(formats) }}
{% endmacro %}


{#-
    How to read `example` (an amount's unreadable text) when it is a number written with a
    currency sign or separators: a thousands comma and a decimal point (`$1,234.50`) take an
    expression that drops them; a decimal comma (`1.234,50`, `12,50`) takes
    clv_decimal_separator. Nothing for other text (an expression's operands included).
-#}
{% macro clv_amount_text_hint(example) %}
    {% set text = (example if example is not none else '') | string | trim %}
    {% set re = modules.re %}
    {% set parts = re.fullmatch('([^0-9,.+-]*?) ?([+-]?)([0-9][0-9,.]*) ?([^0-9,.+-]*)', text) %}
    {#- parentheses (an accountant's negative) and an expression's operands: no guess -#}
    {% if not parts or '=' in text or '(' in text %}
        {{ return('') }}
    {% endif %}
    {% set number = parts.group(3) %}
    {% set signs = [parts.group(1) | trim, parts.group(4) | trim] | select | list %}
    {% set column = (var('clv_columns', {}) or {}).get('amount', 'amount') | string %}
    {% set column = column if re.fullmatch('[A-Za-z_][A-Za-z0-9_]*', column) else 'your_column' %}
    {% set drop = namespace(expression=column) %}
    {% if re.fullmatch('[0-9]{1,3}(,[0-9]{3})+([.][0-9]+)?', number) %}
        {% set drop.expression = "replace(" ~ drop.expression ~ ", ',', '')" %}
    {% elif re.fullmatch('[0-9]{1,3}([.][0-9]{3})*,[0-9]+', number) %}
        {{ return(" The amounts look like '" ~ text ~ "', written with a decimal comma: set "
                  ~ "clv_decimal_separator to ','" ~ (" and drop the '" ~ (signs | join("' and '"))
                                                      ~ "' with replace()" if signs else "")
                  ~ ".") }}
    {% elif not re.fullmatch('[0-9]+([.][0-9]+)?', number) %}
        {{ return('') }}
    {% endif %}
    {% for sign in signs %}
        {% set drop.expression = "replace(" ~ drop.expression ~ ", '" ~ (sign | replace("'", "''")) ~ "', '')" %}
    {% endfor %}
    {% if drop.expression == column %}
        {{ return('') }}
    {% endif %}
    {{ return(" The amounts look like '" ~ text ~ "': map amount to " ~ drop.expression ~ ".") }}
{% endmacro %}
