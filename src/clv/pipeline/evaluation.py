"""The evaluation tables: each saved model's validation results, read from its metadata.

Metadata written before a metric existed lacks its key: the column is null for that model (and
a model without gain curves has no rows in the gain curve table).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from clv.artifacts import read_metadata
from clv.pipeline.log import dbt_log

EVALUATION_COLUMNS = ["model_version", "is_current", "validation_cutoff", "predictor",
                      "customers", "actual_total", "predicted_total", "normalized_gini",
                      "spearman", "aggregate_error", "decile_mape", "top_decile_capture", "mae",
                      "rmse", "auc", "brier_score", "p10_p90_coverage", "p90_exceedance",
                      "p10_shortfall", "purchase_probability_ece", "gini_difference_se"]
CALIBRATION_COLUMNS = ["model_version", "is_current", "validation_cutoff", "predictor", "decile",
                       "customers", "mean_predicted", "mean_actual"]
GAIN_CURVE_COLUMNS = {"model_version": "string", "is_current": "bool",
                      "validation_cutoff": "string", "predictor": "string", "percent": "int64",
                      "customers": "int64", "captured_share": "float64",
                      "oracle_share": "float64"}


def metadata_rows(registry: pd.DataFrame, key: str) -> list[dict]:
    """The rows under ``key`` in each registry model's metadata, with the model's version,
    ``is_current`` and validation cutoff; a model whose metadata cannot be read (deleted or
    damaged since the registry listed it) has none, and the dbt log says so."""
    rows = []
    for record in registry.to_dict("records"):
        path = Path(record["onnx_path"]).with_suffix(".json")
        try:
            meta = read_metadata(path)
        except (OSError, ValueError) as error:
            dbt_log(f"model {record['model_version']} has no {key} rows: its metadata cannot "
                    f"be read ({error})")
            continue
        rows.extend({"model_version": record["model_version"],
                     "is_current": bool(record["is_current"]),
                     "validation_cutoff": meta.get("validation_cutoff"), **row}
                    for row in meta.get(key) or [])
    return rows


def evaluation_table(registry: pd.DataFrame) -> pd.DataFrame:
    """One row per model per predictor: validation metrics from each model's metadata."""
    return pd.DataFrame(metadata_rows(registry, "evaluation")).reindex(
        columns=EVALUATION_COLUMNS)


def calibration_table(registry: pd.DataFrame) -> pd.DataFrame:
    """One row per model per predictor per decile: mean predicted vs mean actual."""
    return pd.DataFrame(metadata_rows(registry, "calibration")).reindex(
        columns=CALIBRATION_COLUMNS)


def gain_curve_table(registry: pd.DataFrame) -> pd.DataFrame:
    """One row per model per predictor per percent (1..100): the share of the actual spend held
    by the top percent of validation customers by prediction, and by a perfect ranking."""
    rows = [{"predictor": row["predictor"], "model_version": row["model_version"],
             "is_current": row["is_current"], "validation_cutoff": row["validation_cutoff"],
             **point}
            for row in metadata_rows(registry, "evaluation")
            for point in row.get("gain_curve") or []]
    return pd.DataFrame(rows).reindex(columns=list(GAIN_CURVE_COLUMNS)).astype(
        GAIN_CURVE_COLUMNS)
