"""Score customers with a verified ONNX model in onnxruntime, streaming record batches.

:func:`load_verified` refuses a model whose file does not match its recorded sha256 or whose
features, horizon or sequence shape differ from the current run. :func:`score_batches` re-chunks
the input stream to a fixed batch size and yields output batches in input order, so memory stays
bounded by a few batches whatever the number of customers.

Parallelism: this graph is a chain of many small operators (the unrolled GRU), for which
onnxruntime's intra-op threads scale poorly. Running one single-threaded session concurrently on
several batches (onnxruntime releases the GIL, as do the numpy and pyarrow conversions) scales
almost linearly, so scoring keeps one batch in flight per core.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtri

from clv.artifacts import ModelArtifact, load_artifact, sha256_bytes
from clv.config import (
    ID_COLUMN,
    INPUT_NAMES,
    OUTPUT_NAMES,
    REQUIRED_OUTPUTS,
    ScoreSettings,
    available_cores,
)
from clv.data import FeatureSpec, iter_batches, model_inputs
from clv.level import EXP_LIMIT

DEFAULT_BATCH_SIZE = ScoreSettings().batch_size
DEFAULT_QUANTILES = ScoreSettings().quantiles
T = TypeVar("T")
R = TypeVar("R")


class ModelMismatchError(ValueError):
    """The saved model cannot be used for this run; the message says what differs."""


class SettingsMismatchError(ModelMismatchError):
    """The saved model is intact but was trained for other settings (features, horizon,
    sequence) than the run's."""


@dataclass(frozen=True)
class LoadedModel:
    artifact: ModelArtifact
    session: ort.InferenceSession  # thread-safe; run concurrently by score_batches
    spec: FeatureSpec
    workers: int  # batches scored concurrently
    graph: bytes | None = None  # the ONNX bytes the session was made from

    @property
    def version(self) -> str:
        return self.artifact.version

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled (to run on a distributed engine's executors) as the graph's bytes; each
        # unpickled copy scores one batch at a time, as an executor task gets one core.
        graph = self.graph if self.graph is not None else self.artifact.onnx_path.read_bytes()
        return _unpickle_model, (self.artifact, graph, self.spec)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.artifact.metadata

    @functools.cached_property
    def outputs(self) -> tuple[str, ...]:
        """The graph outputs of :data:`OUTPUT_NAMES` it has (a model saved by an earlier
        version lacks ``log_no_purchase``), read from the session once, not per batch."""
        have = {o.name for o in self.session.get_outputs()}
        return tuple(name for name in OUTPUT_NAMES if name in have)


def _unpickle_model(artifact: ModelArtifact, model_bytes: bytes, spec: FeatureSpec) -> LoadedModel:
    return LoadedModel(artifact=artifact, session=make_session(model_bytes), spec=spec, workers=1,
                       graph=model_bytes)


def quantile_column(q: float, name: str = "network_clv") -> str:
    """``<name>_pNN``: the column of quantile ``q`` of ``name``."""
    return f"{name}_p{round(q * 100):02d}"


def output_schema(quantiles: Sequence[float] = DEFAULT_QUANTILES,
                  passthrough: Sequence[str] = (), distribution: bool = False) -> pa.Schema:
    """The scores' columns; with ``distribution``, the ZILN's ``mu`` and ``sigma`` and
    ``log_no_purchase`` (NaN from a model without that output) follow the quantiles;
    ``passthrough`` input columns come last, as float64."""
    return pa.schema([pa.field(ID_COLUMN, pa.string()),
                      pa.field("purchase_probability", pa.float64()),
                      pa.field("network_clv", pa.float64())]
                     + [pa.field(quantile_column(q), pa.float64()) for q in quantiles]
                     + [pa.field(name, pa.float64())
                        for name in (("mu", "sigma", "log_no_purchase") if distribution else ())]
                     + [pa.field("model_version", pa.string())]
                     + [pa.field(name, pa.float64()) for name in passthrough])


def _describe_feature_difference(model: list[str], run: list[str]) -> str:
    missing = [c for c in model if c not in set(run)]
    unexpected = [c for c in run if c not in set(model)]
    if missing or unexpected:
        return f"feature list differs: missing {missing}, unexpected {unexpected}"
    first = next(i for i, (a, b) in enumerate(zip(model, run, strict=True)) if a != b)
    return (f"feature order differs: position {first} is {model[first]!r} in the model, "
            f"{run[first]!r} in the run")


def _mismatches(metadata: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    problems = []
    for key, want in expected.items():
        if key == "features":
            have, wanted = list(metadata.get("features") or []), list(want)
            if have != wanted:
                problems.append(_describe_feature_difference(have, wanted))
        elif key not in metadata:
            problems.append(f"{key}: missing from the model metadata, run {want!r}")
        else:
            have = metadata[key]
            wanted = list(want) if isinstance(want, tuple) else want
            if have != wanted and str(have) != str(wanted):
                problems.append(f"{key}: model {have!r}, run {wanted!r}")
    return problems


def _check_session(session: ort.InferenceSession, spec: FeatureSpec) -> list[str]:
    want = {"static": [len(spec.static)],
            "sequence": [spec.n_periods, len(spec.channels)]}
    have = {i.name: list(i.shape[1:]) for i in session.get_inputs()}
    problems = [f"ONNX input {name}: graph {have.get(name)}, metadata {shape}"
                for name, shape in want.items() if have.get(name) != shape]
    outputs = [o.name for o in session.get_outputs()]
    if outputs[:len(REQUIRED_OUTPUTS)] != list(REQUIRED_OUTPUTS):
        problems.append(f"ONNX outputs {outputs}, expected {list(REQUIRED_OUTPUTS)} first")
    return problems


def make_session(model: bytes | str | Path, intra_op_threads: int = 1) -> ort.InferenceSession:
    """CPU session with every graph optimisation (ORT_ENABLE_ALL).

    One intra-op thread by default: :func:`score_batches` gets its parallelism from running
    batches concurrently, which is faster for this graph than splitting each operator.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = intra_op_threads or available_cores()
    options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def load_verified(model_dir: str | Path, version: str | None = None,
                  expected: dict[str, Any] | None = None, num_threads: int = 0) -> LoadedModel:
    """Load a model artifact after checking it is intact and fits this run.

    Args:
        model_dir: directory holding ``clv_model_<version>.onnx/.json``.
        version: model version to load; the latest artifact when None.
        expected: run facts to compare with the metadata: ``features`` (list, order matters),
            ``horizon_days``, ``n_periods``, ``channels`` or any other metadata key.
        num_threads: batches scored concurrently; 0 = every core this process may use.
    Raises:
        ModelMismatchError: missing/modified/truncated file or metadata that differs from
            ``expected``; the message lists every difference.
    """
    try:
        artifact = load_artifact(Path(model_dir), version)
    except json.JSONDecodeError as error:
        raise ModelMismatchError(f"cannot load model {version}: its metadata is unreadable "
                                 f"({error})") from error
    except (FileNotFoundError, ValueError) as error:
        raise ModelMismatchError(f"cannot load model: {error}") from error
    metadata = artifact.metadata
    if not artifact.onnx_path.is_file():
        raise ModelMismatchError(f"ONNX file {artifact.onnx_path.name} is missing next to "
                                 f"{artifact.metadata_path.name}")
    onnx_bytes = artifact.onnx_path.read_bytes()  # hash and load the very same bytes
    digest = sha256_bytes(onnx_bytes)
    if digest != metadata.get("sha256"):
        raise ModelMismatchError(f"sha256 mismatch: file was modified or truncated "
                                 f"({artifact.onnx_path.name}: {digest}, metadata: "
                                 f"{metadata.get('sha256')})")
    try:
        spec = FeatureSpec.from_dict(metadata)
    except (KeyError, TypeError) as error:
        raise ModelMismatchError(f"metadata {artifact.metadata_path.name} lacks the feature "
                                 f"layout: {error}") from error
    problems = _mismatches(metadata, expected or {})
    if problems:
        raise SettingsMismatchError(f"model {artifact.version} does not match this run: "
                                 + "; ".join(problems))
    session = make_session(onnx_bytes)
    problems = _check_session(session, spec)
    if problems:
        raise ModelMismatchError(f"model {artifact.version} graph disagrees with its metadata: "
                                 + "; ".join(problems))
    return LoadedModel(artifact=artifact, session=session, spec=spec,
                       workers=num_threads or available_cores(), graph=onnx_bytes)


def ziln_quantiles_numpy(p: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                         q: float) -> np.ndarray:
    """q-quantile of the ZILN distribution: 0 if q <= 1 - p, else
    exp(mu + sigma * Phi^-1((q - 1 + p) / p)); all arrays [N] float64."""
    positive = q > 1.0 - p
    level = np.where(positive, (q - 1.0 + p) / np.where(positive, p, 1.0), 0.5)
    return np.where(positive, np.exp(mu + sigma * ndtri(level)), 0.0)


# How far above the most one training example spent in its horizon a customer's expected
# purchase may lie in their variance (spend_bound): in a large shop the examples are a sample of
# the customers, and its largest spender may not be in it.
SPEND_BOUND_MARGIN = 10.0


def spend_bound(metadata: Mapping[str, Any]) -> float | None:
    """The largest expected amount of one purchase a customer's variance allows, before the spend
    level: :data:`SPEND_BOUND_MARGIN` times the most one customer spent in one horizon among the
    model's training examples (``largest_horizon_spend``; None for a model saved before it was
    kept, or a value that is not a positive number).

    The network's lognormal learns from the customers who bought, so where it gives a purchase
    almost no chance, its location is an extrapolation: a lapsed subscriber with a purchase
    probability of 1e-6 and an expected value of 0.13 reads a purchase of 130,000, and the
    variance of such customers, small as their values are, swamped every other customer's in
    the range of a total (:func:`ziln_variance_numpy`)."""
    try:
        value = float(metadata.get("largest_horizon_spend"))
    except (TypeError, ValueError):
        return None
    return value * SPEND_BOUND_MARGIN if np.isfinite(value) and value > 0 else None


def ziln_variance_numpy(p: np.ndarray, mean: np.ndarray, sigma: np.ndarray,
                        bound: float | None = None) -> np.ndarray:
    """Variance of a ZILN spend with purchase probability ``p``, expected value ``mean`` and
    log-scale spread ``sigma`` (arrays [N] float64): a purchase with probability p, then a
    lognormal amount, so E[X^2] = mean^2 exp(sigma^2) / p and

        var = mean^2 (exp(sigma^2) / p - 1)

    (0 where p is 0; exp's argument bounded at EXP_LIMIT, as in the compiled SQL). With a
    positive ``bound`` on the amount's expected value (:func:`spend_bound` at the spend level),
    a purchase is at least ``mean / bound`` likely: p reads as ``min(1, max(p, mean / bound))``,
    so the expected value stays ``mean`` and an amount, ``mean / p``, above the bound comes
    down to it. (Bounding the amount alone would not do: any spend of that mean with a purchase
    as likely as p varies by at least mean^2 (1 / p - 1).)"""
    buys = p > 0.0
    if bound is not None:
        p = np.minimum(np.maximum(p, mean / bound), 1.0)
    second = np.exp(np.minimum(sigma * sigma, EXP_LIMIT)) / np.where(buys, p, 1.0)
    return np.where(buys, mean * mean * np.maximum(second - 1.0, 0.0), 0.0)


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``function`` of each item, in input order, with up to ``workers`` calls running at once
    in threads (onnxruntime, numpy and pyarrow release the GIL). Lazy: an item is read when a
    call is free, so at most ``workers`` items and ``workers + 1`` results are held at a time."""
    if workers <= 1:
        yield from (function(item) for item in items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="clv-score") as pool:
        in_flight: deque[Future[R]] = deque()
        try:
            for item in items:
                in_flight.append(pool.submit(function, item))
                if len(in_flight) >= workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        finally:
            for future in in_flight:
                future.cancel()


def rechunk(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Regroup a stream of batches into tables of exactly ``size`` rows (the last may be
    shorter), holding at most one chunk's worth of rows."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(size - count, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            count += take
            offset += take
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


# onnxruntime's CPU matrix kernels round a row's dot products the same whatever the row's
# position in a batch of a multiple of this many rows, but not in a short final block (measured
# on x86-64 with AVX-512: a batch of 4k + 1 rows gives its last row other last bits). Padding
# every call to a multiple keeps a customer's score the same in any batch, any subset.
ROW_BLOCK = 16


def run_rows(session: ort.InferenceSession, names: Sequence[str], static: np.ndarray,
             sequence: np.ndarray) -> list[np.ndarray]:
    """``session.run`` on rows padded with zero rows to a multiple of :data:`ROW_BLOCK`, the
    padding dropped from the outputs: every row's outputs are independent of the others."""
    rows = static.shape[0]
    padding = -rows % ROW_BLOCK
    if padding:
        static = np.concatenate([static, np.zeros((padding, *static.shape[1:]), static.dtype)])
        sequence = np.concatenate([sequence,
                                   np.zeros((padding, *sequence.shape[1:]), sequence.dtype)])
    outputs = session.run(list(names), {INPUT_NAMES[0]: static, INPUT_NAMES[1]: sequence})
    return [np.asarray(output)[:rows] for output in outputs]


def _score_chunk(model: LoadedModel, chunk: pa.Table, quantiles: Sequence[float],
                 schema: pa.Schema, version: pa.Array, distribution: bool) -> pa.RecordBatch:
    if ID_COLUMN not in chunk.schema.names:
        raise ModelMismatchError(f"scoring data has no {ID_COLUMN} column")
    missing = [c for c in model.spec.features if c not in chunk.schema.names]
    if missing:
        raise ModelMismatchError(f"scoring data lacks feature columns the model needs: {missing}")
    static, sequence = model_inputs(chunk, model.spec)
    outputs = [o.astype(np.float64) for o in run_rows(model.session, model.outputs, static,
                                                        sequence)]
    p, expected_value, mu, sigma = outputs[:4]
    ids = chunk.column(ID_COLUMN)
    ids = (ids if ids.type == pa.string() else pc.cast(ids, pa.string())).combine_chunks()
    columns = [ids, pa.array(p), pa.array(expected_value)]
    columns += [pa.array(ziln_quantiles_numpy(p, mu, sigma, q)) for q in quantiles]
    if distribution:
        no_purchase = outputs[4] if len(outputs) > 4 else np.full_like(p, np.nan)
        columns += [pa.array(mu), pa.array(sigma), pa.array(no_purchase)]
    columns.append(version.slice(0, chunk.num_rows))
    for name in schema.names[len(columns):]:
        if name not in chunk.schema.names:
            raise ModelMismatchError(f"scoring data has no {name} column to pass through")
        columns.append(pc.cast(chunk.column(name), pa.float64()).combine_chunks())
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def score_batches(model: LoadedModel, batches: Iterable[pa.RecordBatch] | pa.RecordBatchReader,
                  batch_size: int = DEFAULT_BATCH_SIZE,
                  quantiles: Sequence[float] = DEFAULT_QUANTILES,
                  passthrough: Sequence[str] = (),
                  distribution: bool = False) -> pa.RecordBatchReader:
    """Stream predictions for ``clv_scoring_examples`` batches.

    Args:
        model: from :func:`load_verified`.
        batches: RecordBatchReader, Table, DataFrame or any iterable of RecordBatches with
            ``customer_id`` and every model feature column; read lazily.
        batch_size: rows per onnxruntime call; ``model.workers`` calls run concurrently.
        quantiles: levels reported as ``network_clv_pNN``.
        passthrough: input columns copied to the output unchanged (as float64).
        distribution: also return the ZILN's ``mu`` and ``sigma`` (the scoring step levels
            the whole distribution, :func:`clv.level.leveled_distribution`).
    Returns:
        RecordBatchReader with customer_id, purchase_probability, network_clv, the quantile
        columns (float64), ``mu``, ``sigma`` and ``log_no_purchase`` with ``distribution``,
        model_version and the ``passthrough`` columns, rows in input order.
        At most ``model.workers + 1`` batches are held at a time.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    schema = output_schema(quantiles, passthrough, distribution)
    version = pa.array([model.version] * batch_size, pa.string())

    def score(chunk: pa.Table) -> pa.RecordBatch:
        return _score_chunk(model, chunk, quantiles, schema, version, distribution)

    chunks = rechunk(iter_batches(batches), batch_size)
    return pa.RecordBatchReader.from_batches(schema, ordered_map(score, chunks, model.workers))


def score_table(model: LoadedModel, data: Any, batch_size: int = DEFAULT_BATCH_SIZE) -> pa.Table:
    """Score everything at once (convenience for small inputs and tests)."""
    return score_batches(model, data, batch_size).read_all()
