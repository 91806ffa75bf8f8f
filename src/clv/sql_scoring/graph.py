"""The exported ONNX graph as SQL columns: each operator evaluated symbolically for one row.

The graph is read with the ``onnx`` package, never through PyTorch, so what is compiled is
exactly what onnxruntime runs. Tensors are numpy arrays with a batch axis of 1 (each SQL row is
one customer, and rows never mix): constant ones (weights, shapes) are computed with numpy in
their own dtype as onnxruntime would fold them; the others hold numbers and
:class:`clv.sql_scoring.nodes.Node` elements. Reshapes, slices and gathers only move elements,
matrix products become linear combinations with the weights as literals, the banded
convolution matrix drops its zeros (the 1-D convolution unrolls into 3-tap sums) and the GRU,
already written out step by step by the exporter, unrolls over the fixed window.

Only the operators the project's exporters produce (dynamo and TorchScript, one network or an
ensemble, with the spend calibration) are supported: :data:`SUPPORTED_OPERATORS`. Any other is
refused with :class:`UnsupportedOperatorError` naming it, before anything is compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from clv.sql_scoring import nodes
from clv.sql_scoring.dialects import DotProducts
from clv.sql_scoring.nodes import Input, Layer, Node

Tensor = np.ndarray
Attributes = dict[str, Any]


class UnsupportedOperatorError(ValueError):
    """The graph uses an operator (or an operator in a form) the compiler does not support."""


@dataclass(frozen=True)
class CompiledGraph:
    """The graph as SQL: layers of columns over the input columns, and for each graph output
    its columns (flat order, batch axis dropped)."""

    layers: list[Layer]
    outputs: dict[str, list[str]]


def _objects(tensor: Tensor) -> Tensor:
    """``tensor`` as an object array of Python floats and nodes."""
    if tensor.dtype == object:
        return tensor
    out = np.empty(tensor.shape, dtype=object)
    out.reshape(-1)[:] = [float(v) for v in tensor.reshape(-1)]
    return out


def _symbolic(*tensors: Tensor | None) -> bool:
    return any(t is not None and t.dtype == object for t in tensors)


def _ints(tensor: Tensor, what: str) -> list[int]:
    if tensor.dtype == object:
        raise UnsupportedOperatorError(f"{what} computed from the inputs is not supported")
    return [int(v) for v in tensor.reshape(-1)]


def _elementwise(function: Callable[..., Any], numeric: Callable[..., Tensor] | None,
                 *tensors: Tensor) -> Tensor:
    """``function`` element by element with broadcasting; constants through ``numeric`` (in
    their dtype) when given, else through ``function`` and back to the first input's dtype."""
    if not _symbolic(*tensors):
        if numeric is not None:
            return np.asarray(numeric(*tensors))
        result = np.frompyfunc(function, len(tensors), 1)(*(_objects(t) for t in tensors))
        return np.asarray(result, dtype=object).astype(tensors[0].dtype)
    return np.asarray(np.frompyfunc(function, len(tensors), 1)(*(_objects(t) for t in tensors)),
                      dtype=object)


def _unary(function: str) -> Callable[[list[Tensor | None], Attributes], list[Tensor]]:
    def run(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
        return [_elementwise(lambda x: nodes.apply(function, x), None, args[0])]
    return run


def _binary(builder: Callable[[Any, Any], Any],
            numeric: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., list[Tensor]]:
    def run(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
        return [_elementwise(builder, numeric, args[0], args[1])]
    return run


def _gemm(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    a, b, c = args[0], args[1], args[2] if len(args) > 2 else None
    a = a.T if attrs.get("transA", 0) else a
    b = b.T if attrs.get("transB", 0) else b
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    if not _symbolic(a, b, c):
        out = alpha * (a @ b)
        return [(out + beta * c if c is not None else out).astype(a.dtype)]
    a, b = _objects(a), _objects(b)
    bias = (np.broadcast_to(_objects(c), (a.shape[0], b.shape[1])) if c is not None
            else np.zeros((a.shape[0], b.shape[1]), dtype=object))
    out = np.empty((a.shape[0], b.shape[1]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            terms = [_scaled_product(alpha, a[i, k], b[k, j]) for k in range(a.shape[1])]
            out[i, j] = nodes.linear([*terms, (beta, bias[i, j])])
    return [out]


def _scaled_product(scale: float, x: Any, y: Any) -> tuple[float, Any]:
    """``scale * x * y`` as one term of a linear combination."""
    if nodes.is_number(x):
        return scale * float(x), y
    if nodes.is_number(y):
        return scale * float(y), x
    return scale, nodes.Product(x, y)


def _reduce(mean: bool) -> Callable[[list[Tensor | None], Attributes], list[Tensor]]:
    def run(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
        data = args[0]
        if len(args) > 1 and args[1] is not None:
            axes = _ints(args[1], "reduction axes")
        else:
            axes = list(attrs.get("axes", []))
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                return [data]
            axes = list(range(data.ndim))
        axes = sorted(axis % data.ndim for axis in axes)
        keepdims = bool(attrs.get("keepdims", 1))
        if not _symbolic(data):
            reduce = np.mean if mean else np.sum
            return [np.asarray(reduce(data, axis=tuple(axes), keepdims=keepdims),
                               dtype=data.dtype)]
        kept = [axis for axis in range(data.ndim) if axis not in axes]
        moved = np.transpose(data, kept + axes)
        size = int(np.prod([data.shape[axis] for axis in axes]))
        rows = moved.reshape(-1, size)
        weight = 1.0 / size if mean else 1.0
        flat = np.empty(rows.shape[0], dtype=object)
        for index, row in enumerate(rows):
            flat[index] = nodes.linear((weight, value) for value in row)
        shape = [1 if axis in axes else data.shape[axis] for axis in range(data.ndim)]
        return [flat.reshape([data.shape[axis] for axis in kept]) if not keepdims
                else flat.reshape(shape)]
    return run


def _clip(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    data = args[0]
    low = args[1] if len(args) > 1 and args[1] is not None else None
    high = args[2] if len(args) > 2 and args[2] is not None else None
    if low is None and "min" in attrs:
        low = np.asarray(attrs["min"], dtype=data.dtype)
    if high is None and "max" in attrs:
        high = np.asarray(attrs["max"], dtype=data.dtype)
    if low is not None:
        data = _elementwise(lambda x, y: nodes.apply("max", x, y), np.maximum, data, low)
    if high is not None:
        data = _elementwise(lambda x, y: nodes.apply("min", x, y), np.minimum, data, high)
    return [data]


def _where(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    condition, x, y = args[0], args[1], args[2]
    if not _symbolic(condition):
        if not _symbolic(x, y):
            return [np.where(condition, x, y)]
        return [np.where(condition, _objects(x), _objects(y))]
    return [_elementwise(lambda c, a, b: nodes.apply("where", c, a, b), None, condition,
                         x, y)]


def _reshape(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    data, shape = args[0], _ints(args[1], "a reshape target")
    if not attrs.get("allowzero", 0):
        shape = [data.shape[i] if dim == 0 else dim for i, dim in enumerate(shape)]
    return [data.reshape(shape)]


def _flatten(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    data = args[0]
    axis = int(attrs.get("axis", 1)) % (data.ndim + 1) if data.ndim else 0
    return [data.reshape(int(np.prod(data.shape[:axis])), -1)]


def _unsqueeze(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    data = args[0]
    axes = (_ints(args[1], "unsqueeze axes") if len(args) > 1 and args[1] is not None
            else list(attrs["axes"]))
    rank = data.ndim + len(axes)
    for axis in sorted(axis % rank for axis in axes):
        data = np.expand_dims(data, axis)
    return [data]


def _concat(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    tensors = [t for t in args if t is not None]
    if _symbolic(*tensors):
        tensors = [_objects(t) for t in tensors]
    return [np.concatenate(tensors, axis=int(attrs["axis"]))]


def _slice(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    data = args[0]
    starts, ends = _ints(args[1], "slice starts"), _ints(args[2], "slice ends")
    axes = (_ints(args[3], "slice axes") if len(args) > 3 and args[3] is not None
            else list(range(len(starts))))
    steps = (_ints(args[4], "slice steps") if len(args) > 4 and args[4] is not None
             else [1] * len(starts))
    index = [slice(None)] * data.ndim
    for first, last, axis, step in zip(starts, ends, axes, steps, strict=True):
        dim = data.shape[axis]
        begin = first + dim if first < 0 else first
        end = last + dim if last < 0 else last
        if step > 0:
            index[axis] = slice(min(max(begin, 0), dim), min(max(end, 0), dim), step)
        else:  # ONNX clamps to [-1, dim - 1] going backwards; -1 means "before the first"
            begin, end = min(max(begin, -1), dim - 1), min(max(end, -1), dim - 1)
            index[axis] = slice(begin, None if end < 0 else end, step)
    return [data[tuple(index)]]


def _gather(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    indices = np.asarray(_ints(args[1], "gather indices")).reshape(args[1].shape)
    return [np.take(args[0], indices, axis=int(attrs.get("axis", 0)))]


def _gather_nd(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    if attrs.get("batch_dims", 0):
        raise UnsupportedOperatorError("GatherND with batch_dims is not supported")
    indices = np.asarray(_ints(args[1], "gather indices")).reshape(args[1].shape)
    return [args[0][tuple(np.moveaxis(indices, -1, 0))]]


def _expand(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    shape = np.broadcast_shapes(args[0].shape, tuple(_ints(args[1], "an expand shape")))
    return [np.broadcast_to(args[0], shape).copy()]


def _tile(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    return [np.tile(args[0], _ints(args[1], "tile repeats"))]


def _shape(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    shape = np.asarray(args[0].shape, dtype=np.int64)
    return [shape[attrs.get("start", 0):attrs.get("end", len(shape))]]


def _constant_of_shape(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    value = attrs.get("value", np.zeros(1, dtype=np.float32))
    return [np.full(_ints(args[0], "a shape"), value.reshape(-1)[0], dtype=value.dtype)]


def _constant(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    for key, dtype in (("value", None), ("value_float", np.float32),
                       ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in attrs:
            return [np.asarray(attrs[key], dtype=dtype)]
    raise UnsupportedOperatorError(f"Constant with attributes {sorted(attrs)} is not supported")


def _mod(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    if _symbolic(args[0], args[1]):
        raise UnsupportedOperatorError("Mod of values computed from the inputs is not supported")
    function = np.fmod if attrs.get("fmod", 0) else np.mod
    return [np.asarray(function(args[0], args[1]))]


def _identity(args: list[Tensor | None], attrs: Attributes) -> list[Tensor]:
    return [args[0]]


OPERATORS: dict[str, Callable[[list[Tensor | None], Attributes], list[Tensor]]] = {
    "Abs": _unary("abs"),
    "Add": _binary(nodes.add, np.add),
    "Clip": _clip,
    "Concat": _concat,
    "Constant": _constant,
    "ConstantOfShape": _constant_of_shape,
    "Exp": _unary("exp"),
    "Expand": _expand,
    "Flatten": _flatten,
    "Gather": _gather,
    "GatherND": _gather_nd,
    "Gemm": _gemm,
    "Greater": _binary(lambda x, y: nodes.apply("greater", x, y), np.greater),
    "Identity": _identity,
    "Log": _unary("log"),
    "Mod": _mod,
    "Mul": _binary(nodes.mul, np.multiply),
    "Reciprocal": _unary("reciprocal"),
    "ReduceMean": _reduce(mean=True),
    "ReduceSum": _reduce(mean=False),
    "Relu": _unary("relu"),
    "Reshape": _reshape,
    "Shape": _shape,
    "Sigmoid": _unary("sigmoid"),
    "Sign": _unary("sign"),
    "Slice": _slice,
    "Softplus": _unary("softplus"),
    "Sub": _binary(nodes.sub, np.subtract),
    "Tanh": _unary("tanh"),
    "Tile": _tile,
    "Unsqueeze": _unsqueeze,
    "Where": _where,
}
SUPPORTED_OPERATORS = frozenset(OPERATORS)


def check_operators(model: onnx.ModelProto) -> None:
    """Raise :class:`UnsupportedOperatorError` naming every operator outside
    :data:`SUPPORTED_OPERATORS` (or outside the default ONNX domain)."""
    unsupported: dict[str, str] = {}
    for node in model.graph.node:
        name = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        if name not in SUPPORTED_OPERATORS:
            unsupported.setdefault(name, node.name or node.output[0])
    if unsupported:
        listed = ", ".join(f"{op} (node {where!r})" for op, where in unsupported.items())
        raise UnsupportedOperatorError(
            f"the SQL compiler does not support the ONNX operator(s) {listed}; supported: "
            f"{', '.join(sorted(SUPPORTED_OPERATORS))}")


def _attributes(node: onnx.NodeProto) -> Attributes:
    values: Attributes = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        values[attribute.name] = (numpy_helper.to_array(value)
                                  if isinstance(value, onnx.TensorProto) else value)
    return values


def _input_tensor(value: onnx.ValueInfoProto, columns: np.ndarray) -> Tensor:
    """One row of graph input ``value``, its elements read from ``columns``."""
    dims = value.type.tensor_type.shape.dim
    declared = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
    if list(columns.shape) != declared:
        raise ValueError(f"graph input {value.name!r} has shape {declared} per row; "
                         f"{list(columns.shape)} columns were given")
    tensor = np.empty((1, *columns.shape), dtype=object)
    tensor.reshape(-1)[:] = [Input(str(name)) for name in columns.reshape(-1)]
    return tensor


def compile_graph(model: onnx.ModelProto, inputs: Mapping[str, Sequence[Any] | np.ndarray],
                  output_columns: Mapping[str, str] | None = None, prefix: str = "net",
                  dot_products: DotProducts | None = None) -> CompiledGraph:
    """``model`` as layers of SQL columns.

    Args:
        model: the ONNX model (default domain operators of :data:`SUPPORTED_OPERATORS`).
        inputs: for each graph input, the columns holding one row of it (an array of column
            names shaped like the input without its batch axis), as float32-valued doubles.
        output_columns: the column name (prefix) of each graph output; default the output
            name. An output of several elements gets columns ``<name>_<flat index>``.
        prefix: prefix of the hidden columns' names.
        dot_products: the engine's vector functions, if it has them
            (:attr:`clv.sql_scoring.dialects.Dialect.dot_products`).
    """
    check_operators(model)
    graph = model.graph
    values: dict[str, Tensor] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for value in graph.input:
        if value.name in values:
            continue
        if value.name not in inputs:
            raise ValueError(f"no columns given for graph input {value.name!r}")
        values[value.name] = _input_tensor(value, np.asarray(inputs[value.name], dtype=object))
    for node in graph.node:
        args = [values[name] if name else None for name in node.input]
        results = OPERATORS[node.op_type](args, _attributes(node))
        for name, result in zip(node.output, results, strict=False):
            if result.dtype == object:
                for index, element in enumerate(result.reshape(-1)):
                    if isinstance(element, Node) and element.origin is None:
                        element.origin = (name, index)
            values[name] = result
    outputs: dict[str, float | Node] = {}
    columns: dict[str, list[str]] = {}
    for value in graph.output:
        tensor = values[value.name]
        if not tensor.ndim or tensor.shape[0] != 1:
            raise UnsupportedOperatorError(f"graph output {value.name!r} has no batch axis")
        base = (output_columns or {}).get(value.name, nodes.identifier(value.name))
        flat = tensor.reshape(-1)
        names = [base] if flat.size == 1 else [f"{base}_{i}" for i in range(flat.size)]
        for name, element in zip(names, flat, strict=True):
            outputs[name] = element if isinstance(element, Node) else float(element)
        columns[value.name] = names
    return CompiledGraph(layers=nodes.emit(outputs, prefix, dot_products), outputs=columns)
