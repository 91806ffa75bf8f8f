"""Train the ZILN network on the per-customer training examples.

The latest cutoff is held out for validation (with a single cutoff, a deterministic 20 % of
customers is). Rows are ordered by (cutoff_date, customer_id) before anything else, and every
random choice flows from ``TrainSettings.seed``, so the same data and seed give bit-identical
weights and predictions on the same machine and thread count.

Above ``max_train_rows`` training rows a uniform random subsample is taken (not stratified on
the label): it keeps the share of zero-spend customers, so the purchase probability stays
calibrated without re-weighting.

Below ``ENSEMBLE_BELOW_ROWS`` training rows (unless ``TrainSettings.ensemble_size`` says
otherwise) three networks are trained from seeds seed, seed + 1, seed + 2 and averaged in logit
space (:class:`clv.network.EnsembleNetwork`); the first is exactly the network a single run
would train.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from clv.config import CUTOFF_COLUMN, ID_COLUMN, TrainSettings, available_cores, set_seed
from clv.data import (
    FeatureSpec,
    as_table,
    feature_spec,
    fill_values,
    labels,
    model_inputs,
    sorted_examples,
)
from clv.loss import ziln_loss, ziln_mean, ziln_parameters
from clv.network import ClvNetwork, EnsembleNetwork, init_output_bias

_EVAL_CHUNK = 16_384
# Below this many training rows the automatic ensemble trains three networks instead of one.
ENSEMBLE_BELOW_ROWS = 100_000
_CUTOFF_HINT = ("set clv_as_of_date later than the first orders, or lower clv_horizon_days, "
                "clv_training_cutoffs or clv_cutoff_spacing_days so every training cutoff plus its "
                "horizon fits before clv_as_of_date")


@dataclass
class TrainResult:
    model: ClvNetwork | EnsembleNetwork  # in eval() mode, best validation weights
    spec: FeatureSpec  # feature columns and their order
    settings: TrainSettings
    normalisation: dict[str, list[float]]  # the standardisation buffers inside the network
    validation: pa.Table  # customer_id, cutoff_date, label, predicted, probability
    validation_loss: float  # best mean ZILN loss on the validation rows
    best_epoch: int  # of the first network
    epochs_run: int  # of the first network
    history: list[dict[str, float]]  # per network and epoch: member, epoch, losses, seconds
    train_rows: int  # rows used for fitting (after subsampling)
    train_rows_available: int  # training rows before subsampling
    training_cutoffs: list[str]  # ISO dates of every cutoff in the examples
    validation_split: str  # "latest_cutoff" or "customer_holdout"
    validation_cutoff: str | None  # the held-out cutoff for "latest_cutoff"
    validation_static: np.ndarray = field(repr=False)  # raw inputs of the validation rows
    validation_sequence: np.ndarray = field(repr=False)
    seconds: float = 0.0
    networks: int = 1  # averaged (ensemble_members)
    # the largest label of any example, the validation cutoff's included: the most one customer
    # spent in one horizon (clv.score.spend_bound)
    largest_label: float | None = None

    @property
    def features(self) -> list[str]:
        return list(self.spec.features)

    @property
    def validation_rows(self) -> int:
        return self.validation.num_rows


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's CPU threads set to ``count`` for the block, then restored. A matrix product
    splits its sums by thread, so a model's outputs are the same bit for bit only at the same
    count: everything that trains, calibrates or levels a model runs at the training's
    (``TrainSettings.num_threads``, 1 by default), whatever the machine's cores."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def build_network(spec: FeatureSpec, settings: TrainSettings) -> ClvNetwork:
    return ClvNetwork(n_static=len(spec.static), n_periods=spec.n_periods,
                      n_channels=len(spec.channels), conv_channels=settings.conv_channels,
                      gru_hidden=settings.gru_hidden, mlp_hidden=settings.mlp_hidden)


def _split(table: pa.Table, settings: TrainSettings) -> tuple[np.ndarray, str, str | None]:
    """Boolean validation mask over the sorted rows, the split kind and the held-out cutoff."""
    cutoffs = table.column(CUTOFF_COLUMN)
    distinct = pc.unique(cutoffs).drop_null()
    if len(distinct) > 1:
        latest = pc.max(distinct)
        mask = pc.fill_null(pc.equal(cutoffs, latest), False).to_numpy(zero_copy_only=False)
        return np.asarray(mask, dtype=bool), "latest_cutoff", str(latest.as_py())
    ids = table.column(ID_COLUMN).to_numpy(zero_copy_only=False)
    customers = np.unique(ids.astype(str))
    rng = np.random.default_rng(settings.seed)
    n_hold = min(max(1, round(settings.validation_fraction * len(customers))), len(customers) - 1)
    held = rng.choice(customers, size=n_hold, replace=False)
    return np.isin(ids.astype(str), held), "customer_holdout", None


def _mean_loss(model: ClvNetwork, static: torch.Tensor, sequence: torch.Tensor,
               y: torch.Tensor) -> float:
    """Mean ZILN loss over all rows, in eval mode without gradients."""
    return _validation_outputs(model, static, sequence, y, predictions=False)[0]


def _validation_outputs(model: ClvNetwork, static: torch.Tensor, sequence: torch.Tensor,
                        y: torch.Tensor, predictions: bool = True
                        ) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """Mean ZILN loss over all rows and, with ``predictions``, each row's expected value and
    purchase probability (float64), from one pass in eval mode without gradients; the model is
    left in the mode it was in."""
    training = model.training
    model.eval()
    total, value, prob = 0.0, [], []
    with torch.no_grad():
        for start in range(0, len(y), _EVAL_CHUNK):
            end = min(start + _EVAL_CHUNK, len(y))
            logits = model.logits(static[start:end], sequence[start:end])
            total += float(ziln_loss(logits, y[start:end])) * (end - start)
            if predictions:
                p, mu, sigma = ziln_parameters(logits)
                value.append(ziln_mean(p, mu, sigma).double().numpy())
                prob.append(p.double().numpy())
    model.train(training)
    return (total / max(len(y), 1), np.concatenate(value) if predictions else None,
            np.concatenate(prob) if predictions else None)


@dataclass
class _MemberFit:
    model: ClvNetwork
    normalisation: dict[str, list[float]]
    best_loss: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]]


def ensemble_members(train_rows: int, settings: TrainSettings) -> int:
    """How many networks to train: ``settings.ensemble_size``, or with 0 (automatic) three
    below ``ENSEMBLE_BELOW_ROWS`` training rows, where one network's result depends visibly on
    its random seed, and one above, where it does not and scoring stays fastest."""
    if settings.ensemble_size > 0:
        return settings.ensemble_size
    return 3 if train_rows < ENSEMBLE_BELOW_ROWS else 1


def _train_epoch(model: ClvNetwork, optimizer: torch.optim.Optimizer, order: torch.Tensor,
                 train_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                 settings: TrainSettings) -> float:
    """One pass of Adam over the training rows in ``order``; returns the mean training loss."""
    x_static, x_sequence, y_train = train_data
    total = 0.0
    for start in range(0, len(order), settings.batch_size):
        rows = order[start:start + settings.batch_size]
        loss = ziln_loss(model.logits(x_static[rows], x_sequence[rows]), y_train[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip_norm)
        optimizer.step()
        total += float(loss.detach()) * len(rows)
    return total / len(order)


def overlaps_validation(settings: TrainSettings) -> bool:
    """Whether an epoch's validation loss is computed on a second core while the next epoch
    trains: with one torch thread (the default) and a second core to run it on. Each thread's
    kernels then run on that thread alone, so every figure is what the sequential loop gives."""
    return settings.num_threads == 1 and available_cores() > 1


def _fit_member(spec: FeatureSpec, settings: TrainSettings, seed: int, static: np.ndarray,
                sequence: np.ndarray, labels_: np.ndarray,
                train_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                valid_data: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                detail: Callable[[str], None]) -> _MemberFit:
    """Train one network from seed ``seed``: Adam, early stopping on the validation loss; the
    weights of the best epoch are restored. Every epoch's losses go to ``detail``.

    With :func:`overlaps_validation`, epoch k's validation loss is computed on a copy of its
    weights in a second thread while epoch k + 1 trains; the decision to stop after epoch k is
    taken when both are done, and a stop discards epoch k + 1. The epochs, losses and weights
    are those of the sequential loop: only the wall time differs.
    """
    torch.manual_seed(seed)
    model = build_network(spec, settings)
    normalisation = model.set_normalisation(static, sequence)
    init_output_bias(model, labels_)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate,
                                 weight_decay=settings.weight_decay)
    shuffle = torch.Generator().manual_seed(seed)
    best: dict[str, Any] = {"loss": float("inf"), "epoch": 0, "state": None, "stale": 0}
    history: list[dict[str, float]] = []

    def stops(epoch: int, train_loss: float, valid_loss: float, state: dict[str, torch.Tensor],
              seconds: float) -> bool:
        """Record epoch ``epoch`` (``state``: its weights); True when training stops there."""
        history.append({"epoch": epoch, "train_loss": train_loss,
                        "validation_loss": valid_loss, "seconds": seconds})
        detail(f"epoch {epoch:3d}  train_loss {train_loss:.5f}  validation_loss "
               f"{valid_loss:.5f}  {seconds:.2f}s")
        if not np.isfinite(train_loss):
            raise ValueError(f"training diverged (train loss {train_loss}) at epoch {epoch}: "
                             "an input likely holds extreme values; check the amount "
                             "expression in clv_columns and the clv_extra_features columns, "
                             "or train with another clv_seed")
        if valid_loss < best["loss"] - settings.min_delta:
            best.update(loss=valid_loss, epoch=epoch, state=state, stale=0)
            return False
        best["stale"] += 1
        if best["stale"] >= settings.patience:
            detail(f"early stop after epoch {epoch}: no improvement for {best['stale']} epochs")
            return True
        return False

    def weights() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    model.train()
    pending = None  # (epoch, train loss, seconds, weights, validation loss future)
    with ThreadPoolExecutor(1, thread_name_prefix="clv-validation") as pool:
        for epoch in range(1, settings.max_epochs + 1):
            started = time.perf_counter()
            order = torch.randperm(len(train_data[2]), generator=shuffle)
            train_loss = _train_epoch(model, optimizer, order, train_data, settings)
            if not overlaps_validation(settings):
                valid_loss = _mean_loss(model, *valid_data)
                if stops(epoch, train_loss, valid_loss, weights(),
                         time.perf_counter() - started):
                    break
                continue
            trained = time.perf_counter() - started
            if pending is not None:
                *previous, future = pending
                waited = time.perf_counter()
                valid_loss = future.result()
                previous[2] += time.perf_counter() - waited
                if stops(previous[0], previous[1], valid_loss, previous[3], previous[2]):
                    pending = None
                    break
            snapshot = copy.deepcopy(model)
            pending = (epoch, train_loss, trained, snapshot.state_dict(),
                       pool.submit(_mean_loss, snapshot, *valid_data))
        if pending is not None:
            *last, future = pending
            stops(last[0], last[1], future.result(), last[3], last[2])
    if best["state"] is None:
        raise ValueError("the validation loss was never finite: an input likely holds extreme "
                         "values; check the amount expression in clv_columns and the "
                         "clv_extra_features columns")
    model.load_state_dict(best["state"])
    model.eval()
    return _MemberFit(model, normalisation, best["loss"], best["epoch"], len(history), history)


def train(examples, static_features: Sequence[str], settings: TrainSettings | None = None,
          log: Callable[[str], None] = print, channels: Sequence[str] = (),
          detail: Callable[[str], None] | None = None) -> TrainResult:
    """Fit the network on ``clv_training_examples`` (pyarrow Table/RecordBatchReader or pandas
    DataFrame) and return the best-validation model with its predictions.

    ``static_features`` declares the static inputs and ``channels`` orders the sequence
    channels (see :func:`clv.data.feature_spec`). ``log`` gets a few lines per training (the
    split, one line per network, the result); ``detail`` (default: ``log``) gets every epoch's
    train and validation loss.

    Raises:
        ValueError: no rows, too few rows, or no positive label among the training rows; the
            message names the dbt vars that control the example table.
    """
    settings = settings or TrainSettings()
    detail = detail or log
    started = time.perf_counter()
    table = as_table(examples)
    if table.num_rows == 0:
        raise ValueError(f"clv_training_examples has no rows: no customer has a purchase before "
                         f"a training cutoff; {_CUTOFF_HINT}")
    if table.num_rows < settings.min_rows:
        raise ValueError(f"clv_training_examples has only {table.num_rows} rows, fewer than "
                         f"min_rows={settings.min_rows}; {_CUTOFF_HINT}, or load more history")
    spec = feature_spec(table.schema, static_features, channels)
    table = sorted_examples(table)
    all_cutoffs = sorted(str(d) for d in pc.unique(table.column(CUTOFF_COLUMN)).to_pylist())
    is_validation, split_kind, validation_cutoff = _split(table, settings)
    train_idx = np.flatnonzero(~is_validation)
    valid_idx = np.flatnonzero(is_validation)
    y_all = labels(table)
    if len(train_idx) < settings.min_rows:
        raise ValueError(f"only {len(train_idx)} training rows before the held-out cutoff "
                         f"{validation_cutoff}, fewer than the {settings.min_rows} training "
                         "needs: the cutoffs before it hold too few customers. Lower "
                         "clv_horizon_days (every cutoff then lies later, where more customers "
                         "have bought), load a longer history, or, when the earlier cutoffs "
                         "still hold customers, raise clv_training_cutoffs")
    if not np.any(y_all[train_idx] > 0):
        training_cutoffs = [c[:10] for c in all_cutoffs if c != str(validation_cutoff)]
        raise ValueError(f"no positive label_revenue among the {len(train_idx)} training rows: no "
                         "customer spent anything in the horizon after a training cutoff ("
                         f"{', '.join(training_cutoffs)}; the validation cutoff "
                         f"{str(validation_cutoff)[:10]} is a horizon before the as-of date); "
                         "raise clv_horizon_days, or check clv_as_of_date (int_clv__as_of_date: "
                         "without the var, the last usable day), clv_training_cutoffs and "
                         "clv_cutoff_spacing_days against the dates of the transactions")
    available = len(train_idx)
    if available > settings.max_train_rows:
        rng = np.random.default_rng(settings.seed)
        train_idx = np.sort(rng.choice(train_idx, size=settings.max_train_rows, replace=False))
        log(f"subsampled {settings.max_train_rows} of {available} training rows (uniform, "
            f"seed {settings.seed})")

    # a missing value reads as the median of the rows the networks learn from
    spec = replace(
        spec, fill=fill_values(table.select(list(spec.static)).take(train_idx), spec))
    static_all, sequence_all = model_inputs(table, spec)
    x_static, x_sequence = torch.from_numpy(static_all[train_idx]), torch.from_numpy(
        sequence_all[train_idx])
    y_train = torch.from_numpy(y_all[train_idx].astype(np.float32))
    v_static_np, v_sequence_np = static_all[valid_idx], sequence_all[valid_idx]
    v_static, v_sequence = torch.from_numpy(v_static_np), torch.from_numpy(v_sequence_np)
    y_valid = torch.from_numpy(y_all[valid_idx].astype(np.float32))

    members = ensemble_members(len(train_idx), settings)
    log(f"training {members} network(s) on {len(train_idx):,} rows ({split_kind} validation: "
        f"{len(valid_idx):,} rows), {len(spec.static)} static features, {spec.n_periods} periods "
        f"x {len(spec.channels)} channels")
    with torch_threads(settings.num_threads or available_cores()):
        set_seed(settings.seed)
        fits = []
        for member in range(members):
            name = (f"network {member + 1} of {members}" if members > 1 else "network") + (
                f" (seed {settings.seed + member})")
            detail(name)
            member_start = time.perf_counter()
            fit = _fit_member(spec, settings, settings.seed + member, static_all[train_idx],
                              sequence_all[train_idx], y_all[train_idx],
                              (x_static, x_sequence, y_train), (v_static, v_sequence, y_valid),
                              detail)
            stopped = " (early stop)" if fit.epochs_run < settings.max_epochs else ""
            log(f"{name}: {fit.epochs_run} epochs{stopped}, best epoch {fit.best_epoch} with "
                f"validation_loss {fit.best_loss:.5f}, {time.perf_counter() - member_start:.1f} s")
            fits.append(fit)
        model = fits[0].model if members == 1 else EnsembleNetwork([f.model for f in fits])
        model.eval()
        best_loss, predicted, probability = _validation_outputs(model, v_static, v_sequence,
                                                                y_valid)
    best_epoch, epoch = fits[0].best_epoch, fits[0].epochs_run
    history = [dict(row, member=index) for index, fit in enumerate(fits) for row in fit.history]
    normalisation = fits[0].normalisation
    log(f"validation_loss {best_loss:.5f} ({members} network(s), best epochs "
        f"{', '.join(str(f.best_epoch) for f in fits)})")

    validation = pa.table({
        ID_COLUMN: table.column(ID_COLUMN).take(pa.array(valid_idx)),
        CUTOFF_COLUMN: table.column(CUTOFF_COLUMN).take(pa.array(valid_idx)),
        "label": pa.array(y_all[valid_idx], pa.float64()),
        "predicted": pa.array(predicted, pa.float64()),
        "probability": pa.array(probability, pa.float64()),
    })
    return TrainResult(
        model=model, spec=spec, settings=settings, normalisation=normalisation,
        validation=validation, validation_loss=best_loss, best_epoch=best_epoch,
        epochs_run=epoch, history=history, train_rows=len(train_idx),
        train_rows_available=available, training_cutoffs=all_cutoffs, networks=members,
        validation_split=split_kind, validation_cutoff=validation_cutoff,
        validation_static=v_static_np, validation_sequence=v_sequence_np,
        seconds=time.perf_counter() - started, largest_label=float(np.max(y_all)))
