{#-
    "WARN 1 clv_network_ranks_as_well_as_btyd": on the validation cutoff, the current model's
    network ranks the customers by spend worse than BG/NBD + Gamma-Gamma, by more than 0.02 of
    normalized Gini. On a few dozen customers, or a shape of data the network did not learn,
    its values are then worth less than BG/NBD's own (`clv_predictions.btyd_expected_spend`).
    The row shows both.
-#}
{{ config(severity='warn') }}

with

evaluation as (

    select
        model_version,
        predictor,
        normalized_gini
    from {{ ref('clv_model_evaluation') }}
    where is_current

),

network as (

    select
        model_version,
        normalized_gini
    from evaluation
    where predictor = 'network'

),

btyd as (

    select
        model_version,
        normalized_gini
    from evaluation
    where predictor = 'bgnbd_gamma_gamma'

),

final as (

    select
        network.model_version,
        network.normalized_gini as network_gini,
        btyd.normalized_gini as btyd_gini
    from network
    inner join btyd on network.model_version = btyd.model_version
    where network.normalized_gini < btyd.normalized_gini - 0.02

)

select * from final
