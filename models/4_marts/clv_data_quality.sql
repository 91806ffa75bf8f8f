{%- set settings = clv_settings() -%}
{#- One row per exclusion reason, always all five, so a zero is a checked zero. The example is
    the first problem_value in binary order, or for after_as_of_date the earliest timestamp. -#}

with

classified_transactions as (

    select * from {{ ref('int_clv__transactions_classified') }}

),

reasons as (

    {% for reason in settings.exclusion_reasons -%}
    select
        '{{ reason }}' as reason,
        {{ loop.index }} as reason_order
    {% if not loop.last %}union all{% endif %}
    {% endfor %}

),

excluded as (

    select
        exclusion_reason as reason,
        count(*) as excluded_rows,
        min({{ clv_collate_binary(
            "case exclusion_reason
                when 'after_as_of_date' then cast(transacted_at as " ~ dbt.type_string() ~ ")
                else problem_value
            end"
        ) }}) as example_value

    from classified_transactions
    where exclusion_reason is not null
    group by exclusion_reason

),

totals as (

    select count(*) as source_rows from classified_transactions

),

as_of as (

    select as_of_date from {{ ref('int_clv__as_of_date') }}

),

final as (

    select
        reasons.reason,
        coalesce(excluded.excluded_rows, 0) as rows,
        totals.source_rows,
        excluded.example_value,
        cast(as_of.as_of_date as date) as as_of_date

    from reasons
    cross join totals
    left join as_of on 1 = 1
    left join excluded on reasons.reason = excluded.reason

)

select * from final
