{#-
    The customer ids that mean "no customer" (var clv_missing_customer_ids): exports write
    `(blank)`, `null`, `NaN` or `-` where a shop recorded no customer. Without this list such
    a value would become one customer holding every anonymous order. Returns the values
    trimmed and lower-cased, the empty id always among them; a value with a quote or a
    backslash is refused.
-#}
{% macro clv_default_missing_customer_ids() %}
    {{ return(['(blank)', '(null)', 'null', 'none', 'nan', 'n/a', 'na', '#n/a', '-']) }}
{% endmacro %}


{% macro clv_validate_missing_customer_ids(var_name, value) %}
    {% if value is none or (value is string and value | trim == '') %}
        {% set values = [] %}
    {% elif value is string or value is number %}
        {% set values = [value] %}
    {% elif value is mapping or value is not iterable or value is boolean %}
        {{ clv_fail(var_name, "expected a list of values such as ['(blank)', 'null', '-'], got "
                              ~ (value | string)) }}
    {% else %}
        {% set values = value %}
    {% endif %}
    {% set clean = [''] %}
    {% for item in values %}
        {% if item is mapping or (item is iterable and item is not string) or item is boolean %}
            {{ clv_fail(var_name, "expected text values, got " ~ (item | string)) }}
        {% endif %}
        {% set text = (item if item is not none else '') | string | trim | lower %}
        {% if "'" in text or '\\' in text %}
            {{ clv_fail(var_name, "the value " ~ text ~ " must not contain a quote or a backslash") }}
        {% endif %}
        {% if text not in clean %}
            {% do clean.append(text) %}
        {% endif %}
    {% endfor %}
    {{ return(clean) }}
{% endmacro %}
