{#-
    A sum of amounts that may cancel (purchases and refunds), with the float rounding of the
    cancellation set to 0: 0 when its size is at most 1e-11 of `turnover` (the sum of the
    amounts' absolute values it was added from; a sum of n doubles is off by at most about
    n * 1.1e-16 of it), else rounded to 6 decimals. 0.1 + 0.2 - 0.3 leaves 5.6e-17, and amounts
    of 1e10 leave 1e-6, which rounding alone keeps.
-#}
{% macro clv_cancelled_to_zero(expression, turnover) %}
    case
        when abs({{ expression }}) <= 1e-11 * ({{ turnover }}) then 0
        else {{ clv_round(expression, 6) }}
    end
{% endmacro %}
