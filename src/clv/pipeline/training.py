"""The training step: read the examples training needs, train or reuse a model, evaluate it.

After training, the network's uncalibrated outputs on every example row feed three things: the
evaluation on the validation cutoff (with a calibration fitted on the training cutoffs, so no
reported figure was fitted to the labels it is measured on), the calibration of the model that
scores (:mod:`clv.calibration`, fitted on the window the level is carried from) and the spend
level's coefficients (:mod:`clv.level`, from every fully observed window). All of it is saved in
the model metadata.

Training reads a bounded sample (:func:`read_examples`: the example table holds only the rows
training uses), so its memory does not grow with the number of customers.
``clv_retrain: auto`` reuses a saved model whose fingerprint (settings
plus a digest of the training examples) equals this run's. PyTorch and the exporter are
imported inside the training functions only: scoring never loads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

import clv
from clv import hybrid, level, metrics
from clv.artifacts import ModelArtifact, find_artifact, json_safe
from clv.baselines import naive_average_rate, naive_last_period
from clv.config import (
    CUTOFF_COLUMN,
    FEATURE_DEFINITIONS,
    ID_COLUMN,
    LABEL_COLUMN,
    TrainSettings,
    available_cores,
)
from clv.data import sorted_examples, stable_floats
from clv.pipeline.log import dbt_debug, dbt_log
from clv.pipeline.registry import (
    model_features,
    newest_compatible,
    registry_frame,
    retrain_reason,
    reusable,
)
from clv.pipeline.settings import RunSettings
from clv.score import ziln_quantiles_numpy
from clv.warehouse import Warehouse

NONZERO = 1e-6  # a feature value counts as set above this magnitude (fingerprint)


def _whole_micro_units(column: str) -> str:
    """SQL: ``column`` in whole micro-units for the data's digest; beyond
    :data:`clv.level.MICRO_BOUND` (where micro-units overflow a bigint) in whole units, and 0
    beyond that or when not a number, the same on every engine."""
    value = f'"{column}"'
    return (f"case when abs({value}) < {level.MICRO_BOUND:.0f} then "
            f"cast(round({value} * 1000000) as bigint) "
            f"when abs({value}) < {level.MICRO_BOUND * 1e6:.0f} then "
            f"cast(round({value}) as bigint) else 0 end")


def fingerprint(warehouse: Warehouse, examples: Any, features: list[str], run: RunSettings,
                settings: TrainSettings) -> str:
    """Hash of the settings, the package version (its feature SQL) and a digest of the
    training data: equal means "same model".

    The data's digest is order-independent and the same on every engine, so a model trained on
    one is reused on another: each row's key, label, revenue and age (money as whole
    micro-units, so no float sum is involved), and per feature column how many rows set it
    (magnitude above :data:`NONZERO`), which tells when customer attributes or events were
    added for customers who had none, or removed, while the transactions stayed the same
    (not a value changed where one was set: exact sums of float features would differ in
    their last bits between engines, and a model would no longer be reused across them).
    """
    digest = warehouse.digest(examples, [
        f'"{ID_COLUMN}"', f'"{CUTOFF_COLUMN}"', _whole_micro_units(LABEL_COLUMN),
        _whole_micro_units("revenue_total"), '"t_days"'])
    columns = set(warehouse.schema(examples).names)
    present = [name for name in features if name in columns]
    counts = warehouse.query(examples, "select " + ", ".join(
        f'count(case when abs("{name}") > {NONZERO} then 1 end) as n{i}'
        for i, name in enumerate(present)) + " from {relation}") if present else None
    payload = {
        "data": [str(value) for value in digest],
        "set_rows": {name: int(counts.column(i)[0].as_py()) for i, name in enumerate(present)},
        "version": clv.__version__,
        "feature_definitions": FEATURE_DEFINITIONS,
        "features": features,
        "run": {"horizon_days": run.horizon_days, "period_days": run.period_days,
                "sequence_periods": run.sequence_periods},
        "settings": settings.to_dict(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_examples(warehouse: Warehouse, examples: Any, run: RunSettings) -> pa.Table:
    """The training examples as training reads them: only the id, cutoff, label and feature
    columns, float columns rounded, rows in a fixed order.

    Every row is read: the dbt model holds only the rows training uses, a uniform sample of the
    customers above ``clv_max_train_rows`` and ``clv_max_validation_rows``
    (models/2_intermediate/int_clv__training_sample.sql), so memory depends on those caps, not
    on the number of customers.
    """
    schema = warehouse.schema(examples)
    features = [name for name in model_features(schema, run) if name in schema.names]
    columns = [ID_COLUMN, CUTOFF_COLUMN, *([LABEL_COLUMN] if LABEL_COLUMN in schema.names
                                          else []), *features]
    table = warehouse.read(examples, columns)
    # A fixed row order: the BTYD fits and the training batches must not depend on the scan.
    return sorted_examples(stable_floats(table))


def _has_repeat_buyer(data: pa.Table) -> pa.ChunkedArray:
    """Per row: a customer Gamma-Gamma can be fitted on (a repeat purchase day with spend)."""
    return pc.and_(pc.greater(data.column("frequency"), 0),
                   pc.greater(data.column("monetary_value"), 0))


def _history_days(table: pa.Table, cutoff: str) -> int:
    """The days of history at ``cutoff``: its oldest customer's age (t_days)."""
    at_cutoff = table.filter(pc.equal(pc.cast(table.column(CUTOFF_COLUMN), pa.string()), cutoff))
    return int(pc.max(at_cutoff.column("t_days")).as_py() or 0)


def trainable_examples(table: pa.Table, run: RunSettings, settings: TrainSettings) -> pa.Table:
    """The training examples a model can be fitted on, or a ValueError that says why there are
    none and which var to change.

    Training cutoffs at which no customer has bought twice yet are dropped (with a log line):
    BG/NBD + Gamma-Gamma, whose outputs are network inputs, cannot be fitted there. That only
    happens to the earliest cutoffs, close to the first transaction. The latest training
    cutoff (with several cutoffs, the one before the latest, which validates) must see at
    least one activity period of history: a network trained on customers of a few days only
    extrapolates to the ones it scores (predictions many times their spend on real data; four
    months of data and a horizon of 90 days trained on customers 8 days old, whose
    purchase probability then hardly fell with the days since their last purchase).
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
        few = (f"clv_training_examples has only {table.num_rows} rows ({customers} customer(s) "
               f"at {len(cutoffs)} training cutoffs), fewer than the {settings.min_rows} "
               "training needs: ")
        history = _history_days(table, cutoffs[-1])
        if history < run.horizon_days:
            # the cutoffs sit at the data's start: more of them would fall before it
            raise ValueError(
                few + f"the latest cutoff, {cutoffs[-1]}, has {history} days of history before "
                "it, so more cutoffs would fall before the data. Lower clv_horizon_days (the "
                "training cutoffs lie clv_horizon_days and more before clv_as_of_date), set a "
                "later clv_as_of_date or load a longer history")
        raise ValueError(
            few + "point clv_transactions at the transactions of more customers, load a longer "
            "history, or raise clv_training_cutoffs")
    # the declared attributes but the sign-up date, which is null for every customer where
    # clv_customers has no sign-up column: clv_extra_features
    extra = [name for name in run.feature_groups.get("attributes", ())
             if name != "days_since_signup" and name in table.column_names]
    empty = [name for name in extra if not pc.any(pc.fill_null(pc.is_finite(
        table.column(name).cast(pa.float64())), False)).as_py()]
    if empty:
        raise ValueError(
            f"clv_extra_features: {', '.join(empty)} has no numeric value among the "
            f"{table.num_rows} training rows (no customer in clv_customers, empty cells, "
            "infinities, or text that is not a number: with a decimal comma, set "
            "clv_decimal_separator to ','); the network would learn nothing of it and read any "
            "value it later gets as new. Fill the column, or leave it out of "
            "clv_extra_features")
    fittable_cutoffs = pc.unique(table.filter(_has_repeat_buyer(table)).column(CUTOFF_COLUMN))
    fittable = {str(c) for c in fittable_cutoffs.to_pylist()}
    if not fittable:
        raise ValueError(
            f"no customer among the {customers} in clv_training_examples bought on two "
            "different days before any training cutoff: with single purchases only, neither "
            "BG/NBD + Gamma-Gamma nor the network can learn repeat buying. The latest cutoff, "
            f"{cutoffs[-1]}, has {_history_days(table, cutoffs[-1])} days of history before it: "
            "lower clv_horizon_days (the training cutoffs lie clv_horizon_days and more before "
            "clv_as_of_date), load a longer history (clv_transactions) or set a later "
            f"clv_as_of_date; or, if every customer id occurs once, {hybrid.ORDER_LEVEL_ID_HINT}")
    dropped = [c for c in cutoffs if c not in fittable]
    if dropped:
        dbt_log(f"training cutoffs {', '.join(dropped)} dropped: no customer had bought on two "
                "different days by then, so BG/NBD + Gamma-Gamma cannot be fitted there")
        table = table.filter(pc.is_in(table.column(CUTOFF_COLUMN), value_set=fittable_cutoffs))
    # the cutoff the network learns from last: with several, the latest only validates
    # (clv.train's split), so the one before it
    latest = sorted(fittable)[-2] if len(fittable) > 1 else max(fittable)
    history_days = _history_days(table, latest)
    if history_days < run.period_days:
        raise ValueError(
            f"the latest training cutoff, {latest}, has {history_days} days of history before "
            f"it, less than one activity period (clv_period_days, {run.period_days}): a network "
            "that learns from customers that young cannot learn repeat buying for the older "
            "customers it scores. Lower clv_horizon_days (the training cutoffs lie "
            "clv_horizon_days and more before clv_as_of_date), set a later clv_as_of_date or "
            "load a longer history")
    return table


@dataclass
class RawOutputs:
    """The trained network's outputs before calibration on rows of the example table, [N]
    each: expected spend, purchase logit and sigma (and the actual spend in the horizon)."""

    spend: np.ndarray
    logit: np.ndarray
    sigma: np.ndarray
    actual: np.ndarray

    def take(self, mask: np.ndarray) -> RawOutputs:
        return RawOutputs(self.spend[mask], self.logit[mask], self.sigma[mask], self.actual[mask])


def raw_outputs(model, table: pa.Table, spec) -> RawOutputs:
    """``model``'s uncalibrated outputs on every row of ``table``, in the table's row order,
    computed a cutoff at a time (so the inputs of only one cutoff are in memory)."""
    import torch  # training only: scoring never loads PyTorch

    from clv.data import labels, model_inputs
    from clv.loss import ziln_mean, ziln_parameters

    spend, logit, sigma = (np.empty(table.num_rows) for _ in range(3))
    cutoffs = table.column(CUTOFF_COLUMN)
    for cutoff in pc.unique(cutoffs).to_pylist():
        rows = np.asarray(pc.equal(cutoffs, cutoff).to_numpy(zero_copy_only=False), dtype=bool)
        static, sequence = model_inputs(table.filter(pa.array(rows)), spec)
        chunks = []
        with torch.no_grad():
            for start in range(0, len(static), 16_384):
                logits = model.logits(torch.from_numpy(static[start:start + 16_384]),
                                      torch.from_numpy(sequence[start:start + 16_384]))
                p, mu, scale = ziln_parameters(logits)
                chunks.append(torch.stack([ziln_mean(p, mu, scale), logits[:, 0], scale], 1))
        values = torch.cat(chunks).double().numpy()
        spend[rows], logit[rows], sigma[rows] = values[:, 0], values[:, 1], values[:, 2]
    return RawOutputs(spend, logit, sigma, labels(table).astype(np.float64))


def validation_mask(table: pa.Table, result) -> np.ndarray:
    """Rows of ``table`` that are the validation rows of ``result`` (the latest cutoff, or the
    held-out customers of a single cutoff)."""
    if result.validation_split == "latest_cutoff":
        cutoffs = pc.cast(table.column(CUTOFF_COLUMN), pa.string())
        return np.asarray(pc.equal(cutoffs, str(result.validation_cutoff)).to_numpy(
            zero_copy_only=False), dtype=bool)
    held = pc.unique(result.validation.column(ID_COLUMN).cast(pa.string()))
    ids = table.column(ID_COLUMN).cast(pa.string())
    return np.asarray(pc.is_in(ids, value_set=held).to_numpy(zero_copy_only=False), dtype=bool)


def evaluate(outputs: RawOutputs, calibration, table: pa.Table, mask: np.ndarray,
             run: RunSettings) -> tuple[list[dict], list[dict]]:
    """Validation metrics and decile calibration for the network and the baselines, on the
    rows ``mask`` of ``table`` (the validation cutoff).

    The network is evaluated at its own level (before clv.level) with ``calibration``, which
    the caller fitted on other rows (the training cutoffs), so no metric reads a prediction
    fitted to its own label. Those rows are the network's own training rows, so the
    calibration behind the probability and quantile metrics is fitted to in-sample residuals,
    unlike the one the model ships (fitted on the window the level is carried from): expected
    spend, purchase probability (AUC, Brier score, expected calibration error) and the
    quantiles of the calibrated ZILN distribution (p10-p90 coverage, the share above p90, the
    share below p10 of those whose p10 is above 0). The baselines have no probability and no
    quantiles: those metrics are None for them; each has the standard error of the network's
    normalized Gini minus its own (:func:`clv.metrics.gini_difference_se`). Each evaluation
    row carries its predictor's gain curve (:func:`clv.metrics.gain_curve`, 100 rows) under
    ``gain_curve``.
    """
    from clv.calibration import apply

    rows = outputs.take(mask)
    actual = rows.actual
    p, predicted, mu, sigma = apply(calibration, rows.spend, rows.logit, rows.sigma)
    keys = table.filter(pa.array(mask)).select(["revenue_last_horizon", "revenue_total",
                                                "t_days", "btyd_expected_spend"])

    def column(name: str) -> np.ndarray:
        return keys.column(name).to_numpy(zero_copy_only=False).astype(np.float64)

    p10, p90 = ziln_quantiles_numpy(p, mu, sigma, 0.1), ziln_quantiles_numpy(p, mu, sigma, 0.9)
    predictions = {
        "network": (predicted, p, (p10, p90)),
        # P(alive) is not P(buy in the horizon): the AUC of BTYD ranks by expected spend.
        "bgnbd_gamma_gamma": (column("btyd_expected_spend"), None, None),
        "naive_last_horizon": (naive_last_period(column("revenue_last_horizon")), None, None),
        "naive_average_rate": (
            naive_average_rate(column("revenue_total"), column("t_days"), run.horizon_days),
            None, None),
    }
    evaluation, calibration_rows = [], []
    for predictor, (values, probability, bounds) in predictions.items():
        scores = metrics.evaluate(actual, values, probability)
        evaluation.append({
            "predictor": predictor, "customers": len(actual),
            "actual_total": float(actual.sum()), "predicted_total": float(np.sum(values)),
            **scores,
            "brier_score": (None if probability is None
                            else metrics.brier_score(actual, probability)),
            "p10_p90_coverage": (None if bounds is None
                                 else metrics.interval_coverage(actual, *bounds)),
            "p90_exceedance": (None if bounds is None
                               else metrics.quantile_exceedance(actual, bounds[1])),
            "p10_shortfall": (None if bounds is None
                              else metrics.quantile_shortfall(actual, bounds[0])),
            "purchase_probability_ece": (
                None if probability is None
                else metrics.expected_calibration_error(actual, probability)),
            # how far the network's lead over this baseline would move with other customers
            "gini_difference_se": (None if predictor == "network" else
                                   metrics.gini_difference_se(actual, predicted, values,
                                                              seed=run.seed)),
            "gain_curve": metrics.gain_curve(actual, values).to_dict("records"),
        })
        deciles = metrics.decile_calibration(actual, values)
        calibration_rows += [{"predictor": predictor, **row}
                             for row in deciles.to_dict("records")]
    return evaluation, calibration_rows


def calibrate(result, outputs: RawOutputs | None = None, purchase_rate_factor: float = 1.0):
    """Wrap the trained network in the calibration of :mod:`clv.calibration`, fitted on
    ``outputs`` (default: the validation rows of ``result``) with the seasonal
    ``purchase_rate_factor``; updates ``result`` in place (model, and the validation rows'
    predicted spend and probability) and returns the :class:`clv.calibration.Calibration`."""
    import torch

    from clv import calibration as calibration_rules
    from clv.calibration import CalibratedNetwork

    if outputs is None:
        static = torch.as_tensor(result.validation_static, dtype=torch.float32)
        sequence = torch.as_tensor(result.validation_sequence, dtype=torch.float32)
        from clv.loss import ziln_mean, ziln_parameters

        with torch.no_grad():
            logits = result.model.logits(static, sequence)
            p, mu, sigma = ziln_parameters(logits)
            outputs = RawOutputs(ziln_mean(p, mu, sigma).double().numpy(),
                                 logits[:, 0].double().numpy(), sigma.double().numpy(),
                                 result.validation.column("label").to_numpy().astype(float))
    fitted = calibration_rules.fit(outputs.spend, outputs.logit, outputs.sigma, outputs.actual,
                                   purchase_rate_factor)
    result.model = CalibratedNetwork.from_calibration(result.model, fitted).eval()
    with torch.no_grad():
        probability, spend, *_ = result.model(
            torch.as_tensor(result.validation_static, dtype=torch.float32),
            torch.as_tensor(result.validation_sequence, dtype=torch.float32))
    validation = result.validation
    for name, values in (("predicted", spend), ("probability", probability)):
        validation = validation.set_column(validation.schema.get_field_index(name), name,
                                           pa.array(values.double().numpy()))
    result.validation = validation
    return fitted


def calibration_rows(table: pa.Table, validation: np.ndarray,
                     source: level.Window | None) -> np.ndarray:
    """Rows the scoring model's calibration is fitted on: those of the window the level is
    carried from (:func:`clv.level.level_source`), which is the validation cutoff unless the
    level is seasonal (then the same window a year back); the validation rows without one."""
    if source is None:
        return validation
    in_source = np.array([str(c)[:10] == source.cutoff.isoformat()
                          for c in table.column(CUTOFF_COLUMN).to_pylist()], dtype=bool)
    return validation if (in_source & validation).any() else in_source


def level_windows(table: pa.Table, outputs: RawOutputs,
                  validation: np.ndarray) -> list[level.Window]:
    """One :class:`clv.level.Window` per cutoff of ``table``: actual, BG/NBD and raw network
    totals over its rows (the label window is fully observed for every training cutoff), but
    a customer above a tenth of any of the three (rule 7, :func:`clv.level.others`), and
    whether the network was trained on them (no ``validation`` row in the window)."""
    windows = []
    cutoffs = table.column(CUTOFF_COLUMN)
    t_days = table.column("t_days").to_numpy(zero_copy_only=False).astype(np.float64)
    btyd = table.column("btyd_expected_spend").to_numpy(zero_copy_only=False).astype(np.float64)
    for cutoff in sorted(pc.unique(cutoffs).to_pylist()):
        rows = np.asarray(pc.equal(cutoffs, cutoff).to_numpy(zero_copy_only=False), dtype=bool)
        actual, predicted, network = outputs.actual[rows], btyd[rows], outputs.spend[rows]
        counted = level.others(actual, predicted, network)
        windows.append(level.Window(
            cutoff=_as_date(cutoff),
            customers=int(rows.sum()), history_days=level.history_days(t_days[rows]),
            actual_total=float(actual[counted].sum()),
            btyd_total=float(predicted[counted].sum()),
            network_total=float(network[counted].sum()),
            network_trained_on=not bool(validation[rows].any())))
    return windows


def revenue_periods(table: pa.Table, run: RunSettings) -> list[level.RevenuePeriods]:
    """Per cutoff, every customer's revenue per sequence period summed (the activity sequence's
    revenue channel); empty without that channel. Rows are a uniform sample of each cutoff's
    customers at most, so ratios within one cutoff are exact in expectation."""
    names = [f"seq_revenue_lag_{lag:02d}" for lag in range(1, run.sequence_periods + 1)]
    if not all(name in table.schema.names for name in names):
        return []
    cutoffs = table.column(CUTOFF_COLUMN)
    periods = []
    for cutoff in sorted(pc.unique(cutoffs).to_pylist()):
        rows = table.filter(pc.equal(cutoffs, cutoff))
        periods.append(level.RevenuePeriods(
            _as_date(cutoff), run.period_days,
            tuple(float(pc.sum(rows.column(name)).as_py() or 0.0) for name in names)))
    return periods


def trailing_year_revenue(table: pa.Table, validation: np.ndarray) -> list[tuple[date, float]]:
    """Per training cutoff (the validation cutoff's rows may be sampled at another rate), the
    revenue of the year before it, summed over the customers."""
    if "revenue_last_365d" not in table.schema.names:
        return []
    training = table.filter(pa.array(~validation))
    cutoffs = training.column(CUTOFF_COLUMN)
    return [(_as_date(cutoff), float(pc.sum(training.filter(pc.equal(cutoffs, cutoff)).column(
        "revenue_last_365d")).as_py() or 0.0)) for cutoff in pc.unique(cutoffs).to_pylist()]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _log_btyd_fits(fits: Mapping[str, hybrid.BTYDFit]) -> None:
    for cutoff, fit in fits.items():
        if fit.status != "maximum_likelihood":
            dbt_log(f"BG/NBD at cutoff {cutoff}: {fit.status} ({fit.reason}); a = "
                    f"{fit.bgnbd.a:.4g}, b = {fit.bgnbd.b:.4g}")


def _train(warehouse: Warehouse, examples: Any, run: RunSettings, settings: TrainSettings,
           fingerprint_: str) -> ModelArtifact:
    from clv import calibration as calibration_rules
    from clv.export import export_model, update_metadata
    from clv.pipeline.explanations import training_metadata
    from clv.train import torch_threads, train

    threads = settings.num_threads or available_cores()
    table = read_examples(warehouse, examples, run)
    table = trainable_examples(table, run, settings)
    dbt_log(f"training on {table.num_rows:,} example rows")
    table, fits = hybrid.add_features_per_cutoff(table, run.horizon_days)
    _log_btyd_fits(fits)
    result = train(table, run.model_static_features, settings, log=dbt_log,
                   channels=run.channels, detail=dbt_debug)
    with torch_threads(threads):  # the same outputs on any machine (clv.train.torch_threads)
        outputs = raw_outputs(result.model, table, result.spec)
    validation = validation_mask(table, result)
    # The reported metrics read the validation rows, so the calibration they are computed with
    # is fitted on the other rows (the training cutoffs). The model that scores is calibrated
    # on the window its level is carried from: the validation cutoff, the latest fully
    # observed window, or in seasonal mode the same window a year back.
    reported = calibration_rules.fit(*_calibration_inputs(outputs.take(~validation)))
    evaluation, calibration = evaluate(outputs, reported, table, validation, run)
    network = next(row for row in evaluation if row["predictor"] == "network")
    dbt_log("validation: " + ", ".join(
        f"{row['predictor']} gini {row['normalized_gini']:.3f} "
        f"aggregate error {row['aggregate_error']:+.1%}" for row in evaluation))
    windows = level_windows(table, outputs, validation)
    # The latest cutoff's label window ends on the as-of date the model is trained for.
    as_of = windows[-1].cutoff + timedelta(days=run.horizon_days)
    rows = calibration_rows(table, validation, level.level_source(windows, run.horizon_days,
                                                                  as_of))
    reference, history = level.reference_for(windows, run.horizon_days, as_of)
    periods = revenue_periods(table, run)
    growth = level.growth_per_day(trailing_year_revenue(table, validation))
    season = level.revenue_seasonal_factor(periods, run.horizon_days, as_of, history, reference,
                                           growth)
    # The season multiplies the total (the level below) and, through it, the purchase rate at
    # scoring (clv.level rule 6): the graph's probability is the calibration window's.
    with torch_threads(threads):
        production = calibrate(result, outputs.take(rows))
    where = ("the same window a year back" if rows is not validation
             else "the validation cutoff" if result.validation_split == "latest_cutoff"
             else "the held-out customers")
    dbt_log(f"calibration on {where}: {len(production.knots_x)} spend knots, "
            f"purchase logit x {production.probability_slope:.3f} "
            f"{production.probability_intercept:+.3f} with "
            f"{len(production.probability_knots)} bends, sigma x {production.sigma_scale:.3f}")
    calibrated = calibration_rules.apply(production, *_calibration_inputs(
        outputs.take(rows))[:3])[1]
    scale = float(calibrated.sum() / max(outputs.spend[rows].sum(), 1e-12))
    estimate = level.estimate_level(windows, run.horizon_days, as_of, calibration_scale=scale,
                                    seasonal_factor=season)
    dbt_log(f"spend level: BG/NBD x {estimate.btyd_level_correction:.4f} + network x "
            f"{estimate.network_level_weight:.4f} (network share {estimate.network_share:.2f}); "
            f"{estimate.reason}")
    artifact = export_model(result, run.model_dir, {
        "fingerprint": fingerprint_,
        "horizon_days": run.horizon_days,
        "period_days": run.period_days,
    }, log=dbt_log)
    # The reference customer and the importance of each feature group (clv.explain).
    explained = training_metadata(artifact, result, table, run, settings.seed)
    return update_metadata(artifact, json_safe({
        "period_days": run.period_days,
        "spend_calibration_knots": {"log_predicted": list(production.knots_x),
                                    "log_calibrated": list(production.knots_y)},
        "distribution_calibration": {
            "production": {**production.to_dict(), "fitted_on": where},
            "reported": {**reported.to_dict(), "fitted_on": "training cutoffs"}},
        "btyd_level_correction": estimate.btyd_level_correction,
        "network_level_weight": estimate.network_level_weight,
        # with the revenue rule 9 moves a seasonal level to another scoring date by
        "spend_level": {**estimate.to_metadata(),
                        "season_revenue": level.season_revenue(periods, growth, as_of)},
        "btyd_fits": {cutoff: fit.to_dict() for cutoff, fit in fits.items()},
        "validation_metrics": {k: v for k, v in network.items() if k != "predictor"},
        "evaluation": evaluation,
        "calibration": calibration,
        **explained,
    }))


def _calibration_inputs(outputs: RawOutputs) -> tuple[np.ndarray, ...]:
    return outputs.spend, outputs.logit, outputs.sigma, outputs.actual


def train_or_reuse(warehouse: Warehouse, examples: Any, run: RunSettings,
                   settings: TrainSettings | None = None,
                   preferred: Sequence[str] = ()) -> pd.DataFrame:
    """Train when clv_retrain asks for it; return the registry of every saved model. With
    clv_retrain = never, the first of ``preferred`` that fits the run scores
    (:func:`clv.pipeline.registry.newest_compatible`)."""
    settings = settings or TrainSettings(seed=run.seed, ensemble_size=run.ensemble_size,
                                         max_train_rows=run.max_train_rows,
                                         max_validation_rows=run.max_validation_rows)
    features = model_features(warehouse.schema(examples), run)
    if run.retrain == "never":
        current = newest_compatible(run, features, preferred)
        dbt_log(f"clv_retrain is 'never': scoring with saved model {current.version}")
    else:
        fingerprint_ = fingerprint(warehouse, examples, features, run, settings)
        saved = find_artifact(run.model_dir, fingerprint_) if run.retrain == "auto" else None
        if reusable(saved, run, features):
            current = saved
            dbt_log(f"reusing saved model {current.version}: same settings and data")
        else:
            if run.retrain == "auto" and saved is None:
                dbt_log("clv_retrain is 'auto' and no saved model was trained on these "
                        "examples with these settings and feature definitions: training one; "
                        + retrain_reason(run, features))
            current = _train(warehouse, examples, run, settings, fingerprint_)
    return registry_frame(run.model_dir, current.version)
