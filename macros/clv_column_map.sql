{#-
    The user's column (or SQL expression) for each input-contract name, from var `clv_columns`.
    Required names not given default to the contract name itself. Optional names not given
    are used when the source has a column of that name, and are null otherwise.
-#}
{% macro clv_column_map(source_sql) %}
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
    {% set source_columns = clv_source_column_names(source_sql) %}
    {% set columns = {} %}
    {% for key in required + optional %}
        {% if key in given %}
            {% set expression = given[key] | string | trim %}
            {% if expression == '' or ';' in expression or '--' in expression or '/*' in expression %}
                {{ clv_fail('clv_columns', "the expression for '" ~ key
                                           ~ "' must be non-empty and contain no ';' or SQL comments") }}
            {% endif %}
        {% elif key in required or key in source_columns %}
            {% set expression = key %}
        {% else %}
            {% set expression = none %}
        {% endif %}
        {% do columns.update({key: expression}) %}
    {% endfor %}
    {{ return(columns) }}
{% endmacro %}
