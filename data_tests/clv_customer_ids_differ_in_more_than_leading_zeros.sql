{#-
    "WARN n clv_customer_ids_differ_in_more_than_leading_zeros": n customers appear under ids
    that differ only in leading zeros (7255 in one file or system, 0007255 in another). Ids are
    kept as written, so each is scored as a customer of its own: the older id as lapsed, the
    newer one with part of the history. One row per such customer, with two of its ids; when
    the ids are one customer, write them alike in clv_columns (for example
    `"customer_id": "trim(leading '0' from CustomerID)"`), else turn this test off.
-#}
{{ config(severity='warn') }}

with

customer_ids as (

    select distinct customer_id
    from {{ ref('int_clv__customer_days') }}

),

unpadded as (

    select
        customer_id,
        trim(leading '0' from customer_id) as unpadded_id
    from customer_ids

),

final as (

    select
        unpadded_id,
        count(*) as customer_ids,
        min(customer_id) as one_id,
        max(customer_id) as another_id
    from unpadded
    group by unpadded_id
    having count(*) > 1

)

select * from final
