"""Saved models: which one a run may use, and the registry table that lists them.

A model fits a run when its file is intact (sha256) and its features, horizon and sequence
shape equal the run's (:func:`clv.score.load_verified` checks both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from clv.artifacts import PREFIX, ModelArtifact, list_artifacts
from clv.data import feature_spec
from clv.hybrid import BTYD_FEATURES
from clv.pipeline.log import dbt_log
from clv.pipeline.settings import RunSettings
from clv.score import ModelMismatchError, load_verified

REGISTRY_COLUMNS = ["model_version", "created_at", "is_current", "horizon_days", "period_days",
                    "sequence_periods", "training_cutoffs", "validation_cutoff", "training_rows",
                    "validation_rows", "validation_loss", "normalized_gini", "aggregate_error",
                    "decile_mape", "btyd_level_correction", "settings", "feature_count",
                    "onnx_path", "sha256"]


def model_features(schema: pa.Schema, run: RunSettings) -> list[str]:
    """The network's feature list for an example table, BTYD outputs included."""
    extra = [pa.field(name, pa.float64()) for name in BTYD_FEATURES if name not in schema.names]
    spec = feature_spec(pa.schema(list(schema) + extra), run.model_static_features, run.channels)
    return list(spec.features)


def expected_metadata(features: list[str], run: RunSettings) -> dict[str, Any]:
    """Metadata a saved model must carry to score this run."""
    return {
        "features": features,
        "horizon_days": run.horizon_days,
        "n_periods": run.sequence_periods,
        "period_days": run.period_days,
    }


def reusable(artifact: ModelArtifact | None, run: RunSettings, features: list[str]) -> bool:
    if artifact is None:
        return False
    try:
        load_verified(run.model_dir, artifact.version, expected_metadata(features, run))
    except ModelMismatchError as error:
        dbt_log(f"saved model {artifact.version} cannot be reused, retraining: {error}")
        return False
    return True


def broken_artifacts(model_dir: Path) -> list[str]:
    """What is wrong with each model in ``model_dir`` that cannot even be listed: a metadata
    file that does not parse, or one half of the ONNX + metadata pair missing."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    problems = []
    for path in sorted(model_dir.glob(f"{PREFIX}*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            problems.append(f"metadata {path.name} is unreadable ({error})")
            continue
        if not path.with_suffix(".onnx").is_file():
            problems.append(f"ONNX file {path.with_suffix('.onnx').name} is missing next to "
                            f"{path.name}")
    problems.extend(f"metadata {path.with_suffix('.json').name} is missing next to {path.name}"
                    for path in sorted(model_dir.glob(f"{PREFIX}*.onnx"))
                    if not path.with_suffix(".json").is_file())
    return problems


def newest_compatible(run: RunSettings, features: list[str]) -> ModelArtifact:
    """For clv_retrain = never: the newest saved model that fits this run, or a clear error."""
    artifacts = list_artifacts(run.model_dir)
    broken = broken_artifacts(run.model_dir)
    if not artifacts:
        if broken:
            raise ModelMismatchError(
                f"clv_retrain is 'never' but {run.model_dir} holds no usable model: "
                + "; ".join(broken[:3]) + "; set clv_retrain to 'auto' to train a new one")
        raise ModelMismatchError(
            f"clv_retrain is 'never' but {run.model_dir} holds no model; run once with "
            "clv_retrain 'auto' or 'always' to train one")
    problems = []
    for artifact in reversed(artifacts):
        try:
            load_verified(run.model_dir, artifact.version, expected_metadata(features, run))
            return artifact
        except ModelMismatchError as error:
            dbt_log(f"saved model {artifact.version} cannot be used: {error}")
            problems.append(str(error))
    raise ModelMismatchError(
        "clv_retrain is 'never' but no saved model fits this run (set clv_retrain to 'auto' to "
        "train one): " + " | ".join((problems + broken)[:3]))


def current_version(registry: pd.DataFrame) -> str:
    """The model the registry marks current."""
    current = registry.loc[registry["is_current"].astype(bool), "model_version"]
    if current.empty:
        raise ModelMismatchError("clv_model_registry marks no current model; rebuild it")
    return str(current.iloc[0])


def registry_frame(model_dir: Path, current: str | None) -> pd.DataFrame:
    """One row per saved model, newest last; ``is_current`` marks the one this run uses."""
    rows = []
    for artifact in list_artifacts(model_dir):
        meta = artifact.metadata
        metrics_ = meta.get("validation_metrics") or {}
        rows.append({
            "model_version": artifact.version,
            "created_at": pd.Timestamp(meta.get("created_at")),
            "is_current": artifact.version == current,
            "horizon_days": meta.get("horizon_days"),
            "period_days": meta.get("period_days"),
            "sequence_periods": meta.get("n_periods"),
            "training_cutoffs": ",".join(meta.get("training_cutoffs") or []),
            "validation_cutoff": meta.get("validation_cutoff"),
            "training_rows": meta.get("training_rows"),
            "validation_rows": meta.get("validation_rows"),
            "validation_loss": meta.get("validation_loss"),
            "normalized_gini": metrics_.get("normalized_gini"),
            "aggregate_error": metrics_.get("aggregate_error"),
            "decile_mape": metrics_.get("decile_mape"),
            "btyd_level_correction": meta.get("btyd_level_correction"),
            "settings": json.dumps(meta.get("hyperparameters"), sort_keys=True),
            "feature_count": len(meta.get("features") or []),
            "onnx_path": str(Path(model_dir) / artifact.onnx_path.name),
            "sha256": meta.get("sha256"),
        })
    return pd.DataFrame(rows, columns=REGISTRY_COLUMNS).astype({"btyd_level_correction": float})
