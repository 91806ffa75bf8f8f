"""An ageing, closed cohort: no new customers, so the as-of date sees older customers than the
training cutoffs did. Predictions must stay calibrated in aggregate on the real holdout, and the
model metadata must say how the level was estimated."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from clv.synthetic import GeneratorSettings, generate

AS_OF = "2023-06-30"
HORIZON = 180


@pytest.mark.slow
def test_closed_cohort_predictions_stay_calibrated(dbt_project, write_csv, tmp_path):
    data = generate(GeneratorSettings(
        n_customers=1500, start_date=date(2021, 1, 1), end_date=date(2023, 12, 31), seed=17,
        closed_cohort=True, bad_rows=False, with_events=False,
    ))
    dbt_project.build(select=None, vars={
        "clv_transactions": write_csv(data.transactions), "clv_as_of_date": AS_OF,
        "clv_horizon_days": HORIZON, "clv_model_dir": str(tmp_path / "models"),
        "clv_export_path": str(tmp_path / "exports" / "clv_predictions.parquet"),
        "clv_report_path": str(tmp_path / "reports" / "clv_report.html"),
    })
    totals = dbt_project.query(f"""
        with actual as (
            select customer_id, greatest(sum(amount), 0) as actual
            from int_clv__transactions_classified
            where exclusion_reason = 'after_as_of_date'
              and transacted_date <= date '{AS_OF}' + {HORIZON}
            group by customer_id
        )
        select sum(p.predicted_clv) as predicted, sum(coalesce(a.actual, 0)) as actual,
               min(s.t_days) as youngest_days
        from clv_predictions p
        join clv_scoring_examples s using (customer_id)
        left join actual a using (customer_id)
    """)
    assert totals.youngest_days[0] > 365, "a closed cohort: everyone is old at the as-of date"
    aggregate_error = totals.predicted[0] / totals.actual[0] - 1
    assert abs(aggregate_error) < 0.15, f"aggregate error {aggregate_error:+.1%}"

    metadata = json.loads(next(Path(tmp_path / "models").glob("clv_model_*.json")).read_text())
    spend_level = metadata["spend_level"]
    # 2.5 years of history and a 180-day horizon: the level is carried from a year back
    assert spend_level["seasonal"] and spend_level["lag_days"] == 365
    assert len(spend_level["windows"]) == len(metadata["training_cutoffs"])
    assert metadata["btyd_level_correction"] == spend_level["btyd_level_correction"]
    assert all(fit["status"] in ("maximum_likelihood", "regularized", "fallback")
               for fit in metadata["btyd_fits"].values())
    network = next(row for row in metadata["evaluation"] if row["predictor"] == "network")
    assert 0 <= network["p90_exceedance"] <= 1 and 0 <= network["purchase_probability_ece"] <= 1
    assert metadata["distribution_calibration"]["reported"]["fitted_on"] == "training cutoffs"
    # clv_ensemble_size 0 (automatic): three networks below 100,000 training rows, as the
    # registry says
    settings = json.loads(dbt_project.query(
        "select settings from clv_model_registry where is_current").settings[0])
    assert (settings["ensemble_size"], settings["networks"]) == (0, 3)
