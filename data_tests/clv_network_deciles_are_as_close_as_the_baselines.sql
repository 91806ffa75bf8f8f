{#-
    "WARN 1 clv_network_deciles_are_as_close_as_the_baselines": on the validation cutoff, the
    current model's network misses the mean spend of its prediction deciles by more than its
    own mean (decile MAPE above 1) and by more than twice the closest baseline's. The network
    ranks well and still puts its values far from the spend when a few accounts spend
    thousands of times what the others do (B2B contracts among shoppers): one level and one
    spread serve both, and the shoppers' values come out too high. Score such accounts apart
    (their own build, through clv_transactions); the row shows the network's decile MAPE and
    the closest baseline's. Under 500 validation customers (deciles of under 50) a decile's
    mean spend is too noisy to tell, and the test passes.
-#}
{{ config(severity='warn') }}

with

current_scores as (

    select
        model_version,
        max(case when predictor = 'network' then customers end) as customers,
        max(case when predictor = 'network' then decile_mape end) as network_decile_mape,
        min(case when predictor <> 'network' then decile_mape end) as best_baseline_decile_mape
    from {{ ref('clv_model_evaluation') }}
    where is_current
    group by model_version

)

select *
from current_scores
where
    customers >= 500
    and network_decile_mape > 1
    and network_decile_mape > 2 * best_baseline_decile_mape
