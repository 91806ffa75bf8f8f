"""The evaluation tables read each model's metadata; models saved before a metric existed give
nulls (and no gain curve rows), never an error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from clv.metrics import gain_curve
from clv.pipeline.evaluation import (
    EVALUATION_COLUMNS,
    GAIN_CURVE_COLUMNS,
    evaluation_table,
    gain_curve_table,
)

OLD_ROW = {"predictor": "network", "customers": 4, "actual_total": 10.0, "predicted_total": 9.0,
           "normalized_gini": 0.5, "spearman": 0.4, "aggregate_error": -0.1, "decile_mape": 0.2,
           "top_decile_capture": 0.3, "mae": 1.0, "rmse": 2.0, "auc": 0.7}


def _registry(tmp_path, metadata: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for index, (version, meta) in enumerate(metadata.items()):
        (tmp_path / f"clv_model_{version}.json").write_text(json.dumps(meta))
        rows.append({"model_version": version, "is_current": index == len(metadata) - 1,
                     "onnx_path": str(tmp_path / f"clv_model_{version}.onnx")})
    return pd.DataFrame(rows)


def test_old_metadata_gives_nulls_and_new_metadata_gives_values(tmp_path):
    curve = gain_curve([3.0, 0.0, 1.0, 6.0], [2.0, 0.0, 1.0, 3.0]).to_dict("records")
    new_rows = [
        {**OLD_ROW, "brier_score": 0.18, "p10_p90_coverage": 0.83, "p90_exceedance": 0.09,
         "p10_shortfall": 0.12, "purchase_probability_ece": 0.015, "gain_curve": curve},
        {**OLD_ROW, "predictor": "naive_last_horizon", "brier_score": None,
         "p10_p90_coverage": None, "gain_curve": curve},
    ]
    registry = _registry(tmp_path, {
        "old": {"validation_cutoff": "2023-01-01", "evaluation": [OLD_ROW]},
        "new": {"validation_cutoff": "2023-06-30", "evaluation": new_rows},
    })
    evaluation = evaluation_table(registry)
    assert list(evaluation.columns) == EVALUATION_COLUMNS
    old = evaluation[evaluation.model_version == "old"].iloc[0]
    assert np.isnan(old.brier_score) and np.isnan(old.p10_p90_coverage) and old.mae == 1.0
    assert old[["p90_exceedance", "p10_shortfall", "purchase_probability_ece"]].isna().all()
    network = evaluation[(evaluation.model_version == "new")
                         & (evaluation.predictor == "network")].iloc[0]
    assert network.brier_score == 0.18 and network.p10_p90_coverage == 0.83
    assert (network.p90_exceedance, network.p10_shortfall,
            network.purchase_probability_ece) == (0.09, 0.12, 0.015)
    assert evaluation[evaluation.predictor == "naive_last_horizon"].brier_score.isna().all()

    gains = gain_curve_table(registry)
    assert list(gains.columns) == list(GAIN_CURVE_COLUMNS)
    assert set(gains.model_version) == {"new"} and len(gains) == 2 * 100
    assert gains.is_current.all() and set(gains.validation_cutoff) == {"2023-06-30"}
    network_curve = gains[gains.predictor == "network"].sort_values("percent")
    assert network_curve.percent.tolist() == list(range(1, 101))
    assert network_curve.captured_share.iloc[-1] == 1.0


def test_gain_curve_table_without_any_curve_is_empty_and_typed(tmp_path):
    registry = _registry(tmp_path, {"old": {"evaluation": [OLD_ROW]}})
    gains = gain_curve_table(registry)
    assert gains.empty
    assert {name: str(dtype) for name, dtype in gains.dtypes.items()}["percent"] == "int64"
    assert str(gains.dtypes["captured_share"]) == "float64"


def test_a_model_whose_metadata_is_gone_is_left_out_with_a_log_line(tmp_path, monkeypatch):
    lines = []
    monkeypatch.setattr("clv.pipeline.evaluation.dbt_log", lines.append)
    registry = _registry(tmp_path, {"v1": {"validation_cutoff": "2023-01-01",
                                           "evaluation": [OLD_ROW]},
                                    "v2": {"evaluation": [OLD_ROW]}})
    (tmp_path / "clv_model_v2.json").unlink()  # deleted since the registry listed it
    table = evaluation_table(registry)
    assert list(table.model_version) == ["v1"]
    assert len(lines) == 1 and "model v2 has no evaluation rows" in lines[0]


def test_the_validation_metrics_follow_their_definitions():
    """``pipeline.training.evaluate`` on hand-made outputs with an identity calibration: every
    column of the network's row is its metric of the calibrated ZILN distribution (the
    probability a sigmoid of the logit, the quantiles of that distribution), and the
    baselines are scored on their own predictions, without probability or quantiles."""
    from datetime import date
    from pathlib import Path

    import pyarrow as pa
    from scipy.stats import lognorm

    from clv import metrics
    from clv.calibration import Calibration
    from clv.pipeline.settings import RunSettings
    from clv.pipeline.training import RawOutputs, evaluate

    rng = np.random.default_rng(7)
    n = 400
    spend = np.exp(rng.normal(3.0, 1.0, n))
    logit = rng.normal(0.0, 1.5, n)
    sigma = rng.uniform(0.5, 1.2, n)
    actual = np.where(rng.random(n) < 0.5, 0.0, np.exp(rng.normal(3.0, 1.2, n)))
    outputs = RawOutputs(spend=spend, logit=logit, sigma=sigma, actual=actual)
    table = pa.table({"cutoff_date": [date(2023, 6, 30)] * n,
                      "revenue_last_horizon": rng.uniform(0, 50, n),
                      "revenue_total": rng.uniform(0, 200, n), "t_days": rng.uniform(100, 900, n),
                      "btyd_expected_spend": rng.uniform(0, 60, n)})
    mask = np.arange(n) % 4 != 0  # the rows evaluated
    run = RunSettings(model_dir=Path("unused"), retrain="auto", horizon_days=365, period_days=30,
                      sequence_periods=12, seed=42, static_features=("frequency",),
                      channels=("orders",))
    identity = Calibration(knots_x=(0.0, 1.0), knots_y=(0.0, 1.0))
    rows, deciles = evaluate(outputs, identity, table, mask, run)

    truth = actual[mask]
    p = 1.0 / (1.0 + np.exp(-logit[mask]))
    mu = np.log(spend[mask]) - np.log(p) - sigma[mask] ** 2 / 2
    # the q-quantile of the zero-inflated lognormal: 0 up to 1 - p, then the lognormal's
    # quantile of the share of the buyers' distribution below it
    def quantile(q):
        share = np.clip((q - (1.0 - p)) / p, 0.0, None)
        return np.where(share > 0, lognorm.ppf(np.minimum(share, 1.0), s=sigma[mask],
                                               scale=np.exp(mu)), 0.0)
    p10, p90 = quantile(0.1), quantile(0.9)
    network = next(row for row in rows if row["predictor"] == "network")
    expected = {
        "customers": int(mask.sum()), "actual_total": truth.sum(),
        "predicted_total": spend[mask].sum(),
        "normalized_gini": metrics.normalized_gini(truth, spend[mask]),
        "decile_mape": metrics.decile_mape(truth, spend[mask]),
        "auc": metrics.auc(truth > 0, p),
        "brier_score": np.mean(((truth > 0) - p) ** 2),
        "p10_p90_coverage": np.mean((truth >= p10) & (truth <= p90)),
        "p90_exceedance": np.mean(truth > p90),
        "p10_shortfall": np.mean(truth[p10 > 0] < p10[p10 > 0]),
        "purchase_probability_ece": metrics.expected_calibration_error(truth, p),
    }
    for name, value in expected.items():
        assert network[name] == pytest.approx(value, rel=1e-6), name
    # neither tail empty nor full: the case tells the quantiles apart
    assert 0.0 < network["p90_exceedance"] < 1.0 and 0.0 < network["p10_shortfall"] < 1.0
    btyd = next(row for row in rows if row["predictor"] == "bgnbd_gamma_gamma")
    btyd_spend = table.column("btyd_expected_spend").to_numpy()[mask]
    assert btyd["normalized_gini"] == pytest.approx(metrics.normalized_gini(truth, btyd_spend))
    assert btyd["brier_score"] is None and btyd["p90_exceedance"] is None
    # the standard error of the network's lead over each baseline, none for the network
    assert btyd["gini_difference_se"] == metrics.gini_difference_se(truth, spend[mask],
                                                                    btyd_spend, seed=42) > 0
    assert network["gini_difference_se"] is None
    assert {row["predictor"] for row in deciles} == {row["predictor"] for row in rows}
