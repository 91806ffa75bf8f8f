{#-
    Reads and validates every clv_* var before any SQL runs: the one place vars are checked.
    Returns a dict of clean values; an invalid var stops compilation with an error naming it.
    The one-row model clv_run_settings carries the values the Python steps need.
-#}
{% macro clv_settings() %}
    {% do clv_check_var_names() %}
    {% set horizon_days = clv_validate_int('clv_horizon_days', var('clv_horizon_days', 365), 1, 3650) %}
    {#- Default spacing: a quarter of the horizon (at least a week), so short histories still
        yield several cutoffs and long ones cover the seasons. -#}
    {% set spacing = var('clv_cutoff_spacing_days', '') %}
    {% set spacing = [7, ((horizon_days / 4) | round | int)] | max
                     if (spacing | string | trim) == '' else spacing %}
    {% set extra_features = clv_validate_names('clv_extra_features', var('clv_extra_features', [])) %}
    {% set time_zone = clv_validate_time_zone('clv_time_zone', var('clv_time_zone', 'UTC')) %}
    {#- load_sample: the choice alone. clv_load_sample() also reads clv_transactions, which
        renders a ref in that var, and every model that reads the settings would then depend
        on it (a unit test with vars of its own then fails: no input is given for that ref). -#}
    {% set settings = {
        'as_of_date': clv_validate_as_of_date('clv_as_of_date', var('clv_as_of_date', ''), time_zone),
        'horizon_days': horizon_days,
        'training_cutoffs': clv_validate_int('clv_training_cutoffs', var('clv_training_cutoffs', 8), 1, 52),
        'seasonal_backtests': clv_validate_int('clv_seasonal_backtests', var('clv_seasonal_backtests', 3), 0, 52),
        'cutoff_spacing_days': clv_validate_int('clv_cutoff_spacing_days', spacing, 1, 3650),
        'period_days': clv_validate_int('clv_period_days', var('clv_period_days', 30), 1, 366),
        'sequence_periods': clv_validate_int('clv_sequence_periods', var('clv_sequence_periods', 12), 1, 104),
        'retrain': clv_validate_choice('clv_retrain', var('clv_retrain', 'auto'), ['always', 'never', 'auto']),
        'model_dir': clv_validate_path('clv_model_dir', var('clv_model_dir', 'onnx')),
        'keep_models': clv_validate_int('clv_keep_models', var('clv_keep_models', 5), 1, 1000),
        'seed': clv_validate_int('clv_seed', var('clv_seed', 42), 0, 2147483647),
        'ensemble_size': clv_validate_int('clv_ensemble_size', var('clv_ensemble_size', 0), 0, 10),
        'max_train_rows': clv_validate_int('clv_max_train_rows', var('clv_max_train_rows', 200000), 100, 100000000),
        'max_validation_rows': clv_validate_int(
            'clv_max_validation_rows', var('clv_max_validation_rows', 200000), 100, 100000000
        ),
        'explanations': clv_validate_bool('clv_explanations', var('clv_explanations', true)),
        'scoring_engine': clv_scoring_engine(),
        'timestamp_format': clv_validate_timestamp_format(
            'clv_timestamp_format', var('clv_timestamp_format', '')
        ),
        'time_zone': time_zone,
        'csv_encoding': clv_validate_csv_encoding('clv_csv_encoding', var('clv_csv_encoding', 'auto')),
        'decimal_separator': clv_decimal_separator(),
        'export_path': clv_validate_export_path(
            'clv_export_path', var('clv_export_path', 'exports/clv_predictions.parquet')
        ),
        'bi_database_path': clv_validate_bi_database_path(
            'clv_bi_database_path', var('clv_bi_database_path', '')
        ),
        'report_path': clv_validate_report_path(
            'clv_report_path', var('clv_report_path', 'reports/clv_report.html')
        ),
        'currency': clv_validate_currency('clv_currency', var('clv_currency', '')),
        'segment_bounds': clv_validate_segment_bounds('clv_segment_bounds', var('clv_segment_bounds', {})),
        'windows': [7, 30, 90, 180, 365],
        'channels': ['orders', 'revenue', 'active_days'],
        'exclusion_reasons': ['missing_customer_id', 'invalid_timestamp', 'invalid_amount',
                              'duplicate_transaction', 'after_as_of_date'],
        'extra_features': extra_features,
        'load_sample': clv_validate_choice('clv_load_sample', var('clv_load_sample', 'auto') | string | lower,
                                           ['auto', 'true', 'false']),
        'missing_customer_ids': clv_validate_missing_customer_ids(
            'clv_missing_customer_ids', var('clv_missing_customer_ids', clv_default_missing_customer_ids())
        ),
    } %}
    {#- the training cutoffs of int_clv__cutoffs (cutoff_index 0 is the as-of date) -#}
    {% set training_offsets = clv_training_offsets(settings) %}
    {% do settings.update({'training_offsets': training_offsets,
                           'training_cutoff_indexes': range(1, training_offsets | length + 1) | list}) %}
    {% do settings.update({'feature_groups': clv_feature_groups(settings)}) %}
    {% set static_features = [] %}
    {% for group in settings.feature_groups.values() %}
        {% do static_features.extend(group) %}
    {% endfor %}
    {#- an extra feature named like a column the project computes would be two columns of
        one name in the example tables (DuckDB renames one: frequency_1) -#}
    {% for name in extra_features %}
        {% if static_features.count(name) > 1 %}
            {{ clv_fail('clv_extra_features', "'" ~ name ~ "' is the name of a feature clv computes; "
                                              ~ "rename the column of clv_customers (for example "
                                              ~ "customer_" ~ name ~ ")") }}
        {% endif %}
    {% endfor %}
    {% do settings.update({'static_features': static_features | sort}) %}
    {{ return(settings) }}
{% endmacro %}


{#-
    The static features the network reads, by group: every numeric column of the example
    tables that is a model input is declared here (the Python side adds the BTYD outputs and
    the activity sequence). A numeric column that is not declared stops training with an error,
    so no column becomes a model input by accident. Users add their own on purpose through
    clv_extra_features: numeric columns of clv_customers. The groups are also the units of
    clv_feature_importance and clv_prediction_explanations (with the Python side's btyd and
    activity_sequence groups); clv_run_settings carries them to Python as JSON, in this order.
-#}
{% macro clv_feature_groups(settings) %}
    {% set windows = [] %}
    {% for window in settings.windows %}
        {% do windows.extend(['orders_last_' ~ window ~ 'd', 'revenue_last_' ~ window ~ 'd',
                              'active_days_last_' ~ window ~ 'd']) %}
    {% endfor %}
    {{ return({
        'recency_frequency': ['frequency', 'recency_days', 't_days', 'purchase_days', 'orders_total',
                              'days_since_last_purchase', 'interpurchase_days_mean',
                              'interpurchase_days_stddev', 'interpurchase_days_max'],
        'monetary': ['monetary_value', 'revenue_total', 'gross_revenue_total', 'first_order_value',
                     'last_order_value', 'avg_order_value', 'revenue_last_horizon'],
        'trailing_windows': windows,
        'trends': ['orders_ratio_90d_365d', 'revenue_ratio_90d_365d'],
        'refunds': ['refunds_total', 'refund_amount_total'],
        'categories': ['distinct_categories'],
        'attributes': ['days_since_signup'] + settings.extra_features,
        'events': ['events_total', 'events_last_30d', 'events_last_90d',
                   'add_to_cart_events_last_30d', 'add_to_cart_events_last_90d'],
    }) }}
{% endmacro %}


{#-
    The training cutoffs, as days before the as-of date, in cutoff_index order (from 1): the
    clv_training_cutoffs windows as_of - horizon - k * spacing, k = 0, 1, ... (k = 0 the
    validation cutoff), and, with a horizon under a year and more than one of them, the same
    windows a year back that a seasonal spend level is carried from and backtested on
    (src/clv/level.py, rules 2 and 3): the window a year before the as-of date, the window a
    year before each of the latest clv_seasonal_backtests training windows (backtests of the
    carry in the season just past), and the window two years before the as-of date (a backtest
    of the carry in the season the horizon holds, a year earlier). Each is a dict:
    days_before, and year_back. int_clv__cutoffs keeps a year-back cutoff only when the history
    holds two years and no regular cutoff it keeps lies within half a spacing of it, so a
    shorter history trains on the same cutoffs as without them.
-#}
{% macro clv_training_offsets(settings) %}
    {% set horizon = settings.horizon_days %}
    {% set spacing = settings.cutoff_spacing_days %}
    {% set offsets = [] %}
    {% for k in range(settings.training_cutoffs) %}
        {% do offsets.append({'days_before': horizon + k * spacing, 'year_back': false}) %}
    {% endfor %}
    {% if horizon < 365 and settings.training_cutoffs > 1 and settings.seasonal_backtests > 0 %}
        {% do offsets.append({'days_before': 365, 'year_back': true}) %}
        {% for k in range([settings.seasonal_backtests, settings.training_cutoffs] | min) %}
            {% do offsets.append({'days_before': 365 + horizon + k * spacing, 'year_back': true}) %}
        {% endfor %}
        {% do offsets.append({'days_before': 730, 'year_back': true}) %}
    {% endif %}
    {{ return(offsets) }}
{% endmacro %}


{% macro clv_fail(var_name, message) %}
    {{ exceptions.raise_compiler_error("Invalid value for var '" ~ var_name ~ "': " ~ message) }}
{% endmacro %}


{% macro clv_validate_int(var_name, value, minimum, maximum) %}
    {% if value is boolean or value is none %}
        {{ clv_fail(var_name, "expected a whole number, got " ~ (value | string)) }}
    {% endif %}
    {% set text = value | string | trim %}
    {% if not modules.re.fullmatch('-?[0-9]+', text) %}
        {{ clv_fail(var_name, "expected a whole number, got '" ~ text ~ "'") }}
    {% endif %}
    {% set number = text | int %}
    {% if number < minimum or number > maximum %}
        {{ clv_fail(var_name, number ~ " is out of range; allowed " ~ minimum ~ " to " ~ maximum) }}
    {% endif %}
    {{ return(number) }}
{% endmacro %}


{#-
    The bounds of the segment rules (clv_segment_bounds()): the defaults, with the keys the var
    sets in their place. Whole numbers of deciles and days, probabilities from 0 to 1 with the
    at_risk bound at most the active one.
-#}
{% macro clv_validate_segment_bounds(var_name, value) %}
    {% set defaults = {'high_value_deciles': 2, 'new_days': 90, 'active_probability': 0.5,
                       'at_risk_probability': 0.2} %}
    {% if value is none or (value is string and value | trim == '') %}
        {{ return(defaults) }}
    {% endif %}
    {% if value is not mapping %}
        {{ clv_fail(var_name, "expected a mapping such as {active_probability: 0.3}, got " ~ (value | string)) }}
    {% endif %}
    {% for key in value if key not in defaults %}
        {{ clv_fail(var_name, "unknown key '" ~ key ~ "'; allowed: " ~ (defaults.keys() | list | join(', '))) }}
    {% endfor %}
    {% set bounds = {
        'high_value_deciles': clv_validate_int(var_name ~ '.high_value_deciles',
                                               value.get('high_value_deciles', defaults.high_value_deciles), 0, 10),
        'new_days': clv_validate_int(var_name ~ '.new_days', value.get('new_days', defaults.new_days), 0, 3650),
    } %}
    {% for key in ['active_probability', 'at_risk_probability'] %}
        {% set given = value.get(key, defaults[key]) %}
        {#- a number, or text that writes one (an env_var gives text) -#}
        {% set text = given | string | trim %}
        {% if given is boolean or given is none
              or not modules.re.fullmatch('[0-9]*[.]?[0-9]+([eE]-?[0-9]+)?', text)
              or (text | float) > 1 %}
            {{ clv_fail(var_name ~ '.' ~ key, "expected a probability from 0 to 1, got '" ~ text ~ "'") }}
        {% endif %}
        {% do bounds.update({key: text | float}) %}
    {% endfor %}
    {% if bounds.at_risk_probability > bounds.active_probability %}
        {{ clv_fail(var_name, "at_risk_probability " ~ bounds.at_risk_probability ~ " is above active_probability "
                              ~ bounds.active_probability ~ ": a customer at risk is one less likely to buy than an active one") }}
    {% endif %}
    {{ return(bounds) }}
{% endmacro %}


{% macro clv_validate_bool(var_name, value) %}
    {% if value is boolean %}
        {{ return(value) }}
    {% endif %}
    {% set text = (value if value is not none else '') | string | trim | lower %}
    {% if text not in ['true', 'false'] %}
        {{ clv_fail(var_name, "expected true or false, got '" ~ text ~ "'") }}
    {% endif %}
    {{ return(text == 'true') }}
{% endmacro %}


{% macro clv_validate_date(var_name, value) %}
    {% if value is none or (value | string | trim) == '' %}
        {{ return(none) }}
    {% endif %}
    {% set text = value | string | trim %}
    {% if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) %}
        {{ clv_fail(var_name, "expected a date as YYYY-MM-DD, got '" ~ text ~ "'") }}
    {% endif %}
    {% set parts = text.split('-') %}
    {% set year, month, day = parts[0] | int, parts[1] | int, parts[2] | int %}
    {% set days_in_month = [31, 29 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 28,
                            31, 30, 31, 30, 31, 31, 30, 31, 30, 31] %}
    {% if month < 1 or month > 12 or day < 1 or day > days_in_month[month - 1] or year < 1900 %}
        {{ clv_fail(var_name, "'" ~ text ~ "' is not a valid calendar date") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{#- A date (clv_validate_date) that has happened: not after today in `time_zone` (clv_today); or
    'yesterday' (in `time_zone`), for a scheduled job whose vars stay the same every day. -#}
{% macro clv_validate_as_of_date(var_name, value, time_zone) %}
    {% set today = clv_today(time_zone) %}
    {% if (value | string | trim | lower) == 'yesterday' %}
        {{ return((modules.datetime.date.fromisoformat(today) - modules.datetime.timedelta(days=1)).isoformat()) }}
    {% endif %}
    {% set text = clv_validate_date(var_name, value) %}
    {% if text and text > today %}
        {{ clv_fail(var_name, text ~ " is after today (" ~ today ~ " in " ~ time_zone ~ "): the as-of date must"
                              ~ " have happened; leave it out to score as of the last valid transaction date before today") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{% macro clv_validate_choice(var_name, value, choices) %}
    {% set text = value | string | trim %}
    {% if text not in choices %}
        {{ clv_fail(var_name, "expected one of " ~ (choices | join(', ')) ~ ", got '" ~ text ~ "'") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{#- The decimal separator of numbers written as text (var clv_decimal_separator): '.' or ','. -#}
{% macro clv_decimal_separator() %}
    {{ return(clv_validate_choice('clv_decimal_separator', var('clv_decimal_separator', '.'), ['.', ','])) }}
{% endmacro %}


{#- A CSV input's encoding: auto (read from the files' bytes, clv_csv_encoding) or one DuckDB's
    reader knows without an extension, under its common spellings. -#}
{% macro clv_validate_csv_encoding(var_name, value) %}
    {% set text = (value or 'auto') | string | trim | lower | replace('_', '-') %}
    {% set aliases = {'utf8': 'utf-8', 'latin1': 'latin-1', 'iso-8859-1': 'latin-1',
                      'iso8859-1': 'latin-1', 'utf16': 'utf-16'} %}
    {{ return(clv_validate_choice(var_name, aliases.get(text, text), ['auto', 'utf-8', 'latin-1', 'utf-16'])) }}
{% endmacro %}


{% macro clv_validate_text(var_name, value) %}
    {% set text = (value or '') | string %}
    {% if "'" in text or ';' in text or '--' in text or '/*' in text %}
        {{ clv_fail(var_name, "must not contain quotes, ';' or SQL comments") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{#-
    A strptime format for the transaction timestamps (empty: ISO text). Each engine checks the
    directives it can read: DuckDB's try_strptime takes the list below; PostgreSQL and Spark
    translate a smaller list (clv_timestamp_format_patterns), which stops on any other.
-#}
{% macro clv_validate_timestamp_format(var_name, value) %}
    {% set text = clv_validate_text(var_name, value) %}
    {{ return(adapter.dispatch('clv_validate_timestamp_format', 'clv')(var_name, text)) }}
{% endmacro %}

{% macro default__clv_validate_timestamp_format(var_name, text) %}
    {% if text %}
        {% do clv_timestamp_format_patterns(text) %}
    {% endif %}
    {{ return(text) }}
{% endmacro %}

{% macro duckdb__clv_validate_timestamp_format(var_name, text) %}
    {% set plain = 'aAbBcdfgGhHIjmMnpSTuUVwWxXyYzZ%' %}
    {% set dashed = 'dHIjmMSy' %}
    {% for directive in modules.re.findall('%(-?.?)', text) %}
        {% set letter = directive[-1:] %}
        {% if directive == '' or (directive | length == 2 and (letter not in dashed or letter == ''))
              or (directive | length == 1 and letter not in plain) %}
            {{ clv_fail(var_name, "the directive %" ~ directive ~ " is not one DuckDB's strptime reads; supported: "
                                  ~ '%' ~ (plain | list | join(' %')) ~ " and %-" ~ (dashed | list | join(' %-'))
                                  ~ " (for example '%d/%m/%Y %H:%M')") }}
        {% endif %}
    {% endfor %}
    {{ return(text) }}
{% endmacro %}


{#-
    A time zone name from the IANA database (pytz's list, which dbt ships), spelled as listed:
    every engine knows these names, and Spark's are case-sensitive. Empty means UTC. Fixed
    offsets such as +05:00 are not zones (they know no daylight saving) and are refused.
-#}
{% macro clv_validate_time_zone(var_name, value) %}
    {% set text = clv_validate_text(var_name, value) | trim %}
    {% if text == '' %}
        {{ return('UTC') }}
    {% endif %}
    {% if text not in modules.pytz.all_timezones_set %}
        {% set spelled = [] %}
        {% for name in modules.pytz.all_timezones if name | lower == text | lower %}
            {% do spelled.append(name) %}
        {% endfor %}
        {{ clv_fail(var_name, "'" ~ text ~ "' is not a time zone name; expected an IANA name such as UTC or"
                              ~ " America/New_York" ~ (" (did you mean '" ~ spelled[0] ~ "'?)" if spelled else '')) }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{% macro clv_validate_path(var_name, value) %}
    {% set text = clv_validate_text(var_name, value) | trim %}
    {% if text == '' %}
        {{ clv_fail(var_name, "must not be empty") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{% macro clv_validate_names(var_name, value) %}
    {% if value is none or (value is string and value | trim == '') %}
        {{ return([]) }}
    {% endif %}
    {% set names = [value] if value is string else value %}
    {% if names is mapping or names is not iterable %}
        {{ clv_fail(var_name, "expected a list of column names, got " ~ (value | string)) }}
    {% endif %}
    {% set clean = [] %}
    {% for name in names %}
        {% set text = name | string | trim | lower %}
        {% if not modules.re.fullmatch('[a-z_][a-z0-9_]*', text) %}
            {{ clv_fail(var_name, "'" ~ text ~ "' is not a plain column name") }}
        {% endif %}
        {% if text in ['customer_id', 'signup_date', 'country', 'age_band', 'cutoff_date',
                       'cutoff_role', 'first_purchase_date', 'last_purchase_date']
              or text.startswith('seq_') or text.startswith('label_') or text.startswith('btyd_') %}
            {{ clv_fail(var_name, "'" ~ text ~ "' is a reserved column name") }}
        {% endif %}
        {% if text in clv_reserved_words() %}
            {{ clv_fail(var_name, "'" ~ text ~ "' is an SQL keyword; load the column under another name") }}
        {% endif %}
        {% if text in clean %}
            {{ clv_fail(var_name, "'" ~ text ~ "' is listed twice") }}
        {% endif %}
        {% do clean.append(text) %}
    {% endfor %}
    {{ return(clean) }}
{% endmacro %}


{#- Words that PostgreSQL, DuckDB or Spark SQL reserve, which a plain column name cannot be. -#}
{% macro clv_reserved_words() %}
    {{ return(['all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric',
               'between', 'both', 'by', 'case', 'cast', 'check', 'collate', 'column', 'constraint',
               'create', 'cross', 'current_date', 'current_time', 'current_timestamp',
               'current_user', 'default', 'deferrable', 'desc', 'distinct', 'do', 'else', 'end',
               'except', 'false', 'fetch', 'for', 'foreign', 'from', 'full', 'grant', 'group',
               'having', 'in', 'initially', 'inner', 'intersect', 'interval', 'into', 'is',
               'join', 'lateral', 'leading', 'left', 'like', 'limit', 'localtime',
               'localtimestamp', 'natural', 'not', 'null', 'offset', 'on', 'only', 'or', 'order',
               'outer', 'placing', 'primary', 'qualify', 'references', 'returning', 'right',
               'select', 'session_user', 'some', 'symmetric', 'table', 'then', 'to', 'trailing',
               'true', 'union', 'unique', 'user', 'using', 'variadic', 'when', 'where', 'window',
               'with']) }}
{% endmacro %}


{% macro clv_validate_export_path(var_name, value) %}
    {% set text = clv_validate_path(var_name, value) %}
    {% if not text.lower().endswith('.parquet') %}
        {{ clv_fail(var_name, "expected a file name ending in .parquet, got '" ~ text ~ "'") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{#- Empty (the default) means no BI database copy; otherwise a file name ending in .duckdb. -#}
{% macro clv_validate_bi_database_path(var_name, value) %}
    {% set text = clv_validate_text(var_name, value) | trim %}
    {% if text != '' and not text.lower().endswith('.duckdb') %}
        {{ clv_fail(var_name, "expected empty (no copy) or a file name ending in .duckdb, got '" ~ text ~ "'") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{#- Empty means no report; otherwise a file name ending in .html or .htm (the build's last step writes it). -#}
{% macro clv_validate_report_path(var_name, value) %}
    {% set text = clv_validate_text(var_name, value) | trim %}
    {% if text != '' and not text.lower().endswith(('.html', '.htm')) %}
        {{ clv_fail(var_name, "expected empty (no report) or a file name ending in .html or .htm, "
                              ~ "got '" ~ text ~ "'") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{#- The report's name for the unit of the amounts (EUR, £, US$): text of at most 12 characters;
    empty (the default) reads "currency units". The report escapes it. -#}
{% macro clv_validate_currency(var_name, value) %}
    {% if value is not string %}
        {{ clv_fail(var_name, "expected a currency's name as text (EUR, £), got " ~ value) }}
    {% endif %}
    {% set text = value | trim %}
    {% if text | length > 12 or modules.re.search('[\\x00-\\x1f]', text) %}
        {{ clv_fail(var_name, "expected a currency's name of at most 12 characters on one line "
                              ~ "(EUR, £), got '" ~ text ~ "'") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{#-
    clv_scoring_engine: onnxruntime (the network in onnxruntime, next to the warehouse; on Spark
    on its executors) or sql (the model compiled into one query the warehouse runs:
    src/clv/sql_scoring). Empty, the default: sql on PostgreSQL, where scoring then stays inside
    the database, onnxruntime on DuckDB and Spark (where sql runs the query in stages, slowly).
-#}
{% macro clv_scoring_engine() %}
    {% set value = var('clv_scoring_engine', '') or '' %}
    {% if (value | string | trim) == '' %}
        {{ return('sql' if target.type == 'postgres' else 'onnxruntime') }}
    {% endif %}
    {{ return(clv_validate_choice('clv_scoring_engine', value, ['onnxruntime', 'sql'])) }}
{% endmacro %}


{#-
    True when dbt runs the compiled scoring query as the SQL model int_clv__scores
    (clv_scoring_engine sql on an engine that plans it whole: not Spark, where the Python
    scoring step runs it in stages, see clv.warehouse.SparkWarehouse.compute). Decides at parse
    time how int_clv__scores is materialized; what it runs comes from int_clv__scoring_plan.
-#}
{% macro clv_scores_in_sql_model() %}
    {{ return(clv_scoring_engine() == 'sql' and target.type != 'spark') }}
{% endmacro %}
