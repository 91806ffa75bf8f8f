"""Settings for training, export and scoring, plus the one place that seeds every generator.

Settings are frozen dataclasses so a run cannot change them halfway. ``asdict`` of the training
and export settings is saved in the metadata JSON next to every exported model, and
``from_dict`` reads them back; the scoring settings are the defaults :mod:`clv.score` reads (the
threads it scores on are ``load_verified``'s argument).
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

# Column names shared by the dbt example tables and the Python package.
ID_COLUMN = "customer_id"
CUTOFF_COLUMN = "cutoff_date"
LABEL_COLUMN = "label_revenue"
LABEL_PREFIX = "label_"
SEQUENCE_PREFIX = "seq_"
# Columns that are never features even when numeric.
NON_FEATURE_COLUMNS = frozenset({ID_COLUMN, CUTOFF_COLUMN, "as_of_date", "horizon_days"})

# What the feature SQL computes, saved with every model (``feature_definitions``; a model saved
# before holds none: 1). A model scores the features it was trained on only while they agree.
FEATURE_DEFINITIONS = 2
FEATURE_CHANGES = {2: "the trailing windows fade out over their edge instead of ending at once"}

# ONNX graph interface. log_no_purchase is log(1 - purchase_probability) computed from the
# logit, exact where float32 rounds the probability to 1; a model saved by an earlier version
# has only the REQUIRED_OUTPUTS, and scoring then takes it from the probability.
INPUT_NAMES = ("static", "sequence")
OUTPUT_NAMES = ("purchase_probability", "network_clv", "mu", "sigma", "log_no_purchase")
REQUIRED_OUTPUTS = OUTPUT_NAMES[:4]


@dataclass(frozen=True)
class _Settings:
    """Shared JSON round trip for the settings dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Build settings from a dict (e.g. saved metadata); unknown keys are an error."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**clean)


@dataclass(frozen=True)
class TrainSettings(_Settings):
    """Network sizes and optimisation settings for :func:`clv.train.train`."""

    seed: int = 42  # seeds python, numpy, torch, the validation split, subsampling and shuffling
    # network
    conv_channels: int = 8  # Conv1d output channels over the period axis (kernel 3, same length)
    gru_hidden: int = 12  # GRU hidden size; its last state summarises the sequence
    mlp_hidden: tuple[int, ...] = (64, 32)  # hidden layers of the head over [static, GRU state]
    # networks trained from seeds seed, seed + 1, ... and averaged; 0 = automatic: 3 below
    # 100,000 training rows (where one network depends visibly on its seed), 1 above
    ensemble_size: int = 0
    # optimisation
    batch_size: int = 1024  # rows per Adam step
    learning_rate: float = 3e-3  # Adam step size
    weight_decay: float = 0.0  # L2 penalty inside Adam
    grad_clip_norm: float = 5.0  # clip the global gradient norm; 0 disables clipping
    max_epochs: int = 40  # hard cap on passes over the training rows
    patience: int = 5  # stop after this many epochs without a validation improvement
    min_delta: float = 1e-4  # smallest validation-loss decrease that counts as an improvement
    # data
    max_train_rows: int = 200_000  # uniform deterministic subsample above this many training rows
    # validation rows (the latest cutoff) for early stopping, calibration and evaluation: the
    # cap int_clv__training_sample applies in the warehouse (a uniform deterministic sample of
    # customers above it); train() itself uses every validation row it is given
    max_validation_rows: int = 200_000
    validation_fraction: float = 0.2  # share of customers held out when only one cutoff exists
    min_rows: int = 20  # fewer example rows than this (overall or for training) is an error
    # torch threads while training; 0 = every core. One thread is as fast for this small network
    # and immune to CPU contention (OpenMP spin-waits made 2 threads >10x slower on a busy host).
    # Results are bit-identical only for the same thread count.
    num_threads: int = 1

    def __post_init__(self) -> None:
        positive = ("conv_channels", "gru_hidden", "batch_size", "max_epochs", "max_train_rows",
                    "max_validation_rows")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"TrainSettings.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("TrainSettings.validation_fraction must be in (0, 1)")
        if self.ensemble_size < 0:
            raise ValueError("TrainSettings.ensemble_size must be >= 0 (0 = automatic)")
        if any(h < 1 for h in self.mlp_hidden):
            raise ValueError("TrainSettings.mlp_hidden sizes must be >= 1")


@dataclass(frozen=True)
class ExportSettings(_Settings):
    """How :func:`clv.export.export_model` writes and checks the ONNX graph."""

    opset: int = 18  # ONNX opset; 18 is read by every onnxruntime release of the last years
    # "auto" tries TorchScript (10-20x faster here, clv.export) then dynamo; or "dynamo" /
    # "torchscript"
    exporter: str = "auto"
    parity_rtol: float = 1e-4  # onnxruntime vs PyTorch relative tolerance on every output
    parity_atol: float = 1e-5  # absolute tolerance added to the relative one (values near 0)
    parity_rows: int = 2048  # held-out rows compared (plus synthetic rows and a batch of one)

    def __post_init__(self) -> None:
        if self.exporter not in ("auto", "dynamo", "torchscript"):
            raise ValueError(f"ExportSettings.exporter must be auto/dynamo/torchscript, got "
                             f"{self.exporter!r}")


@dataclass(frozen=True)
class ScoreSettings(_Settings):
    """onnxruntime scoring settings for :mod:`clv.score`."""

    batch_size: int = 16_384  # rows per onnxruntime call; input batches are re-chunked to this
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)  # network_clv_p10/_p50/_p90 before the level


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPUs a cgroup quota gives this process (a container started with ``--cpus 2``, a
    Kubernetes CPU limit): cgroup v2's ``cpu.max``, else v1's ``cpu.cfs_quota_us`` over
    ``cpu.cfs_period_us``; None without a quota or where there are no cgroups."""
    def read(path: Path) -> list[str] | None:
        try:
            return path.read_text().split()
        except (OSError, UnicodeDecodeError):
            return None

    try:
        fields = read(root / "cpu.max")
        if fields is not None:
            quota, period = [*fields, "100000"][:2]
            return None if quota == "max" else int(quota) / int(period)
        for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
            quota, period = read(root / folder / "cpu.cfs_quota_us"), \
                read(root / folder / "cpu.cfs_period_us")
            if quota and period:
                return None if int(quota[0]) <= 0 else int(quota[0]) / int(period[0])
    except (ValueError, ZeroDivisionError):
        return None
    return None


def available_cores() -> int:
    """Number of CPU cores this process may use: those it may run on, at most its cgroup
    quota rounded up (a container's CPU limit; a thread per host core would oversubscribe it)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # platforms without sched_getaffinity
        cores = max(1, os.cpu_count() or 1)
    limit = cgroup_cpu_limit()
    return cores if limit is None or limit <= 0 else max(1, min(cores, math.ceil(limit)))


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch, and make torch use deterministic kernels only."""
    import torch  # here, not at the top: scoring imports this module and never needs PyTorch

    random.seed(seed)
    # the legacy global generator on purpose: libraries below us may draw from it
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)
    # The switch itself: torch.use_deterministic_algorithms also sets the flag of
    # torch._inductor, whose import takes about 2 s, and nothing here compiles with it.
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if switch is None:
        torch.use_deterministic_algorithms(True)
    else:
        switch(True, warn_only=False)
