{#-
    The bounds of the segment rules, in one place: the top deciles that are high_value, the
    days of history under which a customer is new, and the purchase probabilities from which a
    customer is active, and at_risk (under that: dormant). clv_predictions applies them,
    clv_prediction_changes flags the customers who crossed them; the README's and
    models/docs.md's tables state them (tests/test_docs.py compares).
-#}
{% macro clv_segment_bounds() %}
    {{ return({'high_value_deciles': 2, 'new_days': 90, 'active_probability': 0.5,
               'at_risk_probability': 0.2}) }}
{% endmacro %}
