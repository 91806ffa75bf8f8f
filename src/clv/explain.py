"""Which inputs a model relies on, and why a customer's prediction differs from a typical
customer's: both by *feature group*, the units people reason in ("recency and frequency",
"the activity sequence") rather than the 80-odd columns of the network's input.

**Groups** (:func:`feature_groups`): the static groups declared in ``clv_feature_groups()``
(macros/clv_settings.sql, carried to Python by ``clv_run_settings``), then ``btyd`` (the BTYD
outputs, :data:`clv.hybrid.BTYD_FEATURES`), then ``activity_sequence`` (the whole sequence
input). Together they partition the network's inputs.

**Permutation importance** (:func:`permutation_importance`, once per training, on the
validation cutoff): one group's columns are shuffled jointly across the validation rows (one
row permutation for all of them, so the group keeps its own joint distribution and loses only
its link to the rest of the row and to the label), the network scores the shuffled rows, and
the drop in normalized Gini and the change in aggregate error against the label are reported,
averaged over a few permutations seeded from the run seed. With the graph split as below, the
sequences are encoded once and only the head runs for a static group's permutations.

**Explanations** (:func:`contributions`, :func:`explain_batches`, at scoring): a customer's
network output f(x) is compared with f(r) for the *reference customer* r, the per-column median
of the training examples in the network's input layout (:class:`Reference`, saved with the
model). The groups are switched from r's values to x's one at a time, in the group order and
again in the reverse order; a group's contribution is the mean over the two walks of the change
in f when it is switched (a two-permutation Shapley estimate: the exact Shapley value when the
groups interact at most in pairs, an additive network included; with an interaction among three
or more groups an estimate, which can split it unevenly). Each walk telescopes, so the
contributions add up to f(x) - f(r) by construction, up to float64 rounding (about 1e-12 of f):
the tests of that sum check the rounding, while each group's share is checked against a plain
recomputation and a hand-built graph. A group whose inputs equal r's changes no input row,
hence no output: its contribution is exactly 0, because every state of a customer is evaluated
at the same row offset (:data:`ROW_BLOCK`).

Cost: a customer takes 2m - 1 network rows, m being the number of groups whose inputs differ
from r's within its chunk (at most 10 with the default groups: 19 rows, against 1 for scoring).
But ``activity_sequence`` is the last group, so every inner state of the forward walk reads r's
sequence and every inner state of the backward walk the customer's own: only two sequences occur
per customer. The graph is therefore cut, in memory, where its sequence path meets the static
inputs (:func:`split_graph`): the *encoder* (the convolution and the unrolled GRU, most of the
graph's work) runs once per customer (and once for r per call), and only the *head* runs the
2m - 1 rows. The head is cut once more (:func:`split_static_transform`), after each member's
standardisation of the static inputs (signed log1p, centring, scaling: column by column), which
was most of a head row's cost: the customers' and r's static inputs are standardised once, the
states are assembled from standardised columns, and the 2m - 1 rows run the MLP and the ZILN
outputs alone. A customer with all ten groups active takes about 3.5 times a scoring row
instead of 16 to 19 (``bench/bench_explanations.py``).

The cuts change no value: encoder, transform and head are the graph's own nodes, and
onnxruntime computes each row of them bit for bit as the whole graph does (checked at load,
:func:`explanation_stages`, with the transform checked to read each column alone; a graph that
cannot be cut, or whose parts do not reproduce it, is run with fewer cuts or whole for every
state, and a log line says so). So what held exactly still does: the contributions add up to
f(x) - f(r) up to float64 rounding, a group equal to the reference contributes exactly 0, and
``predicted_clv`` is scoring's ``network_clv`` (the same offsets, :func:`contributions`).
Everything here runs the exported ONNX graph in onnxruntime, never PyTorch; the artifact file,
its hash and its metadata are not changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pyarrow as pa
import pyarrow.compute as pc

from clv import level, metrics
from clv.config import ID_COLUMN, INPUT_NAMES, OUTPUT_NAMES
from clv.data import FeatureSpec, iter_batches, model_inputs
from clv.hybrid import BTYD_FEATURES
from clv.level import SpendLevel
from clv.score import (
    DEFAULT_BATCH_SIZE,
    ROW_BLOCK,
    LoadedModel,
    ModelMismatchError,
    make_session,
    ordered_map,
    rechunk,
    run_rows,
)

BTYD_GROUP = "btyd"
SEQUENCE_GROUP = "activity_sequence"
TOP_DRIVERS = 3  # groups reported per customer
IMPORTANCE_REPEATS = 3  # permutations averaged per group
# Validation rows the importance is measured on, at most (a uniform sample beyond): the Gini
# drop of a group is stable to about 0.005 on this many rows, and the cost stays fixed
# however many customers the warehouse holds.
IMPORTANCE_MAX_ROWS = 50_000

# network_clv of each row (float64) for static [rows, n_static] and sequence inputs.
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]
# What the graph reads of each row's sequence [rows, ...] (float32), from sequence inputs.
Encode = Callable[[np.ndarray], np.ndarray]

EXPLANATION_SCHEMA = pa.schema(
    [pa.field(ID_COLUMN, pa.string()),
     pa.field("reference_clv", pa.float64()),
     pa.field("predicted_clv", pa.float64())]
    + [field for rank in range(1, TOP_DRIVERS + 1)
       for field in (pa.field(f"driver_{rank}_group", pa.string()),
                     pa.field(f"driver_{rank}_contribution", pa.float64()))]
    + [pa.field("contribution_total", pa.float64()),
       pa.field("model_version", pa.string()),
       pa.field("as_of_date", pa.date32())])


@dataclass(frozen=True)
class InputGroup:
    """One feature group's place in the network's inputs."""

    name: str
    columns: tuple[str, ...]  # its input columns in this model; empty when it has none
    static: tuple[int, ...]  # positions of its columns in the static input
    sequence: bool  # True for the whole sequence input

    @property
    def size(self) -> int:
        return len(self.columns)


def feature_groups(spec: FeatureSpec,
                   declared: Mapping[str, Sequence[str]]) -> list[InputGroup]:
    """The model's inputs by group, in a fixed order: the ``declared`` static groups
    (``RunSettings.feature_groups``) in their order, ``btyd``, ``activity_sequence``.

    A declared group whose columns are not model inputs is kept with no columns (it is reported
    with null importance). A column declared twice belongs to its first group, so the groups
    partition the inputs, which the contributions need to add up; a static input that no group
    declares is an error.
    """
    position = {name: index for index, name in enumerate(spec.static)}
    claimed: set[str] = set()
    groups = []
    for name, columns in [*declared.items(), (BTYD_GROUP, BTYD_FEATURES)]:
        own = tuple(dict.fromkeys(c for c in columns if c in position and c not in claimed))
        claimed.update(own)
        groups.append(InputGroup(name, own, tuple(position[c] for c in own), sequence=False))
    groups.append(InputGroup(SEQUENCE_GROUP, spec.sequence_columns, (), sequence=True))
    unclaimed = [name for name in spec.static if name not in claimed]
    if unclaimed:
        raise ValueError(f"model inputs {unclaimed} belong to no feature group: declare them in "
                         "clv_feature_groups() (macros/clv_settings.sql)")
    return groups


@dataclass(frozen=True)
class Reference:
    """The reference customer in the network's input layout (float32): per-column medians of
    the training examples, missing values read as their fill values like every input
    (:func:`clv.data.model_inputs`). A model with fill values takes them as the static
    medians (each input's median over its given values on the rows the networks learned
    from), so a customer without a value is the reference in that input and its group
    contributes 0 for it."""

    static: np.ndarray  # [n_static]
    sequence: np.ndarray  # [n_periods, n_channels], periods oldest first
    rows: int  # example rows the medians were taken over

    @classmethod
    def median_of(cls, static: np.ndarray, sequence: np.ndarray,
                  fill: Sequence[float] = ()) -> Reference:
        medians = (np.asarray(fill, dtype=np.float32) if len(fill) == static.shape[1]
                   else np.median(static, axis=0).astype(np.float32))
        return cls(medians, np.median(sequence, axis=0).astype(np.float32), len(static))

    def to_dict(self) -> dict[str, Any]:
        return {"method": "per-column median of the training examples (the static inputs' "
                "fill values where the model has them)", "rows": self.rows,
                "static": self.static.tolist(), "sequence": self.sequence.tolist()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], spec: FeatureSpec) -> Reference:
        """From model metadata; ModelMismatchError when its shape is not the model's."""
        reference = cls(np.asarray(values["static"], dtype=np.float32),
                        np.asarray(values["sequence"], dtype=np.float32), int(values["rows"]))
        shapes = (reference.static.shape, reference.sequence.shape)
        expected = ((len(spec.static),), (spec.n_periods, len(spec.channels)))
        if shapes != expected:
            raise ModelMismatchError(f"reference_inputs have shapes {shapes}, the model's inputs "
                                     f"{expected}")
        return reference


def session_predict(session: ort.InferenceSession) -> Predict:
    """``network_clv`` (float64) of every row, from one onnxruntime call."""
    def predict(static: np.ndarray, sequence: np.ndarray) -> np.ndarray:
        return run_rows(session, OUTPUT_NAMES[1:2], static, sequence)[0].astype(np.float64)
    return predict


def permutation_importance(stages: Stages, static: np.ndarray, sequence: np.ndarray,
                           label: np.ndarray, groups: Sequence[InputGroup], seed: int,
                           repeats: int = IMPORTANCE_REPEATS,
                           max_rows: int = IMPORTANCE_MAX_ROWS) -> list[dict[str, Any]]:
    """One row per group: normalized Gini and aggregate error of the network (``stages``, see
    :func:`parallel_stages`) against ``label`` on the given rows (a uniform sample of
    ``max_rows`` of them, drawn with ``numpy.random.default_rng(seed)``, when there are more),
    and after shuffling the group (``repeats`` permutations from
    ``numpy.random.default_rng([seed, group position])``, averaged). ``gini_drop`` > 0 means the
    model ranks worse without the group; ``gini_drop_std`` is its spread over the permutations.
    A group without columns gets null importance and ``repeats`` 0.

    The sequences are encoded once; a static group's permutations run the head only, the
    sequence group's encode the permuted sequences again."""
    if len(label) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(label), max_rows, replace=False))
        static, sequence, label = static[rows], sequence[rows], label[rows]
    encoded, prepared = stages.encode(sequence), stages.prepare(static)
    baseline = stages.head(prepared, encoded)
    base = {"baseline_gini": metrics.normalized_gini(label, baseline),
            "baseline_aggregate_error": metrics.aggregate_error(label, baseline)}
    rows = []
    for index, group in enumerate(groups):
        rng = np.random.default_rng([seed, index])
        ginis, errors = [], []
        for _ in range(repeats if group.size else 0):
            # one permutation of the rows for all of the group's columns
            order = rng.permutation(len(label))
            if group.sequence:
                predicted = stages.head(prepared, stages.encode(sequence[order]))
            else:
                columns = stages.columns(group.static, static.shape[1])
                shuffled = prepared.copy()
                shuffled[:, columns] = prepared[np.ix_(order, columns)]
                predicted = stages.head(shuffled, encoded)
            ginis.append(metrics.normalized_gini(label, predicted))
            errors.append(metrics.aggregate_error(label, predicted))
        drops = base["baseline_gini"] - np.asarray(ginis)
        rows.append({
            "feature_group": group.name, "columns": group.size, "repeats": len(ginis), **base,
            "permuted_gini": float(np.mean(ginis)) if ginis else None,
            "gini_drop": float(np.mean(drops)) if ginis else None,
            # the sample standard deviation; 0 for a single permutation
            "gini_drop_std": float(np.std(drops, ddof=1)) if len(ginis) > 1 else (
                0.0 if ginis else None),
            "permuted_aggregate_error": float(np.mean(errors)) if errors else None,
            "aggregate_error_change": (float(np.mean(errors) - base["baseline_aggregate_error"])
                                       if errors else None),
        })
    return rows


class UnsplittableGraphError(ValueError):
    """The graph has no cut between its sequence path and the rest; the message says why."""


@dataclass(frozen=True)
class GraphSplit:
    """An exported graph in two parts: ``encoder`` maps the ``sequence`` input to the tensors
    ``encoded`` (one per ensemble member: the last GRU state), which are all the rest of the
    graph reads of the sequence; ``head`` maps the ``static`` input and those tensors to
    ``network_clv``."""

    encoder: onnx.ModelProto
    head: onnx.ModelProto
    encoded: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]  # each encoded tensor's shape after the batch axis


@dataclass(frozen=True)
class StaticSplit:
    """A head (:attr:`GraphSplit.head`) in two parts: ``transform`` maps the ``static`` input
    to the tensors ``transformed`` (one per ensemble member, each [batch, n_static]: the
    standardised inputs), which are all the rest of the head reads of it; ``tail`` maps them
    and the encoded tensors to ``network_clv``."""

    transform: onnx.ModelProto
    tail: onnx.ModelProto
    transformed: tuple[str, ...]


def split_graph(proto: onnx.ModelProto) -> GraphSplit:
    """Cut ``proto`` (the exported graph, any exporter, calibrated or not) where its sequence
    path meets the static input, in memory.

    Every node is labelled with the graph inputs it depends on (the nodes are in topological
    order, as ONNX requires). The cut is the set of tensors computed from ``sequence`` alone
    that nodes depending on ``static`` read: the encoder is everything ``network_clv`` needs
    from ``sequence`` up to them, the head everything from ``static`` and them on.

    Raises:
        UnsplittableGraphError: ``network_clv`` does not depend on both inputs, a node reading
            the static input reads ``sequence`` itself, the graph has sub-graphs (control
            flow), or a cut tensor is not float32 [batch, fixed sizes...].
    """
    static, sequence = INPUT_NAMES
    graph = proto.graph
    if [i.name for i in graph.input] != list(INPUT_NAMES):
        raise UnsplittableGraphError(f"graph inputs {[i.name for i in graph.input]}, expected "
                                     f"{list(INPUT_NAMES)}")
    if any(attribute.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in graph.node for attribute in node.attribute):
        raise UnsplittableGraphError("the graph has control-flow sub-graphs")
    readers, depends = _dependencies(graph)
    if depends.get(OUTPUT_NAMES[1]) != frozenset(INPUT_NAMES):
        raise UnsplittableGraphError(f"{OUTPUT_NAMES[1]} does not depend on both inputs")
    encoded = tuple(dict.fromkeys(
        name for node, inputs in readers if static in inputs for name in node.input
        if depends.get(name) == {sequence}))
    if sequence in encoded:
        raise UnsplittableGraphError(f"nodes that read {static!r} read {sequence!r} itself")
    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {info.name: info.type.tensor_type for info in inferred.graph.value_info}
    shapes = []
    for name in encoded:
        tensor = types.get(name)
        dims = list(tensor.shape.dim) if tensor is not None else []
        if (tensor is None or tensor.elem_type != onnx.TensorProto.FLOAT or not dims
                or dims[0].HasField("dim_value") or any(d.dim_value < 1 for d in dims[1:])):
            raise UnsplittableGraphError(f"cut tensor {name!r} is not float32 [batch, fixed "
                                         "sizes...]")
        shapes.append(tuple(d.dim_value for d in dims[1:]))
    extractor = onnx.utils.Extractor(inferred)
    parts = (extractor.extract_model([sequence], list(encoded)),
             extractor.extract_model([static, *encoded], [OUTPUT_NAMES[1]]))
    for part in parts:
        onnx.checker.check_model(part)
    return GraphSplit(*parts, encoded, tuple(shapes))


def _dependencies(graph: onnx.GraphProto) -> tuple[list[tuple[onnx.NodeProto, frozenset[str]]],
                                                     dict[str, frozenset[str]]]:
    """Every node of ``graph`` (in topological order, as ONNX requires) with the graph inputs
    it depends on, and the same for every tensor."""
    depends: dict[str, frozenset[str]] = {i.name: frozenset({i.name}) for i in graph.input}
    readers = []
    for node in graph.node:
        inputs = frozenset().union(*(depends.get(name, frozenset()) for name in node.input))
        depends.update(dict.fromkeys(node.output, inputs))
        readers.append((node, inputs))
    return readers, depends


def split_static_transform(split: GraphSplit) -> StaticSplit:
    """Cut ``split.head`` where its static path meets the encoded sequence: the tensors
    computed from ``static`` alone that nodes reading the encoded tensors read (each member's
    standardised inputs, where the concatenation with its GRU state reads them).

    Raises:
        UnsplittableGraphError: no such tensor, or one that is not float32 [batch, n_static];
            whether each column depends on its own input column alone is checked on values
            (:func:`explanation_stages`).
    """
    static = INPUT_NAMES[0]
    head = split.head
    readers, depends = _dependencies(head.graph)
    transformed = tuple(dict.fromkeys(
        name for node, inputs in readers if inputs - {static}
        for name in node.input if depends.get(name) == {static}))
    if not transformed or static in transformed:
        raise UnsplittableGraphError("the head reads the static input itself, not a transform "
                                     "of it")
    width = next(i for i in head.graph.input if i.name == static).type.tensor_type.shape.dim[1]
    inferred = onnx.shape_inference.infer_shapes(head)
    types = {info.name: info.type.tensor_type for info in inferred.graph.value_info}
    for name in transformed:
        tensor = types.get(name)
        dims = list(tensor.shape.dim) if tensor is not None else []
        if (tensor is None or tensor.elem_type != onnx.TensorProto.FLOAT or len(dims) != 2
                or dims[0].HasField("dim_value") or dims[1].dim_value != width.dim_value):
            raise UnsplittableGraphError(f"transformed tensor {name!r} is not float32 [batch, "
                                         f"{width.dim_value}]")
    extractor = onnx.utils.Extractor(inferred)
    parts = (extractor.extract_model([static], list(transformed)),
             extractor.extract_model([*transformed, *split.encoded], [OUTPUT_NAMES[1]]))
    for part in parts:
        onnx.checker.check_model(part)
    return StaticSplit(*parts, transformed)


@dataclass(frozen=True)
class Stages:
    """``network_clv`` in three stages: ``encode`` (sequence inputs to what the graph reads of
    them), ``prepare`` (static inputs to what the graph reads of them: float32 [rows,
    copies * n_static], column j of the static inputs at j, j + n_static, ...), then ``head``
    (prepared static rows and encoded rows to ``network_clv``, float64).

    From :func:`split_graph` (``split``), the encoder is the graph's sequence path, run once
    per distinct sequence; with :func:`split_static_transform` as well, ``prepare`` is each
    member's standardisation of the static inputs, run once per customer, and the head reads
    the standardised columns (``copies`` = members). Otherwise ``prepare`` (and, for
    :func:`whole_graph`, ``encode``) returns its input and ``head`` reads the rest.
    """

    encode: Encode
    head: Predict
    split: bool
    prepare: Encode = np.asarray
    copies: int = 1

    def columns(self, static_columns: Sequence[int], n_static: int) -> list[int]:
        """The prepared columns that hold ``static_columns`` of the static inputs."""
        return [column + copy * n_static for copy in range(self.copies)
                for column in static_columns]

    def predict(self, static: np.ndarray, sequence: np.ndarray) -> np.ndarray:
        """``network_clv`` of raw inputs, through the three stages."""
        return self.head(self.prepare(static), self.encode(sequence))


def whole_graph(session: ort.InferenceSession) -> Stages:
    """The whole graph as the head, the inputs passed through."""
    return Stages(np.asarray, session_predict(session), split=False)


def _encoded_feeds(names: Sequence[str], shapes: Sequence[tuple[int, ...]],
                   encoded: np.ndarray) -> dict[str, np.ndarray]:
    """The encoded tensors, from one [rows, width] array holding them side by side."""
    bounds = np.cumsum([int(np.prod(shape)) for shape in shapes])[:-1]
    return {name: np.ascontiguousarray(part).reshape(len(encoded), *shape)
            for name, part, shape in zip(names, np.split(encoded, bounds, axis=1), shapes,
                                         strict=True)}


def split_stages(split: GraphSplit, static_split: StaticSplit | None = None) -> Stages:
    """onnxruntime sessions of ``split``'s encoder and head (made as scoring makes its own),
    or of its encoder and ``static_split``'s transform and tail; the encoded (and
    transformed) tensors travel as one [rows, width] array, side by side."""
    encoder = make_session(split.encoder.SerializeToString())

    def encode(sequence: np.ndarray) -> np.ndarray:
        outputs = encoder.run(list(split.encoded), {INPUT_NAMES[1]: sequence})
        return np.concatenate([output.reshape(len(sequence), -1) for output in outputs], axis=1)

    if static_split is None:
        head = make_session(split.head.SerializeToString())

        def predict(static: np.ndarray, encoded: np.ndarray) -> np.ndarray:
            feeds = _encoded_feeds(split.encoded, split.shapes, encoded)
            return head.run([OUTPUT_NAMES[1]], {INPUT_NAMES[0]: static, **feeds})[0].astype(
                np.float64)
        return Stages(encode, predict, split=True)

    transform = make_session(static_split.transform.SerializeToString())
    tail = make_session(static_split.tail.SerializeToString())
    members = len(static_split.transformed)

    def prepare(static: np.ndarray) -> np.ndarray:
        return np.concatenate(transform.run(list(static_split.transformed),
                                            {INPUT_NAMES[0]: static}), axis=1)

    def predict_prepared(prepared: np.ndarray, encoded: np.ndarray) -> np.ndarray:
        feeds = {name: np.ascontiguousarray(part)
                 for name, part in zip(static_split.transformed,
                                       np.split(prepared, members, axis=1), strict=True)}
        feeds |= _encoded_feeds(split.encoded, split.shapes, encoded)
        return tail.run([OUTPUT_NAMES[1]], feeds)[0].astype(np.float64)
    return Stages(encode, predict_prepared, split=True, prepare=prepare, copies=members)


def _check_rows(reference: Reference) -> tuple[np.ndarray, np.ndarray]:
    """:data:`ROW_BLOCK` rows to check a split on: the reference and seeded random rows."""
    rng = np.random.default_rng(0)
    rows = ROW_BLOCK - 1
    static = np.vstack([reference.static, rng.normal(0, 100, (rows, *reference.static.shape))])
    sequence = np.vstack([reference.sequence[None],
                          rng.poisson(2.0, (rows, *reference.sequence.shape))])
    return static.astype(np.float32), sequence.astype(np.float32)


def _columnwise(stages: Stages, static: np.ndarray) -> bool:
    """Whether each prepared column reads its own static column alone, on values: preparing
    a mix of two row sets, column by column, gives the same mix of the prepared rows."""
    rng = np.random.default_rng(1)
    other = rng.normal(0, 100, static.shape).astype(np.float32)
    prepared, prepared_other = stages.prepare(static), stages.prepare(other)
    for _ in range(3):
        mask = rng.random(static.shape) < 0.5
        mixed = np.tile(mask, stages.copies)
        if not np.array_equal(stages.prepare(np.where(mask, static, other)),
                              np.where(mixed, prepared, prepared_other)):
            return False
    return True


def explanation_stages(model: LoadedModel, reference: Reference,
                       log: Callable[[str], None] = print) -> Stages:
    """The model's graph split into encoder, static transform and head (:func:`split_graph`,
    :func:`split_static_transform`, in memory: the artifact is not changed), provided the parts
    reproduce the whole graph's ``network_clv`` bit for bit on :data:`ROW_BLOCK` rows (the
    reference and seeded random rows, in one batch) and the transform is column by column;
    else encoder and head alone under the same check; else the whole graph, with a ``log``
    line saying why."""
    whole = whole_graph(model.session)
    static, sequence = _check_rows(reference)
    expected = whole.predict(static, sequence)

    def checked(stages: Stages, what: str) -> Stages:
        if not np.array_equal(stages.predict(static, sequence), expected):
            raise UnsplittableGraphError(f"{what} do not reproduce the whole graph")
        return stages

    try:
        graph = model.graph if model.graph is not None else model.artifact.onnx_path.read_bytes()
        split = split_graph(onnx.load_from_string(graph))
    except Exception as error:  # noqa: BLE001 - any failure leaves the whole graph in use
        return _whole(whole, model, error, log)
    try:  # the usual case: three stages, no session made twice
        prepared = checked(split_stages(split, split_static_transform(split)),
                           "transform and tail")
        if not _columnwise(prepared, static):
            raise UnsplittableGraphError("the transform reads across columns")
        return prepared
    except Exception as error:  # noqa: BLE001 - any failure leaves encoder and head in use
        cut = error
    try:
        stages = checked(split_stages(split), "encoder and head")
    except Exception as error:  # noqa: BLE001
        return _whole(whole, model, error, log)
    log(f"explanations run the static inputs' transform of model {model.version} for every "
        f"state (slower): it cannot be cut from the head ({type(cut).__name__}: {cut})")
    return stages


def _whole(whole: Stages, model: LoadedModel, error: Exception,
           log: Callable[[str], None]) -> Stages:
    log(f"explanations run the whole graph of model {model.version} for every state, its "
        f"sequence encoder included (slower): it cannot be split ({type(error).__name__}: "
        f"{error})")
    return whole


def parallel_stages(stages: Stages, workers: int, chunk_rows: int = DEFAULT_BATCH_SIZE) -> Stages:
    """``stages`` over arrays already in memory (the validation rows of permutation
    importance): each call in chunks of ``chunk_rows`` rows, ``workers`` at a time. A row sits
    at the same offset of its chunk in every call, as it would in one whole-graph call."""
    def chunked(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        def run(*arrays: np.ndarray) -> np.ndarray:
            starts = range(0, len(arrays[0]), chunk_rows)
            with ThreadPoolExecutor(workers, thread_name_prefix="clv-explain") as pool:
                return np.concatenate(list(pool.map(
                    lambda s: function(*(array[s:s + chunk_rows] for array in arrays)), starts)))
        return run
    return Stages(chunked(stages.encode), chunked(stages.head), stages.split,
                  chunked(stages.prepare), stages.copies)


@dataclass(frozen=True)
class Contributions:
    """Network outputs (network_clv units) for a set of customers."""

    reference: np.ndarray  # [rows] f(reference), the same value on every row
    prediction: np.ndarray  # [rows] f(customer)
    by_group: np.ndarray  # [rows, groups]; sums to prediction - reference across groups


def _differs(group: InputGroup, static: np.ndarray, sequence: np.ndarray,
             reference: Reference) -> bool:
    """Whether any of the customers has an input of ``group`` unlike the reference's."""
    if group.sequence:
        return bool(np.any(sequence != reference.sequence))
    columns = list(group.static)
    return bool(columns) and bool(np.any(static[:, columns] != reference.static[columns]))


def _aligned(rows: int) -> int:
    """``rows`` rounded up to a multiple of :data:`ROW_BLOCK`."""
    return -(-rows // ROW_BLOCK) * ROW_BLOCK


def _states(static: np.ndarray, encoded: np.ndarray, reference_static: np.ndarray,
            reference_encoded: np.ndarray, switched: Sequence[Sequence[InputGroup]],
            columns: Callable[[Sequence[int]], list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Head inputs in blocks of ``_aligned(rows)`` rows: per entry of ``switched``, the
    reference with those groups' inputs replaced by each customer's; then the customers; then
    :data:`ROW_BLOCK` reference rows (a lone last row of a call is rounded differently for some
    inputs). Rows past ``rows`` in a block repeat the reference. ``static``,
    ``encoded`` and the reference's are the inputs as the head reads them
    (:attr:`Stages.prepare`, :attr:`Stages.encode`); ``columns`` maps a group's static columns
    to the head's (:meth:`Stages.columns`)."""
    rows, stride = len(static), _aligned(len(static))
    total = (len(switched) + 1) * stride + ROW_BLOCK
    stacked_static = np.empty((total, *static.shape[1:]), np.float32)
    stacked_encoded = np.empty((total, *encoded.shape[1:]), np.float32)
    stacked_static[:], stacked_encoded[:] = reference_static, reference_encoded
    for block, groups in enumerate(switched):
        part = slice(block * stride, block * stride + rows)
        switched_columns = columns([index for group in groups for index in group.static])
        stacked_static[part, switched_columns] = static[:, switched_columns]
        if any(group.sequence for group in groups):
            stacked_encoded[part] = encoded
    customers = slice(len(switched) * stride, len(switched) * stride + rows)
    stacked_static[customers], stacked_encoded[customers] = static, encoded
    return stacked_static, stacked_encoded


def contributions(stages: Stages, static: np.ndarray, sequence: np.ndarray,
                  reference: Reference, groups: Sequence[InputGroup]) -> Contributions:
    """Each group's contribution to f(x) - f(reference) for every customer (see the module
    docstring), from one ``stages.encode`` and one ``stages.prepare`` call over the customers'
    inputs and the reference's (``_aligned(rows + 1)`` rows each) and one ``stages.head`` call
    over about (2m - 1) * rows + ROW_BLOCK rows, m being the number of groups in which some customer
    differs from the reference (the others contribute exactly 0 and leave every step of the
    walks unchanged, so they are not evaluated).

    Every block of the head call starts at a multiple of :data:`ROW_BLOCK` rows, so a
    customer's row sits at the same offset in each, as in the encoder and transform calls:
    equal inputs give equal outputs, and a customer's prediction equals scoring's when the
    customer's offset in ``static`` is its offset in the scoring batch modulo ROW_BLOCK. The
    encoder and transform calls are padded with the reference to a multiple of ROW_BLOCK
    rows, so no row of them is a batch's remainder (which onnxruntime may round differently).
    """
    rows, stride = len(static), _aligned(len(static))
    active = [k for k, group in enumerate(groups) if _differs(group, static, sequence, reference)]
    m = len(active)
    # The inner states of the two walks: the first j active groups switched, the last j.
    switched = ([[groups[k] for k in active[:j]] for j in range(1, m)]
                + [[groups[k] for k in active[m - j:]] for j in range(1, m)])
    padded = _aligned(rows + 1)
    sequences = np.empty((padded, *sequence.shape[1:]), np.float32)
    sequences[:rows], sequences[rows:] = sequence, reference.sequence
    statics = np.empty((padded, *static.shape[1:]), np.float32)
    statics[:rows], statics[rows:] = static, reference.static
    encoded, prepared = stages.encode(sequences), stages.prepare(statics)
    values = stages.head(*_states(prepared[:rows], encoded[:rows], prepared[rows], encoded[rows],
                                  switched, lambda c: stages.columns(c, static.shape[1])))
    blocks = len(switched)
    f_reference, f_customer = values[-ROW_BLOCK], values[blocks * stride:blocks * stride + rows]
    steps = values[:blocks * stride].reshape(blocks, stride)[:, :rows]
    start = np.full((1, rows), f_reference)
    by_group = np.zeros((rows, len(groups)))
    if m:
        forward_walk = np.diff(np.vstack([start, steps[:m - 1], f_customer[None]]), axis=0)
        backward_walk = np.diff(np.vstack([start, steps[m - 1:], f_customer[None]]), axis=0)
        by_group[:, active] = 0.5 * (forward_walk + backward_walk[::-1]).T
    return Contributions(np.full(rows, f_reference), f_customer, by_group)


def _drivers(ids: pa.ChunkedArray | pa.Array, result: Contributions,
             groups: Sequence[InputGroup], spend: SpendLevel,
             version: str, as_of: date | None = None) -> pa.RecordBatch:
    """One explanation row per customer, in currency (the network's values at the spend level,
    as :func:`clv.level.apply` makes ``predicted_clv``): the TOP_DRIVERS groups by absolute
    contribution (ties in group order); ranks whose contribution is 0 are null. ``as_of``: the
    scoring run's as-of date, on every row (null when not given)."""
    by_group = level.apply(result.by_group, spend)
    names = np.array([group.name for group in groups], dtype=object)
    ranked = np.argsort(-np.abs(by_group), axis=1, kind="stable")
    ids = ids if ids.type == pa.string() else pc.cast(ids, pa.string())
    columns: list[Any] = [ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids,
                          pa.array(level.apply(result.reference, spend)),
                          pa.array(level.apply(result.prediction, spend))]
    for rank in range(TOP_DRIVERS):
        pick = ranked[:, rank] if rank < len(groups) else np.zeros(len(by_group), dtype=int)
        value = np.take_along_axis(by_group, pick[:, None], axis=1)[:, 0]
        missing = (value == 0) | (rank >= len(groups))
        columns += [pa.array(names[pick], pa.string(), mask=missing),
                    pa.array(value, pa.float64(), mask=missing)]
    columns += [pa.array(by_group.sum(axis=1)), pa.array([version] * len(by_group), pa.string()),
                pa.array([as_of] * len(by_group), pa.date32())]
    return pa.RecordBatch.from_arrays(columns, schema=EXPLANATION_SCHEMA)


def explain_batches(model: LoadedModel, batches: Iterable[pa.RecordBatch] | pa.RecordBatchReader,
                    groups: Sequence[InputGroup], reference: Reference, spend: SpendLevel,
                    batch_rows: int = DEFAULT_BATCH_SIZE,
                    log: Callable[[str], None] = print,
                    as_of: date | None = None) -> pa.RecordBatchReader:
    """Stream one explanation row per input row, in input order (:data:`EXPLANATION_SCHEMA`).

    Args:
        model: from :func:`clv.score.load_verified`.
        batches: scoring examples with every model input, the BTYD outputs included
            (:func:`clv.pipeline.scoring.with_btyd`); read lazily.
        groups: from :func:`feature_groups`.
        reference: the model's :class:`Reference`.
        spend: the scoring run's spend level (:mod:`clv.level`): values are in the units of
            ``predicted_clv``.
        batch_rows: customers per chunk, as in scoring (also about the rows of each head
            call); ``model.workers`` chunks are explained concurrently, so memory stays bounded.
        log: where :func:`explanation_stages` says so when the graph is run whole.
        as_of: the scoring run's as-of date, written on every row (the explanations' date).
    """
    stages = explanation_stages(model, reference, log)
    # Customers per contributions() call: about batch_rows head rows, a multiple of ROW_BLOCK.
    per_call = max(ROW_BLOCK, batch_rows // (2 * len(groups)) // ROW_BLOCK * ROW_BLOCK)

    def explain(chunk: pa.Table) -> pa.RecordBatch:
        static, sequence = model_inputs(chunk, model.spec)
        parts = [contributions(stages, static[s:s + per_call], sequence[s:s + per_call],
                               reference, groups) for s in range(0, chunk.num_rows, per_call)]
        merged = Contributions(*(np.concatenate([getattr(p, name) for p in parts])
                                 for name in ("reference", "prediction", "by_group")))
        return _drivers(chunk.column(ID_COLUMN), merged, groups, spend, model.version, as_of)

    # Chunks of batch_rows rows as in scoring: a customer's offsets agree with scoring's.
    chunks = rechunk(iter_batches(batches), batch_rows)
    return pa.RecordBatchReader.from_batches(EXPLANATION_SCHEMA,
                                             ordered_map(explain, chunks, model.workers))
