"""The training step: read the examples training needs, train or reuse a model, evaluate it.

Training reads a bounded sample (:func:`read_examples`), so its memory does not grow with the
number of customers. ``clv_retrain: auto`` reuses a saved model whose fingerprint (settings
plus a digest of the training examples) equals this run's. PyTorch and the exporter are
imported inside the training functions only: scoring never loads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clv import hybrid, level, metrics
from clv.artifacts import ModelArtifact, find_artifact, json_safe
from clv.baselines import naive_average_rate, naive_last_period
from clv.config import CUTOFF_COLUMN, ID_COLUMN, LABEL_COLUMN, TrainSettings
from clv.data import sorted_examples, stable_floats
from clv.pipeline.log import dbt_log
from clv.pipeline.registry import (
    model_features,
    newest_compatible,
    registry_frame,
    reusable,
)
from clv.pipeline.settings import RunSettings
from clv.warehouse import SAMPLE_BUCKETS, Warehouse

# Training cutoffs are sampled slightly above max_train_rows; train() then trims them exactly.
_OVERSAMPLE = 1.05


def fingerprint(warehouse: Warehouse, examples: Any, features: list[str], run: RunSettings,
                settings: TrainSettings) -> str:
    """Hash of the settings and a digest of the training data: equal means "same model"."""
    # Order-independent and exact: money as whole micro-units, so no float sum is involved.
    digest = warehouse.digest(examples, [
        f'"{ID_COLUMN}"', f'"{CUTOFF_COLUMN}"',
        f'cast(round("{LABEL_COLUMN}" * 1000000) as bigint)',
        'cast(round("revenue_total" * 1000000) as bigint)', '"t_days"'])
    payload = {
        "data": [str(value) for value in digest],
        "features": features,
        "run": {"horizon_days": run.horizon_days, "period_days": run.period_days,
                "sequence_periods": run.sequence_periods},
        "settings": settings.to_dict(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def sample_limits(counts: Mapping[Any, int], settings: TrainSettings) -> dict[str, int] | None:
    """Bucket limits per cutoff (ISO date; ``""`` for the others) for the rows training reads,
    or None to read every row.

    With several cutoffs the latest one is the validation set (at most max_validation_rows rows)
    and the others the training set (at most max_train_rows, with a little margin). With a
    single cutoff train() holds out customers itself, so the cap is the sum of the two.
    """
    def threshold(wanted: float, available: int) -> int:
        return min(SAMPLE_BUCKETS, int(np.ceil(SAMPLE_BUCKETS * wanted / max(available, 1))))

    if len(counts) <= 1:
        limit = threshold(_OVERSAMPLE * (settings.max_train_rows + settings.max_validation_rows),
                          sum(counts.values()))
        return None if limit >= SAMPLE_BUCKETS else {"": limit}
    latest = max(counts)
    train_limit = threshold(_OVERSAMPLE * settings.max_train_rows,
                            sum(n for cutoff, n in counts.items() if cutoff != latest))
    valid_limit = threshold(settings.max_validation_rows, counts[latest])
    if train_limit >= SAMPLE_BUCKETS and valid_limit >= SAMPLE_BUCKETS:
        return None
    return {latest.isoformat(): valid_limit, "": train_limit}


def read_examples(warehouse: Warehouse, examples: Any, run: RunSettings,
                  settings: TrainSettings) -> pa.Table:
    """The training examples as training reads them: only the id, cutoff, label and feature
    columns, sampled in the warehouse when there are more rows than training uses, float
    columns rounded, rows in a fixed order.

    Memory therefore depends on ``max_train_rows`` and ``max_validation_rows``, not on the
    number of customers; below those caps every row is read. The sample keeps the rows whose
    md5 bucket of (customer_id, cutoff_date) is lowest: uniform, independent of the scan order,
    the same rows on every run and every engine.
    """
    schema = warehouse.schema(examples)
    features = [name for name in model_features(schema, run) if name in schema.names]
    columns = [ID_COLUMN, CUTOFF_COLUMN, *([LABEL_COLUMN] if LABEL_COLUMN in schema.names
                                          else []), *features]
    counts = warehouse.counts_by(examples, CUTOFF_COLUMN)
    limits = sample_limits(counts, settings)
    if limits is not None:
        dbt_log(f"reading a uniform sample of the {sum(counts.values()):,} example rows "
                f"(max_train_rows {settings.max_train_rows:,}, max_validation_rows "
                f"{settings.max_validation_rows:,})")
    table = warehouse.sample(examples, columns, key=[ID_COLUMN, CUTOFF_COLUMN], limits=limits,
                             group=CUTOFF_COLUMN)
    # A fixed row order: the BTYD fits and the training batches must not depend on the scan.
    return sorted_examples(stable_floats(table))


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


def evaluate(result, table: pa.Table, run: RunSettings) -> tuple[list[dict], list[dict]]:
    """Validation metrics and decile calibration for the network and the baselines.

    The network is evaluated at its own level (network_clv after the spend calibration, before
    clv.level), with its purchase probability and the p10-p90 interval of its calibrated ZILN
    distribution; the baselines have neither, so their ``brier_score`` and
    ``p10_p90_coverage`` are None. Each evaluation row carries its predictor's gain curve
    (:func:`clv.metrics.gain_curve`, 100 rows) under ``gain_curve``.
    """
    import torch  # training only: scoring never loads PyTorch

    from clv.score import ziln_quantiles_numpy

    validation = result.validation.to_pandas()
    keys = table.select(["customer_id", CUTOFF_COLUMN, "revenue_last_horizon", "revenue_total",
                         "t_days", "btyd_expected_spend"]).to_pandas()
    merged = validation.merge(keys, on=["customer_id", CUTOFF_COLUMN], how="left")
    actual = merged["label"].to_numpy(dtype=float)
    # The calibrated network's distribution on the validation rows (same order), in chunks.
    chunks = max(1, -(-len(actual) // 16_384))
    with torch.no_grad():
        outputs = [result.model(torch.as_tensor(static, dtype=torch.float32),
                                torch.as_tensor(sequence, dtype=torch.float32))
                   for static, sequence in zip(np.array_split(result.validation_static, chunks),
                                               np.array_split(result.validation_sequence, chunks),
                                               strict=True)]
    p, _, mu, sigma = (torch.cat(parts).double().numpy() for parts in zip(*outputs, strict=True))
    interval = (ziln_quantiles_numpy(p, mu, sigma, 0.1), ziln_quantiles_numpy(p, mu, sigma, 0.9))
    predictions = {
        "network": (merged["predicted"].to_numpy(float), merged["probability"].to_numpy(float),
                    interval),
        # P(alive) is not P(buy in the horizon): the AUC of BTYD ranks by expected spend.
        "bgnbd_gamma_gamma": (merged["btyd_expected_spend"].to_numpy(float), None, None),
        "naive_last_horizon": (naive_last_period(merged["revenue_last_horizon"]), None, None),
        "naive_average_rate": (
            naive_average_rate(merged["revenue_total"], merged["t_days"], run.horizon_days),
            None, None),
    }
    evaluation, calibration = [], []
    for predictor, (predicted, probability, bounds) in predictions.items():
        scores = metrics.evaluate(actual, predicted, probability)
        evaluation.append({
            "predictor": predictor, "customers": len(actual),
            "actual_total": float(actual.sum()), "predicted_total": float(np.sum(predicted)),
            **scores,
            "brier_score": (None if probability is None
                            else metrics.brier_score(actual, probability)),
            "p10_p90_coverage": (None if bounds is None
                                 else metrics.interval_coverage(actual, *bounds)),
            "gain_curve": metrics.gain_curve(actual, predicted).to_dict("records"),
        })
        deciles = metrics.decile_calibration(actual, predicted)
        calibration += [{"predictor": predictor, **row} for row in deciles.to_dict("records")]
    return evaluation, calibration


def calibrate(result) -> dict[str, list[float]]:
    """Wrap the trained network in a monotone spend calibration fitted on the validation rows
    (see :mod:`clv.calibration`); updates ``result`` in place and returns the knots."""
    import torch

    from clv.calibration import CalibratedNetwork, fit_knots

    validation = result.validation
    predicted = validation.column("predicted").to_numpy(zero_copy_only=False).copy()
    knots_x, knots_y = fit_knots(predicted, validation.column("label").to_numpy())
    model = CalibratedNetwork(result.model, knots_x, knots_y).eval()
    with torch.no_grad():
        log_spend = torch.log(torch.as_tensor(predicted, dtype=torch.float32).clamp_min(1e-12))
        calibrated = torch.exp(model.log_spend_map(log_spend)).double().numpy()
    result.model = model
    result.validation = validation.set_column(
        validation.schema.get_field_index("predicted"), "predicted", pa.array(calibrated))
    return {"log_predicted": knots_x.tolist(), "log_calibrated": knots_y.tolist()}


def _train(warehouse: Warehouse, examples: Any, run: RunSettings, settings: TrainSettings,
           fingerprint_: str) -> ModelArtifact:
    from clv.export import export_model, update_metadata
    from clv.pipeline.explanations import training_metadata
    from clv.train import train

    table = read_examples(warehouse, examples, run, settings)
    table = trainable_examples(table, run, settings)
    dbt_log(f"training on {table.num_rows:,} example rows")
    table, fits = hybrid.add_features_per_cutoff(table, run.horizon_days)
    result = train(table, run.model_static_features, settings, log=dbt_log,
                   channels=run.channels)
    knots = calibrate(result)
    dbt_log(f"calibration: {len(knots['log_predicted'])} knots fitted on the validation cutoff")
    artifact = export_model(result, run.model_dir, {
        "fingerprint": fingerprint_,
        "horizon_days": run.horizon_days,
        "period_days": run.period_days,
    }, log=dbt_log)
    evaluation, calibration = evaluate(result, table, run)
    network = next(row for row in evaluation if row["predictor"] == "network")
    dbt_log("validation: " + ", ".join(
        f"{row['predictor']} gini {row['normalized_gini']:.3f} "
        f"aggregate error {row['aggregate_error']:+.1%}" for row in evaluation))
    # The reference customer and the importance of each feature group (clv.explain).
    explained = training_metadata(artifact, result, table, run, settings.seed)
    return update_metadata(artifact, json_safe({
        "period_days": run.period_days,
        "spend_calibration_knots": knots,
        "btyd_level_correction": level.btyd_level_correction(evaluation),
        "btyd_fits": {cutoff: fit.to_dict() for cutoff, fit in fits.items()},
        "validation_metrics": {k: v for k, v in network.items() if k != "predictor"},
        "evaluation": evaluation,
        "calibration": calibration,
        **explained,
    }))


def train_or_reuse(warehouse: Warehouse, examples: Any, run: RunSettings,
                   settings: TrainSettings | None = None) -> pd.DataFrame:
    """Train when clv_retrain asks for it; return the registry of every saved model."""
    settings = settings or TrainSettings(seed=run.seed, ensemble_size=run.ensemble_size)
    features = model_features(warehouse.schema(examples), run)
    if run.retrain == "never":
        current = newest_compatible(run, features)
        dbt_log(f"clv_retrain is 'never': scoring with saved model {current.version}")
    else:
        fingerprint_ = fingerprint(warehouse, examples, features, run, settings)
        saved = find_artifact(run.model_dir, fingerprint_) if run.retrain == "auto" else None
        if reusable(saved, run, features):
            current = saved
            dbt_log(f"reusing saved model {current.version}: same settings and data")
        else:
            current = _train(warehouse, examples, run, settings, fingerprint_)
    return registry_frame(run.model_dir, current.version)
