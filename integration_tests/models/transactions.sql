{#-
    One row per transaction: what this project hands to clv (var clv_transactions, as a ref, so
    clv's staging waits for it). The generated background customers, enough to train on, and
    the hand-made customers whose outputs the expected_* seeds give.
-#}

with

generated_transactions as (

    select * from {{ ref('generated_transactions') }}

),

known_transactions as (

    select * from {{ ref('known_transactions') }}

),

final as (

    select * from generated_transactions
    union all
    select * from known_transactions

)

select * from final
