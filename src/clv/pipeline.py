"""What the dbt Python models call: train or reuse a model, score, and report evaluations.

Each function takes the relations dbt hands a Python model and returns what the model writes,
so the files under ``python_models/`` stay one call long.

PyTorch and the exporter are imported inside the training functions only: the scoring and
reporting models never load them, which keeps their dbt process about 300 MB smaller.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clv import hybrid, metrics
from clv.artifacts import PREFIX, ModelArtifact, find_artifact, list_artifacts
from clv.baselines import naive_average_rate, naive_last_period
from clv.config import CUTOFF_COLUMN, ID_COLUMN, LABEL_COLUMN, TrainSettings
from clv.data import as_table, feature_spec, sorted_examples
from clv.score import DEFAULT_BATCH_SIZE, ModelMismatchError, load_verified, score_batches

RETRAIN_CHOICES = ("always", "never", "auto")
PREDICTORS = ("network", "bgnbd_gamma_gamma", "naive_last_horizon", "naive_average_rate")


def dbt_log(message: str) -> None:
    """A line in dbt's log and console (plain print outside dbt)."""
    try:
        from dbt.adapters.events.logging import AdapterLogger
    except ImportError:  # pragma: no cover - only outside a dbt install
        print(message)
        return
    AdapterLogger("clv").info(message)


@dataclass(frozen=True)
class RunSettings:
    """The dbt vars the Python models need, validated."""

    model_dir: Path  # clv_model_dir
    retrain: str  # clv_retrain: always | never | auto
    horizon_days: int  # clv_horizon_days
    period_days: int  # clv_period_days
    sequence_periods: int  # clv_sequence_periods
    seed: int  # clv_seed

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> RunSettings:
        """Read the settings from the clv_* config values a dbt Python model passes."""
        get = values.get

        def integer(name: str, low: int, high: int) -> int:
            raw = get(name)
            try:
                value = int(str(raw).strip())
            except ValueError:
                raise ValueError(f"Invalid value for var '{name}': expected a whole number, "
                                 f"got {raw!r}") from None
            if not low <= value <= high:
                raise ValueError(f"Invalid value for var '{name}': {value} is out of range "
                                 f"{low} to {high}")
            return value

        retrain = str(get("clv_retrain")).strip()
        if retrain not in RETRAIN_CHOICES:
            raise ValueError(f"Invalid value for var 'clv_retrain': expected one of "
                             f"{', '.join(RETRAIN_CHOICES)}, got {retrain!r}")
        model_dir = str(get("clv_model_dir") or "").strip()
        if not model_dir:
            raise ValueError("Invalid value for var 'clv_model_dir': must not be empty")
        return cls(
            model_dir=Path(model_dir),
            retrain=retrain,
            horizon_days=integer("clv_horizon_days", 1, 3650),
            period_days=integer("clv_period_days", 1, 366),
            sequence_periods=integer("clv_sequence_periods", 1, 104),
            seed=integer("clv_seed", 0, 2**31 - 1),
        )


# ---------------------------------------------------------------------------------------------
# Training


def _feature_list(schema: pa.Schema) -> list[str]:
    """The network's feature list for an example table, BTYD outputs included."""
    extra = [pa.field(name, pa.float64()) for name in hybrid.BTYD_FEATURES
             if name not in schema.names]
    return list(feature_spec(pa.schema(list(schema) + extra)).features)


def _expected(features: list[str], run: RunSettings) -> dict[str, Any]:
    """Metadata a saved model must carry to score this run."""
    return {
        "features": features,
        "horizon_days": run.horizon_days,
        "n_periods": run.sequence_periods,
        "period_days": run.period_days,
    }


def _fingerprint(relation: Any, features: list[str], run: RunSettings,
                 settings: TrainSettings) -> str:
    """Hash of the settings and a digest of the training data: equal means "same model"."""
    # Order-independent and exact (a float sum would depend on the scan order).
    digest = relation.aggregate(
        f"count(*) as n, "
        f"bit_xor(hash(customer_id, {CUTOFF_COLUMN}, round({LABEL_COLUMN}, 6), "
        f"round(revenue_total, 6), t_days)) as h"
    ).fetchall()[0]
    payload = {
        "data": [str(value) for value in digest],
        "features": features,
        "run": {"horizon_days": run.horizon_days, "period_days": run.period_days,
                "sequence_periods": run.sequence_periods},
        "settings": settings.to_dict(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _reusable(artifact: ModelArtifact | None, run: RunSettings, features: list[str]) -> bool:
    if artifact is None:
        return False
    try:
        load_verified(run.model_dir, artifact.version, _expected(features, run))
    except ModelMismatchError as error:
        dbt_log(f"saved model {artifact.version} cannot be reused, retraining: {error}")
        return False
    return True


def _broken_artifacts(model_dir: Path) -> list[str]:
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
    for path in sorted(model_dir.glob(f"{PREFIX}*.onnx")):
        if not path.with_suffix(".json").is_file():
            problems.append(f"metadata {path.with_suffix('.json').name} is missing next to "
                            f"{path.name}")
    return problems


def _newest_compatible(run: RunSettings, features: list[str]) -> ModelArtifact:
    """For clv_retrain = never: the newest saved model that fits this run, or a clear error."""
    artifacts = list_artifacts(run.model_dir)
    broken = _broken_artifacts(run.model_dir)
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
            load_verified(run.model_dir, artifact.version, _expected(features, run))
            return artifact
        except ModelMismatchError as error:
            dbt_log(f"saved model {artifact.version} cannot be used: {error}")
            problems.append(str(error))
    raise ModelMismatchError(
        "clv_retrain is 'never' but no saved model fits this run (set clv_retrain to 'auto' to "
        "train one): " + " | ".join((problems + broken)[:3]))


def _evaluate(result, table: pa.Table, run: RunSettings) -> tuple[list[dict], list[dict]]:
    """Validation metrics and decile calibration for the network and the baselines."""
    validation = result.validation.to_pandas()
    keys = table.select(["customer_id", CUTOFF_COLUMN, "revenue_last_horizon", "revenue_total",
                         "t_days", "btyd_expected_spend"]).to_pandas()
    merged = validation.merge(keys, on=["customer_id", CUTOFF_COLUMN], how="left")
    actual = merged["label"].to_numpy(dtype=float)
    predictions = {
        "network": (merged["predicted"].to_numpy(float), merged["probability"].to_numpy(float)),
        # P(alive) is not P(buy in the horizon): the AUC of BTYD ranks by expected spend.
        "bgnbd_gamma_gamma": (merged["btyd_expected_spend"].to_numpy(float), None),
        "naive_last_horizon": (naive_last_period(merged["revenue_last_horizon"]), None),
        "naive_average_rate": (
            naive_average_rate(merged["revenue_total"], merged["t_days"], run.horizon_days),
            None),
    }
    evaluation, calibration = [], []
    for predictor, (predicted, probability) in predictions.items():
        scores = metrics.evaluate(actual, predicted, probability)
        evaluation.append({"predictor": predictor, "customers": len(actual),
                           "actual_total": float(actual.sum()),
                           "predicted_total": float(np.sum(predicted)), **scores})
        deciles = metrics.decile_calibration(actual, predicted)
        calibration += [{"predictor": predictor, **row} for row in deciles.to_dict("records")]
    return evaluation, calibration


def _json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as None, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


# Bounds of the BG/NBD level correction: a validation window that far off says more about that
# window (a tiny or freak one) than about BG/NBD's bias.
LEVEL_CORRECTION_BOUNDS = (0.5, 2.0)


def btyd_level_correction(evaluation: list[dict]) -> float:
    """Actual over BG/NBD + Gamma-Gamma expected spend, summed over the validation cutoff.

    clv_predictions scales the network's predictions so that their total is BG/NBD's total at
    the as-of date times this factor: BG/NBD carries the spend level across the ageing of the
    customer base between the validation cutoff and the as-of date (it models each customer's
    dropout), this factor carries over the bias BG/NBD showed on the last fully observed window,
    and the network decides who gets how much of it.
    """
    row = next((r for r in evaluation if r["predictor"] == "bgnbd_gamma_gamma"), None)
    if row is None or not row["predicted_total"] > 0 or not row["actual_total"] > 0:
        return 1.0
    low, high = LEVEL_CORRECTION_BOUNDS
    return float(np.clip(row["actual_total"] / row["predicted_total"], low, high))


def calibrate(result) -> dict[str, list[float]]:
    """Wrap the trained network in a monotone spend calibration fitted on the validation rows
    (see :mod:`clv.calibration`); updates ``result`` in place and returns the knots."""
    import torch

    from clv.calibration import CalibratedNetwork, fit_knots

    validation = result.validation
    predicted = validation.column("predicted").to_numpy()
    knots_x, knots_y = fit_knots(predicted, validation.column("label").to_numpy())
    model = CalibratedNetwork(result.model, knots_x, knots_y).eval()
    with torch.no_grad():
        log_spend = torch.log(torch.as_tensor(predicted, dtype=torch.float32).clamp_min(1e-12))
        calibrated = torch.exp(model.log_spend_map(log_spend)).double().numpy()
    result.model = model
    result.validation = validation.set_column(
        validation.schema.get_field_index("predicted"), "predicted", pa.array(calibrated))
    return {"log_predicted": knots_x.tolist(), "log_calibrated": knots_y.tolist()}


def stable_floats(data: pa.Table | pa.RecordBatch, decimals: int = 6):
    """Float columns rounded to ``decimals`` places.

    The warehouse sums money in parallel, so the last bits of a total can differ between two
    builds of the same data; rounding makes training and scoring inputs, and therefore the
    model and its predictions, identical from run to run.
    """
    for index, field in enumerate(data.schema):
        if pa.types.is_floating(field.type):
            data = data.set_column(index, field.name, pc.round(data.column(index), decimals))
    return data


def _has_repeat_buyer(data: pa.Table) -> pa.ChunkedArray:
    """Per row: a customer Gamma-Gamma can be fitted on (a repeat purchase day with spend)."""
    return pc.and_(pc.greater(data.column("frequency"), 0),
                   pc.greater(data.column("monetary_value"), 0))


def trainable_examples(table: pa.Table, run: RunSettings, settings: TrainSettings) -> pa.Table:
    """The training examples a model can be fitted on, or a ValueError that says why there are
    none and which var to change.

    Training cutoffs at which no customer has bought twice yet are dropped (with a log line):
    BG/NBD + Gamma-Gamma, whose outputs are network inputs, cannot be fitted there. That only
    happens to the earliest cutoffs, close to the first transaction.
    """
    if table.num_rows == 0:
        raise ValueError(
            "clv_training_examples is empty: every training cutoff (clv_as_of_date - "
            "clv_horizon_days - k * clv_cutoff_spacing_days) falls before the first usable "
            "transaction, so the history is shorter than the horizon of "
            f"{run.horizon_days} days (clv_horizon_days). Lower clv_horizon_days, set a later "
            "clv_as_of_date or load more history; to score with a model trained earlier, set "
            "clv_retrain to 'never'")
    customers = len(pc.unique(table.column("customer_id")))
    cutoffs = sorted(str(c) for c in pc.unique(table.column(CUTOFF_COLUMN)).to_pylist())
    if table.num_rows < settings.min_rows:
        raise ValueError(
            f"clv_training_examples has only {table.num_rows} rows ({customers} customer(s) at "
            f"{len(cutoffs)} training cutoffs), fewer than the {settings.min_rows} training "
            "needs: point clv_transactions at the transactions of more customers, load a longer "
            "history, or raise clv_training_cutoffs")
    fittable_cutoffs = pc.unique(table.filter(_has_repeat_buyer(table)).column(CUTOFF_COLUMN))
    fittable = {str(c) for c in fittable_cutoffs.to_pylist()}
    if not fittable:
        raise ValueError(
            f"no customer among the {customers} in clv_training_examples bought on two "
            "different days before any training cutoff: with single purchases only, neither "
            "BG/NBD + Gamma-Gamma nor the network can learn repeat buying. Load a longer "
            "history (clv_transactions) or set a later clv_as_of_date")
    dropped = [c for c in cutoffs if c not in fittable]
    if dropped:
        dbt_log(f"training cutoffs {', '.join(dropped)} dropped: no customer had bought on two "
                "different days by then, so BG/NBD + Gamma-Gamma cannot be fitted there")
        table = table.filter(pc.is_in(table.column(CUTOFF_COLUMN), value_set=fittable_cutoffs))
    return table


# Warehouse-side sampling keeps the rows whose hash of (customer_id, cutoff_date) falls in the
# lowest buckets: uniform, independent of the scan order, and the same rows on every run.
_SAMPLE_BUCKETS = 1_000_000
# Training cutoffs are sampled slightly above max_train_rows; train() then trims them exactly.
_OVERSAMPLE = 1.05


def _sample_condition(counts: Mapping[Any, int], settings: TrainSettings) -> str | None:
    """SQL filter for the example rows training reads, or None to read every row.

    With several cutoffs the latest one is the validation set (at most max_validation_rows rows)
    and the others the training set (at most max_train_rows, with a little margin). With a
    single cutoff train() holds out customers itself, so the cap is the sum of the two.
    """
    def threshold(wanted: float, available: int) -> int:
        return min(_SAMPLE_BUCKETS, int(np.ceil(_SAMPLE_BUCKETS * wanted / max(available, 1))))

    bucket = f"hash(customer_id, {CUTOFF_COLUMN}) % {_SAMPLE_BUCKETS}"
    if len(counts) <= 1:
        total = sum(counts.values())
        limit = threshold(_OVERSAMPLE * (settings.max_train_rows + settings.max_validation_rows),
                          total)
        return None if limit >= _SAMPLE_BUCKETS else f"{bucket} < {limit}"
    latest = max(counts)
    train_limit = threshold(_OVERSAMPLE * settings.max_train_rows,
                            sum(n for cutoff, n in counts.items() if cutoff != latest))
    valid_limit = threshold(settings.max_validation_rows, counts[latest])
    if train_limit >= _SAMPLE_BUCKETS and valid_limit >= _SAMPLE_BUCKETS:
        return None
    return (f"{bucket} < case when {CUTOFF_COLUMN} = date '{latest.isoformat()}' "
            f"then {valid_limit} else {train_limit} end")


def read_examples(relation: Any, settings: TrainSettings) -> pa.Table:
    """The training examples as training reads them: only the id, cutoff, label and feature
    columns, sampled in the warehouse when there are more rows than training uses, float
    columns rounded, rows in a fixed order.

    Memory therefore depends on ``max_train_rows`` and ``max_validation_rows``, not on the
    number of customers; below those caps every row is read.
    """
    schema = pa.schema([pa.field(name, _arrow_type(kind))
                        for name, kind in zip(relation.columns, relation.types, strict=True)])
    features = [name for name in _feature_list(schema) if name in schema.names]
    columns = [ID_COLUMN, CUTOFF_COLUMN, *([LABEL_COLUMN] if LABEL_COLUMN in schema.names
                                          else []), *features]
    counts = dict(relation.aggregate(f"{CUTOFF_COLUMN}, count(*)", CUTOFF_COLUMN).fetchall())
    counts = {cutoff: n for cutoff, n in counts.items() if cutoff is not None}
    selected = relation.select(", ".join(f'"{name}"' for name in columns))
    condition = _sample_condition(counts, settings)
    if condition is not None:
        selected = selected.filter(condition)
        dbt_log(f"reading a uniform sample of the {sum(counts.values()):,} example rows "
                f"(max_train_rows {settings.max_train_rows:,}, max_validation_rows "
                f"{settings.max_validation_rows:,})")
    # A fixed row order: the BTYD fits and the training batches must not depend on the scan.
    return sorted_examples(stable_floats(as_table(selected)))


def _train(relation: Any, run: RunSettings, settings: TrainSettings,
           fingerprint: str) -> ModelArtifact:
    from clv.export import export_model, update_metadata
    from clv.train import train

    table = read_examples(relation, settings)
    table = trainable_examples(table, run, settings)
    dbt_log(f"training on {table.num_rows:,} example rows")
    table, fits = hybrid.add_features_per_cutoff(table, run.horizon_days)
    result = train(table, settings, log=dbt_log)
    knots = calibrate(result)
    dbt_log(f"calibration: {len(knots['log_predicted'])} knots fitted on the validation cutoff")
    artifact = export_model(result, run.model_dir, {
        "fingerprint": fingerprint,
        "horizon_days": run.horizon_days,
        "period_days": run.period_days,
    }, log=dbt_log)
    evaluation, calibration = _evaluate(result, table, run)
    network = next(row for row in evaluation if row["predictor"] == "network")
    dbt_log("validation: " + ", ".join(
        f"{row['predictor']} gini {row['normalized_gini']:.3f} "
        f"aggregate error {row['aggregate_error']:+.1%}" for row in evaluation))
    return update_metadata(artifact, _json_safe({
        "period_days": run.period_days,
        "spend_calibration_knots": knots,
        "btyd_level_correction": btyd_level_correction(evaluation),
        "btyd_fits": {cutoff: fit.to_dict() for cutoff, fit in fits.items()},
        "validation_metrics": {k: v for k, v in network.items() if k != "predictor"},
        "evaluation": evaluation,
        "calibration": calibration,
    }))


def train_or_reuse(relation: Any, run: RunSettings,
                   settings: TrainSettings | None = None) -> pd.DataFrame:
    """Train when clv_retrain asks for it; return the registry of every saved model."""
    settings = settings or TrainSettings(seed=run.seed)
    features = _feature_list(pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in
                                        zip(relation.columns, relation.types, strict=True)]))
    if run.retrain == "never":
        current = _newest_compatible(run, features)
        dbt_log(f"clv_retrain is 'never': scoring with saved model {current.version}")
    else:
        fingerprint = _fingerprint(relation, features, run, settings)
        saved = find_artifact(run.model_dir, fingerprint) if run.retrain == "auto" else None
        if _reusable(saved, run, features):
            current = saved
            dbt_log(f"reusing saved model {current.version}: same settings and data")
        else:
            current = _train(relation, run, settings, fingerprint)
    return registry_frame(run.model_dir, current.version)


def _arrow_type(duckdb_type: Any) -> pa.DataType:
    """Enough of a DuckDB type to tell numeric feature columns from the rest."""
    name = str(duckdb_type).upper()
    if name in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER"):
        return pa.int64()
    if name in ("DOUBLE", "FLOAT", "REAL") or name.startswith("DECIMAL"):
        return pa.float64()
    if name == "BOOLEAN":
        return pa.bool_()
    return pa.string()


def registry_frame(model_dir: Path, current_version: str | None) -> pd.DataFrame:
    """One row per saved model, newest last; ``is_current`` marks the one this run uses."""
    rows = []
    for artifact in list_artifacts(model_dir):
        meta = artifact.metadata
        metrics_ = meta.get("validation_metrics") or {}
        rows.append({
            "model_version": artifact.version,
            "created_at": pd.Timestamp(meta.get("created_at")),
            "is_current": artifact.version == current_version,
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
    columns = ["model_version", "created_at", "is_current", "horizon_days", "period_days",
               "sequence_periods", "training_cutoffs", "validation_cutoff", "training_rows",
               "validation_rows", "validation_loss", "normalized_gini", "aggregate_error",
               "decile_mape", "btyd_level_correction", "settings", "feature_count", "onnx_path",
               "sha256"]
    return pd.DataFrame(rows, columns=columns).astype({"btyd_level_correction": float})


# ---------------------------------------------------------------------------------------------
# Scoring


def _current_version(registry: pd.DataFrame) -> str:
    current = registry.loc[registry["is_current"].astype(bool), "model_version"]
    if current.empty:
        raise ModelMismatchError("clv_model_registry marks no current model; rebuild it")
    return str(current.iloc[0])


# BG/NBD + Gamma-Gamma at the as-of date is fitted on at most this many customers: above it, a
# uniform sample (by a hash of customer_id, the same on every run) estimates the four population
# parameters as well, and scoring memory no longer grows with the number of customers.
BTYD_FIT_ROWS = 200_000


def _btyd_fit_rows(relation: Any) -> pa.Table:
    """The four BTYD summary columns of the customers BG/NBD + Gamma-Gamma is fitted on.

    clv_scoring_examples is stored in customer_id order and DuckDB scans a table in the order
    it was written, so this read, like the scoring read, needs no sort (a sort would hold the
    whole table in memory) and returns the same rows in the same order on every run.
    """
    total = relation.aggregate("count(*)").fetchall()[0][0]
    if total > BTYD_FIT_ROWS:
        limit = int(np.ceil(_SAMPLE_BUCKETS * BTYD_FIT_ROWS / total))
        relation = relation.filter(f"hash(customer_id) % {_SAMPLE_BUCKETS} < {limit}")
    return stable_floats(as_table(relation.select(", ".join(hybrid.BTYD_INPUTS))))


def score(relation: Any, registry: pd.DataFrame, run: RunSettings,
          batch_rows: int = DEFAULT_BATCH_SIZE) -> pa.RecordBatchReader:
    """Stream the scoring examples through the current model; memory stays bounded.

    DuckDB hands over ``batch_rows`` rows at a time, the size of one onnxruntime call: larger
    reads only add memory (100,000-row reads held about 400 MB more at the peak).
    """
    version = _current_version(registry)
    schema_features = _feature_list(pa.schema(
        [pa.field(name, _arrow_type(kind))
         for name, kind in zip(relation.columns, relation.types, strict=True)]))
    model = load_verified(run.model_dir, version, _expected(schema_features, run))
    summary = _btyd_fit_rows(relation)
    if summary.num_rows == 0:
        raise ValueError("clv_scoring_examples is empty: no customer has a usable transaction "
                         "on or before the as-of date; check clv_data_quality and clv_as_of_date")
    if not pc.any(_has_repeat_buyer(summary)).as_py():
        raise ValueError("no customer in clv_scoring_examples bought on two different days on or "
                         "before the as-of date, so BG/NBD + Gamma-Gamma (model inputs) cannot be "
                         "fitted: load a longer history (clv_transactions) or set a later "
                         "clv_as_of_date")
    fitted = hybrid.predict(summary, run.horizon_days)
    fit = hybrid.BTYDFit(fitted.bgnbd, fitted.gamma_gamma)
    del summary, fitted
    dbt_log(f"scoring with model {version}")
    scored_at = pa.scalar(datetime.now(UTC).replace(tzinfo=None), pa.timestamp("us"))

    def with_btyd() -> Iterator[pa.RecordBatch]:
        # A fixed order makes every batch, and so every float32 result, the same run to run.
        for batch in relation.arrow(batch_rows):
            batch = stable_floats(batch)
            yield hybrid.with_btyd_features(batch, hybrid.predict(batch, run.horizon_days, fit))

    scores = score_batches(model, with_btyd(), passthrough=("btyd_expected_spend",))
    schema = scores.schema.append(pa.field("scored_at", pa.timestamp("us")))

    def stamped() -> Iterator[pa.RecordBatch]:
        for batch in scores:
            column = pa.repeat(scored_at, batch.num_rows)
            yield pa.RecordBatch.from_arrays([*batch.columns, column], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, stamped())


# ---------------------------------------------------------------------------------------------
# Evaluation tables


def _metadata_rows(registry: pd.DataFrame, key: str) -> list[dict]:
    rows = []
    for record in registry.to_dict("records"):
        path = Path(record["onnx_path"]).with_suffix(".json")
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for row in meta.get(key) or []:
            rows.append({"model_version": record["model_version"],
                         "is_current": bool(record["is_current"]),
                         "validation_cutoff": meta.get("validation_cutoff"), **row})
    return rows


def evaluation_table(registry: pd.DataFrame) -> pd.DataFrame:
    """One row per model per predictor: validation metrics from each model's metadata."""
    columns = ["model_version", "is_current", "validation_cutoff", "predictor", "customers",
               "actual_total", "predicted_total", "normalized_gini", "spearman",
               "aggregate_error", "decile_mape", "top_decile_capture", "mae", "rmse", "auc"]
    return pd.DataFrame(_metadata_rows(registry, "evaluation")).reindex(columns=columns)


def calibration_table(registry: pd.DataFrame) -> pd.DataFrame:
    """One row per model per predictor per decile: mean predicted vs mean actual."""
    columns = ["model_version", "is_current", "validation_cutoff", "predictor", "decile",
               "customers", "mean_predicted", "mean_actual"]
    return pd.DataFrame(_metadata_rows(registry, "calibration")).reindex(columns=columns)


# ---------------------------------------------------------------------------------------------
# Parquet export


EXPORT_SUFFIX = ".parquet"


def export_path(value: Any) -> Path:
    """The validated clv_export_path var: a ``.parquet`` file path, relative to the directory
    dbt runs in unless absolute."""
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValueError("Invalid value for var 'clv_export_path': must not be empty")
    path = Path(text)
    if path.suffix.lower() != EXPORT_SUFFIX:
        raise ValueError(f"Invalid value for var 'clv_export_path': expected a file name ending "
                         f"in {EXPORT_SUFFIX}, got {text!r}")
    if path.is_dir():
        raise ValueError(f"Invalid value for var 'clv_export_path': {text!r} is a directory")
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"Invalid value for var 'clv_export_path': {str(path.parent)!r} is not "
                         "a directory")
    return path


def _record_batches(relation: Any, batch_rows: int) -> pa.RecordBatchReader:
    """The relation as a stream of record batches (newer DuckDB releases call it
    to_arrow_reader, older ones fetch_record_batch)."""
    if isinstance(relation, pa.RecordBatchReader):
        return relation
    if hasattr(relation, "to_arrow_reader"):
        return relation.to_arrow_reader(batch_rows)
    return relation.fetch_record_batch(batch_rows)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def export_parquet(relation: Any, path: Path, batch_rows: int = 100_000) -> pd.DataFrame:
    """Write ``relation`` to ``path`` as Parquet so that a reader only ever sees the previous
    complete file or the new complete file; return one row: path, rows, written_at.

    The rows stream into a temporary file in the same directory (bounded memory), which is
    flushed to disk and then renamed over ``path``: a rename within one file system is atomic.
    A failure at any point leaves the previous file untouched and removes the temporary one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden name nobody else uses; created like any new file (permissions from the umask,
    # unlike mkstemp's owner-only ones), so other users' readers can open the result.
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    rows = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            batches = _record_batches(relation, batch_rows)
            with pq.ParquetWriter(handle, batches.schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
                    rows += batch.num_rows
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)
    written_at = datetime.now(UTC).replace(tzinfo=None)
    dbt_log(f"exported {rows:,} rows to {path}")
    return pd.DataFrame({"path": [str(path.resolve())], "rows": [rows],
                         "written_at": [pd.Timestamp(written_at)]})
