{#-
    Reads and validates every clv_* var before any SQL runs.
    Returns a dict of clean values; an invalid var stops compilation with an error naming it.
-#}
{% macro clv_settings() %}
    {% set horizon_days = clv_validate_int('clv_horizon_days', var('clv_horizon_days', 365), 1, 3650) %}
    {#- Default spacing: a quarter of the horizon (at least a week), so short histories still
        yield several cutoffs and long ones cover the seasons. -#}
    {% set spacing = var('clv_cutoff_spacing_days', '') %}
    {% set spacing = [7, ((horizon_days / 4) | round | int)] | max
                     if (spacing | string | trim) == '' else spacing %}
    {% set settings = {
        'as_of_date': clv_validate_date('clv_as_of_date', var('clv_as_of_date', '')),
        'horizon_days': horizon_days,
        'training_cutoffs': clv_validate_int('clv_training_cutoffs', var('clv_training_cutoffs', 8), 1, 52),
        'cutoff_spacing_days': clv_validate_int('clv_cutoff_spacing_days', spacing, 1, 3650),
        'period_days': clv_validate_int('clv_period_days', var('clv_period_days', 30), 1, 366),
        'sequence_periods': clv_validate_int('clv_sequence_periods', var('clv_sequence_periods', 12), 1, 104),
        'retrain': clv_validate_choice('clv_retrain', var('clv_retrain', 'auto'), ['always', 'never', 'auto']),
        'model_dir': clv_validate_path('clv_model_dir', var('clv_model_dir', 'onnx')),
        'seed': clv_validate_int('clv_seed', var('clv_seed', 42), 0, 2147483647),
        'timestamp_format': clv_validate_text('clv_timestamp_format', var('clv_timestamp_format', '')),
        'windows': [7, 30, 90, 180, 365],
        'channels': ['orders', 'revenue', 'active_days'],
    } %}
    {{ return(settings) }}
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


{% macro clv_validate_choice(var_name, value, choices) %}
    {% set text = value | string | trim %}
    {% if text not in choices %}
        {{ clv_fail(var_name, "expected one of " ~ (choices | join(', ')) ~ ", got '" ~ text ~ "'") }}
    {% endif %}
    {{ return(text) }}
{% endmacro %}


{% macro clv_validate_text(var_name, value) %}
    {% set text = (value or '') | string %}
    {% if "'" in text or ';' in text or '--' in text or '/*' in text %}
        {{ clv_fail(var_name, "must not contain quotes, ';' or SQL comments") }}
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
