{#-
    One row per customer with a usable transaction on or before the as-of date: the features and
    sequence the model scores. Stored in customer_id order: the scoring model reads the table in
    that order without sorting it again, which keeps scoring memory flat and its batches, and so
    every float result, the same from run to run.
-#}

with

customer_features as (

    select * from {{ ref('clv_customer_features') }}

),

customer_sequences as (

    select * from {{ ref('clv_customer_sequences') }}

),

cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }}

),

scoring_cutoff as (

    select * from cutoffs where cutoff_role = 'scoring'

),

final as (

    select
        customer_features.*,
        scoring_cutoff.cutoff_role
        {%- for column in clv_sequence_columns() %},
        customer_sequences.{{ column }}{% endfor %}

    from customer_features
    inner join scoring_cutoff
        on customer_features.cutoff_date = scoring_cutoff.cutoff_date
    inner join customer_sequences
        on customer_features.customer_id = customer_sequences.customer_id
        and customer_features.cutoff_date = customer_sequences.cutoff_date

)

select * from final
order by {{ clv_collate_binary('customer_id') }}
