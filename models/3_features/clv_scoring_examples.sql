{#-
    One row per customer with a usable transaction on or before the as-of date: the features and
    sequence the model scores (cutoff_index 0 of int_clv__cutoffs). Stored in customer_id order:
    the scoring model reads the table in that order without sorting it again, which keeps
    scoring memory flat and its batches, and so every float result, the same from run to run.
-#}

with

scoring_cutoff as (

    select * from {{ ref('int_clv__cutoffs') }} where cutoff_role = 'scoring'

),

final as (

    select
        features.*,
        scoring_cutoff.cutoff_role

    from ({{ clv_customer_features_at(0, with_sequence=true) }}) as features
    inner join scoring_cutoff
        on features.cutoff_date = scoring_cutoff.cutoff_date

)

select * from final
order by {{ clv_collate_binary('customer_id') }}
