{#-
    Returns one row per exclusion reason with rows to report, so `dbt build` reports how many
    source rows were left out and why. Configured with severity warn (data problems are
    reported, not fatal) and fail_calc `coalesce(sum(rows), 0)`, so the count dbt shows is the
    number of rows left out (models/4_marts/_marts__models.yml).
    A row dated after the as-of date but not after today (in clv_time_zone) is no problem: the
    part of today a daily load holds, or the holdout of a backtest at a past as-of date. It is
    counted in clv_data_quality, not reported here; a row dated after today (a clock error, a
    mistyped year) is.
-#}
{% test clv_no_excluded_rows(model) %}
{%- set settings = clv_settings() -%}
{#- dbt selects the test when either table it reads is selected: a build of the source rows
    alone has no clv_data_quality to read yet -#}
{%- if execute and load_relation(model) is none %}

select
    cast(null as {{ dbt.type_string() }}) as reason,
    0 as rows,
    cast(null as {{ dbt.type_string() }}) as example_value
where 1 = 0

{%- else %}

with

dated_after_today as (

    select
        count(*) as rows,
        min(cast(transacted_at as {{ dbt.type_string() }})) as example_value

    from {{ ref('int_clv__transactions_classified') }}
    where exclusion_reason = 'after_as_of_date'
        and cast(transacted_at as date) > {{ clv_current_date(settings.time_zone) }}

),

reported as (

    select
        reason,
        rows,
        example_value
    from {{ model }}
    where reason != 'after_as_of_date'

    union all

    select
        'after_as_of_date' as reason,
        rows,
        example_value
    from dated_after_today

)

select * from reported
where rows > 0

{%- endif %}

{% endtest %}
