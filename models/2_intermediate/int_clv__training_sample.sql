{%- set settings = clv_settings() -%}
{#-
    One row per customer per training cutoff whose example row training reads: every customer
    with a usable day on or before the cutoff while the cutoffs hold no more rows than training
    uses, and above that a uniform sample, so clv_training_examples computes only the rows
    training reads and its cost stops growing with the number of customers.

    The sample keeps a (customer, cutoff) when its md5 bucket (clv_sample_bucket: the same rows
    on every engine, in any scan order) is below its cutoff's limit:
    - several cutoffs: the latest (the validation cutoff) to about clv_max_validation_rows rows,
      the others together to about clv_max_train_rows plus 5% (training then takes exactly
      clv_max_train_rows of them, clv.train);
    - a single cutoff (training holds out customers itself): to about the sum of the two caps
      plus 5%.
    A limit is ceil(1,000,000 * wanted rows / available rows) in double precision, at most
    1,000,000 (every row).
-#}
{%- set buckets = 1000000 -%}
{%- set train_rows = (settings.max_train_rows * 105 + 99) // 100 -%}
{%- set single_rows = ((settings.max_train_rows + settings.max_validation_rows) * 105 + 99) // 100 -%}
{%- set double = clv_type_double() -%}

with

customer_days as (

    select * from {{ ref('int_clv__customer_days') }}

),

training_cutoffs as (

    select * from {{ ref('int_clv__cutoffs') }} where cutoff_role in ('training', 'validation')

),

customer_starts as (

    select
        customer_id,
        min(activity_date) as first_activity_date

    from customer_days
    group by customer_id

),

start_dates as (

    select
        first_activity_date,
        count(*) as customers

    from customer_starts
    group by first_activity_date

),

cutoff_customers as (

    select
        training_cutoffs.cutoff_index,
        training_cutoffs.cutoff_date,
        sum(
            case when start_dates.first_activity_date <= training_cutoffs.cutoff_date then start_dates.customers else 0 end
        ) as customers

    from training_cutoffs
    cross join start_dates
    group by training_cutoffs.cutoff_index, training_cutoffs.cutoff_date

),

totals as (

    select
        count(*) as cutoffs,
        max(cutoff_date) as validation_cutoff_date,
        sum(customers) as customers

    from cutoff_customers

),

limits as (

    select
        cutoff_customers.cutoff_index,
        cutoff_customers.cutoff_date,
        cast(least({{ buckets }}, ceil(
            case
                when totals.cutoffs = 1
                    then cast({{ buckets * single_rows }} as {{ double }}) / cast(greatest(totals.customers, 1) as {{ double }})
                when cutoff_customers.cutoff_date = totals.validation_cutoff_date
                    then cast({{ buckets * settings.max_validation_rows }} as {{ double }})
                    / cast(greatest(cutoff_customers.customers, 1) as {{ double }})
                else cast({{ buckets * train_rows }} as {{ double }}) / cast(greatest(totals.customers - validation.customers, 1) as {{ double }})
            end
        )) as bigint) as bucket_limit

    from cutoff_customers
    cross join totals
    inner join cutoff_customers as validation
        on totals.validation_cutoff_date = validation.cutoff_date

),

final as (

    select
        customer_starts.customer_id,
        limits.cutoff_index,
        limits.cutoff_date

    from customer_starts
    inner join limits
        on customer_starts.first_activity_date <= limits.cutoff_date
    where
        limits.bucket_limit >= {{ buckets }}
        or {{ clv_sample_bucket(['customer_starts.customer_id', 'limits.cutoff_date']) }} < limits.bucket_limit

)

select * from final
