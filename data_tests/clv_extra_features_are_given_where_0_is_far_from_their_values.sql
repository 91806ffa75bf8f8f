{#-
    "WARN n clv_extra_features_are_given_where_0_is_far_from_their_values": n customers scored
    at the as-of date have no value for a feature of clv_extra_features (no row in
    clv_customers, an empty cell, text that is not a number, infinity), and 0 lies more than
    four standard deviations from the feature's mean over the customers who have one, as the
    network sees its inputs (sign(x) * ln(1 + |x|), then standardised). The network reads a
    missing value as 0: for such a feature, outside everything it was trained on (a score near
    5 that varies by a third of itself, read as 0), and what it predicts there has no bound (one
    customer predicted thousands of times the others). Fill the value in clv_customers (the
    feature's median, for example). One row per customer and feature, with the feature's mean
    and standard deviation on that scale.
-#}
{{ config(severity='warn') }}
-- depends_on: {{ ref('clv_scoring_examples') }}
{%- set extra_features = clv_settings().extra_features %}
{%- if not extra_features or (execute and load_relation(ref('clv_scoring_examples')) is none) %}

select
    cast(null as {{ dbt.type_string() }}) as feature,
    cast(null as {{ dbt.type_string() }}) as customer_id
where 1 = 0

{%- else %}

with

examples as (

    select * from {{ ref('clv_scoring_examples') }}

),

{%- for name in extra_features %}

{%- set scaled = "case when " ~ clv_is_finite(name) ~ " then sign(" ~ name ~ ") * ln(1 + abs("
                 ~ name ~ ")) end" %}

range_{{ loop.index }} as (

    select
        avg({{ scaled }}) as mean_value,
        stddev_pop({{ scaled }}) as standard_deviation
    from examples

),
{%- endfor %}

missing as (
    {%- for name in extra_features %}

    select
        '{{ name }}' as feature,
        examples.customer_id,
        range_{{ loop.index }}.mean_value,
        range_{{ loop.index }}.standard_deviation
    from examples
    cross join range_{{ loop.index }}
    where
        not coalesce({{ clv_is_finite('examples.' ~ name) }}, false)
        and abs(range_{{ loop.index }}.mean_value) > 4 * range_{{ loop.index }}.standard_deviation
    {{ 'union all' if not loop.last }}
    {%- endfor %}

)

select * from missing

{%- endif %}
