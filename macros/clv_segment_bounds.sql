{#-
    The bounds of the segment rules, in one place: the top deciles that are high_value, the
    days of history under which a customer is new, and the purchase probabilities from which a
    customer is active, and at_risk (under that: dormant). Var clv_segment_bounds sets any of
    them (validated with the other vars, clv_validate_segment_bounds). clv_predictions applies
    them, clv_prediction_changes flags the customers who crossed them; the README's and
    models/docs.md's tables state the defaults (tests/test_docs.py compares).
-#}
{% macro clv_segment_bounds() %}
    {{ return(clv_settings().segment_bounds) }}
{% endmacro %}
