{{ config(
    materialized='table' if clv_scores_in_sql_model() else 'view',
    pre_hook=["set local jit = off"] if clv_scores_in_sql_model() and target.type == 'postgres' else []
) }}
{#-
    The scores of every customer at the as-of date: with clv_scoring_engine sql, the query that
    int_clv__scoring_plan compiled from the saved model and the BTYD fit (src/clv/sql_scoring;
    the same text is kept under <clv_model_dir>/runs/), run here by the warehouse itself;
    otherwise the rows of the Python scoring step, int_clv__python_scores (onnxruntime, a
    BG/NBD fit outside what the query evaluates, or Spark, which runs the query in stages).

    The query reads its input as clv_scoring_examples, the CTE below, and runs as a subquery
    (with an alias, which PostgreSQL before 16 requires of one). On PostgreSQL the JIT
    compiler is off for it: it would spend minutes on the query's thousands of columns. The
    materialization is chosen at parse time from the vars (a table when the query runs here),
    what runs from the plan's row at execution.
-#}
-- depends_on: {{ ref('int_clv__scoring_plan') }}
-- depends_on: {{ ref('clv_scoring_examples') }}
{%- set compiled = clv_compiled_scoring_query(ref('int_clv__scoring_plan')) if execute else none %}
{%- if compiled %}

with

clv_scoring_examples as (

    select * from {{ ref('clv_scoring_examples') }}

)

select * from (
    {{ compiled }}
) as compiled_scores  -- noqa: AL05

{%- else %}

select * from {{ ref('int_clv__python_scores') }}

{%- endif %}
