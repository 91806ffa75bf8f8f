{#-
    "WARN 1 clv_level_is_adjusted_for_the_season": the current model's horizon is shorter than
    a year, and its spend level is not adjusted for the season (clv_model_registry.level_note
    says why: most often a history under two years, or no training cutoff a year back). The
    level is then carried from the latest fully observed window: if the horizon holds a peak
    or a trough that window did not (a Christmas, a summer lull), the total, the segment
    ranges and the purchase probabilities miss it, by more than level_log_sd says (which
    measures only the windows the history holds). A business without seasons can turn the
    test off; the row shows the model and the note.
-#}
{{ config(severity='warn') }}

with

registry as (

    select * from {{ ref('clv_model_registry') }}

),

final as (

    select
        model_version,
        horizon_days,
        level_note
    from registry
    where is_current and horizon_days < 365 and not is_seasonal_level

)

select * from final
