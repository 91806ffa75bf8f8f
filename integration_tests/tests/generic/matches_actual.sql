{#-
    The expected table this test is attached to (a seed) equals `actual` restricted by
    `actual_where`: the same keys, equal values in `columns` (null equals null) and values
    within `tolerance` in `approximate_columns`. One failing row per key that is missing on
    either side or differs, naming the columns that differ.
-#}
{% test matches_actual(model, actual, key, columns=[], approximate_columns=[], tolerance=0.000001,
                       actual_where=none) %}

{%- set differences = [] -%}
{%- for column in columns -%}
    {%- do differences.append(
        "case when expected." ~ column ~ " is distinct from actual." ~ column ~ " then '" ~ column ~ "' end"
    ) -%}
{%- endfor -%}
{%- for column in approximate_columns -%}
    {%- do differences.append(
        "case when not coalesce(abs(expected." ~ column ~ " - actual." ~ column ~ ") <= " ~ tolerance
        ~ ", expected." ~ column ~ " is null and actual." ~ column ~ " is null) then '" ~ column ~ "' end"
    ) -%}
{%- endfor -%}
{%- if not differences -%}
    {{ exceptions.raise_compiler_error("matches_actual on " ~ model ~ ": name columns or approximate_columns") }}
{%- endif %}

with

expected as (

    select
        *,
        true as is_expected_row

    from {{ model }}

),

actual as (

    select
        *,
        true as is_actual_row

    from {{ actual }}
    where {{ actual_where or 'true' }}

),

compared as (

    select
        {% for column in key -%}
        coalesce(expected.{{ column }}, actual.{{ column }}) as {{ column }},
        {% endfor -%}
        case
            when actual.is_actual_row is null then 'missing from actual'
            when expected.is_expected_row is null then 'not expected'
        end as missing_row,
        case
            when expected.is_expected_row and actual.is_actual_row
                then concat_ws(', ', {{ differences | join(', ') }})
            else ''
        end as differing_columns

    from expected
    full outer join actual
        on {% for column in key %}{{ 'and ' if not loop.first }}expected.{{ column }} = actual.{{ column }}
        {% endfor %}

)

select * from compared
where missing_row is not null
    or differing_columns <> ''

{% endtest %}
