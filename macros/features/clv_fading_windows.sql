{#-
    The sum of ``value`` over a trailing window of ``window`` days whose edge fades out instead
    of ending at once. ``days`` is the day's whole days before the cutoff (0: the cutoff day).

    A window with a hard edge counts a purchase fully until the day it leaves and not at all the
    day after, so on that day a customer who did nothing moves by a whole purchase. Here a day's
    weight, taken at its midpoint (``days`` + 0.5), is 1 up to (1 - ``fade``) windows back and
    falls linearly to 0 at (1 + ``fade``) windows back. The weights add up to the window's
    length, so a steady customer's count is what the hard window gives, and a purchase leaves
    over 2 * ``fade`` * ``window`` days.

    ``fade`` is a tenth of the window: the windows' edges carry information about when
    customers bought (a 90-day window beside a 91-day horizon), and a quarter of the window
    cost a real data set 0.013 of normalized Gini (bench/bench_accuracy.py), where a tenth
    kept it.
-#}
{% macro clv_window_sum(value, days, window, fade=0.1) %}
    {#- rounded, so the SQL reads 7.2, not 7.199999999999999 -#}
    {%- set start = ((1 - fade) * window - 0.5) | round(9) -%}
    {%- set stop = ((1 + fade) * window - 0.5) | round(9) -%}
    {%- set width = (2 * fade * window) | round(9) -%}
    {%- set full_until = (start | round(0, 'floor') | int) + 1 -%}
    {%- set ends_at = stop | round(0, 'ceil') | int -%}
    sum(
        case
            when {{ days }} < {{ full_until }} then {{ value }}
            when {{ days }} < {{ ends_at }}
                then {{ value }} * (cast({{ stop }} as {{ clv_type_double() }}) - {{ days }})
                / {{ width }}
            else 0
        end
    )
{%- endmacro %}
