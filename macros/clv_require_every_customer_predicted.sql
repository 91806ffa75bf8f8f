{#-
    Post-hook of clv_predictions: every customer of clv_scoring_examples has exactly one row,
    and no one else, so no join between the scores and the table users read drops or adds a
    customer. A failure stops the build before clv_predictions_history appends the run, with
    one line giving the counts and an example customer. Renders no SQL. A post-hook rather than
    a data test: a test that also reads clv_scoring_examples would be selected (and fail on a
    fresh database) whenever a build selects the features alone.
    The scoring plan must also be of the as-of date the table labels the scores with: a
    selection that rebuilt the cutoffs and features at another date (`dbt run -s
    +clv_scoring_examples` with another clv_as_of_date) but not the scoring steps would
    otherwise publish one date's scores under the other's date. (A selection that rebuilt the
    plan but not the scores after it is not caught: the scores carry no date.) The plan is found
    through the graph, not ref(): a ref would make clv_predictions' unit tests need it as an
    input, and the plan is upstream of the scores anyway. And with clv_as_of_date set to a date,
    the scores must be of that date: a selection that rebuilt none of the steps before
    clv_predictions (`dbt build -s clv_predictions+` with a new clv_as_of_date) would otherwise
    publish the earlier date's scores again, as if the new date had been scored. `yesterday`
    too: it is the day before the one the invocation started (clv_today), the same for every
    model of a build that runs past midnight.
-#}
{% macro clv_require_every_customer_predicted(predictions) %}
    {% if not execute %}
        {{ return('') }}
    {% endif %}
    {% set node = clv_model_node('int_clv__scoring_plan') %}
    {% set plan = none if node is none else adapter.get_relation(
        database=node.database, schema=node.schema, identifier=node.alias or node.name) %}
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
            (select min(as_of_date) from {{ predictions }}) as labelled_date,
            {% if plan is not none -%}
            (select min(as_of_date) from {{ plan }}) as scored_date,
            {%- else -%}
            cast(null as {{ dbt.type_string() }}) as scored_date,
            {%- endif %}
            coalesce(sum(is_missing), 0) as missing,
            coalesce(sum(is_extra), 0) as extra,
            (select count(*) from predicted) - (select count(distinct customer_id) from predicted)
                as repeated,
            min(case when is_missing + is_extra > 0 then customer_id end) as example

        from mismatches
    {% endset %}
    {% set row = run_query(check_sql).rows[0] %}
    {% set labelled, scored = (row['labelled_date'] | string)[:10], (row['scored_date'] | string)[:10] %}
    {% if row['labelled_date'] is not none and row['scored_date'] is not none and labelled != scored %}
        {{ exceptions.raise_compiler_error(
            "clv_predictions would label the scores of " ~ scored ~ " as of " ~ labelled ~ ": the "
            ~ "cutoffs and features were built at " ~ labelled ~ " but the scoring steps were not; "
            ~ "build them too (--select int_clv__cutoffs+, or a full dbt build)"
        ) }}
    {% endif %}
    {% set requested = clv_settings().as_of_date %}
    {% if requested and row['labelled_date'] is not none and labelled != requested %}
        {{ exceptions.raise_compiler_error(
            "clv_as_of_date is " ~ requested ~ ", but the scores clv_predictions would publish are "
            ~ "of " ~ labelled ~ ": the steps before clv_predictions were not built with the var; "
            ~ "build them too (--select int_clv__cutoffs+, or a full dbt build)"
        ) }}
    {% endif %}
    {% if (row['missing'] | int) + (row['extra'] | int) + (row['repeated'] | int) > 0 %}
        {{ exceptions.raise_compiler_error(
            "clv_predictions does not hold one row per scored customer: " ~ (row['missing'] | int)
            ~ " of clv_scoring_examples missing, " ~ (row['extra'] | int) ~ " not in it, "
            ~ (row['repeated'] | int) ~ " repeated (for example customer " ~ row['example'] ~ ")"
        ) }}
    {% endif %}
    {{ return('') }}
{% endmacro %}
