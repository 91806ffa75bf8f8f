{#-
    The p10 or p90 of a total read as a lognormal with the total's expected value `total` and a
    log-scale variance `log_variance`: total * exp(-s^2 / 2 -/+ 1.2816 s). 0 when the total is
    not positive, or when the chance that nobody buys (`none_buys`) is at least 10% (p10) or 90%
    (p90): the total is then 0 at that percentile. Null otherwise when `log_variance` is null
    (a model without a level_log_sd). Shared by clv_segment_summary and
    clv_total_summary, which say where the variance comes from.
-#}
{% macro clv_total_quantile(total, log_variance, none_buys, upper) %}
    case
        when {{ total }} <= 0 or {{ none_buys }} >= {{ 0.9 if upper else 0.1 }} then 0
        {# least and greatest skip a null on every engine: without a variance, no quantile #}
        when {{ log_variance }} is null then null
        else {{ total }} * exp(
            {{ 'least' if upper else 'greatest' }}(
                -({{ log_variance }}) / 2 {{ '+' if upper else '-' }} 1.2815515655446004 * sqrt({{ log_variance }}),
                {{ 700 if upper else -700 }}
            )
        )
    end
{%- endmacro %}


{#- The log-scale variance of a total from the customers' own randomness: log(1 + the sum of
    their variances / total^2), 0 for a total that is not positive. -#}
{% macro clv_customers_log_variance(total, variance) %}
    case
        when {{ total }} > 0
            then ln(1 + {{ variance }} / ({{ total }} * {{ total }}))
        else 0
    end
{%- endmacro %}


{#- The sums over a group of clv_predictions (joined to int_clv__scores as `scores`) that a
    total's range reads, shared by clv_segment_summary and clv_total_summary: the customers,
    their total and its variance, the log of the chance that nobody buys, and the means. -#}
{% macro clv_customers_totals() %}
        count(*) as customers,
        sum(predictions.predicted_clv) as total_predicted_clv,
        sum(coalesce(scores.predicted_clv_variance, 0)) as total_variance,
        -- log of the chance that nobody buys
        sum(ln(greatest(1 - predictions.purchase_probability, 1e-300))) as log_none_buys,
        avg(predictions.predicted_clv) as mean_predicted_clv,
        avg(predictions.purchase_probability) as mean_purchase_probability
{%- endmacro %}
