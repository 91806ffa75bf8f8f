"""The evaluation tables read each model's metadata; models saved before a metric existed give
nulls (and no gain curve rows), never an error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

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
