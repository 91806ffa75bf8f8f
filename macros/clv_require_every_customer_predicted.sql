{#-
    Post-hook of clv_predictions: every customer of clv_scoring_examples has exactly one row,
    and no one else, so no join between the scores and the table users read drops or adds a
    customer. A failure stops the build before clv_predictions_history appends the run, with
    one line giving the counts and an example customer. Renders no SQL. A post-hook rather than
    a data test: a test that also reads clv_scoring_examples would be selected (and fail on a
    fresh database) whenever a build selects the features alone.
-#}
{% macro clv_require_every_customer_predicted(predictions) %}
    {% if not execute %}
        {{ return('') }}
    {% endif %}
    {% set check_sql %}
        with

        examples as (

            select customer_id from {{ ref('clv_scoring_examples') }}

        ),

        predicted as (

            select customer_id from {{ predictions }}

        ),

        mismatches as (

            select
                coalesce(examples.customer_id, predicted.customer_id) as customer_id,
                case when predicted.customer_id is null then 1 else 0 end as is_missing,
                case when examples.customer_id is null then 1 else 0 end as is_extra

            from examples
            full outer join predicted
                on examples.customer_id = predicted.customer_id

        )

        select
            coalesce(sum(is_missing), 0) as missing,
            coalesce(sum(is_extra), 0) as extra,
            (select count(*) from predicted) - (select count(distinct customer_id) from predicted)
                as repeated,
            min(case when is_missing + is_extra > 0 then customer_id end) as example

        from mismatches
    {% endset %}
    {% set row = run_query(check_sql).rows[0] %}
    {% if (row['missing'] | int) + (row['extra'] | int) + (row['repeated'] | int) > 0 %}
        {{ exceptions.raise_compiler_error(
            "clv_predictions does not hold one row per scored customer: " ~ (row['missing'] | int)
            ~ " of clv_scoring_examples missing, " ~ (row['extra'] | int) ~ " not in it, "
            ~ (row['repeated'] | int) ~ " repeated (for example customer " ~ row['example'] ~ ")"
        ) }}
    {% endif %}
    {{ return('') }}
{% endmacro %}
