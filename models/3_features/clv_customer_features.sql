{{ config(materialized='view') }}
{#-
    One row per customer per cutoff (every training cutoff and the as-of date), for customers
    with a usable transaction on or before the cutoff. Every feature reads only days on or
    before its cutoff. The feature SQL is macros/features/clv_customer_features_at.sql, one
    cutoff at a time.

    A view of the two example tables, which compute these rows with the sequence for their
    own cutoffs: the wide rows are written once, there. Its columns are those of
    clv_scoring_examples without the sequence and the cutoff role.
-#}
{%- set not_features = clv_sequence_columns() + ['cutoff_role', 'label_revenue', 'label_orders'] -%}
{%- set columns = [] -%}
{%- if execute -%}
{%- for column in adapter.get_columns_in_relation(ref('clv_scoring_examples')) -%}
{%- if column.name | lower not in not_features -%}
{%- do columns.append(column.name) -%}
{%- endif -%}
{%- endfor -%}
{%- endif -%}
{%- set selected = columns | join(', ') if columns else '*' %}

with

training_examples as (

    select {{ selected }} from {{ ref('clv_training_examples') }}

),

scoring_examples as (

    select {{ selected }} from {{ ref('clv_scoring_examples') }}

),

final as (

    select * from training_examples
    union all
    select * from scoring_examples

)

select * from final
