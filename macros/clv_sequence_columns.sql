{#- Names of the sequence columns, channel by channel, lag 01 (most recent) first. -#}
{% macro clv_sequence_columns() %}
    {% set settings = clv_settings() %}
    {% set columns = [] %}
    {% for channel in settings.channels %}
        {% for lag in range(1, settings.sequence_periods + 1) %}
            {% do columns.append('seq_' ~ channel ~ '_lag_' ~ ('%02d' % lag)) %}
        {% endfor %}
    {% endfor %}
    {{ return(columns) }}
{% endmacro %}
