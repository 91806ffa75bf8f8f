"""Scalar expressions of one customer's row, and their emission as layers of SQL columns.

The ONNX graph is evaluated symbolically for one row (:mod:`clv.sql_scoring.graph`): every
element of every tensor is a number or a :class:`Node`. Emission then decides what becomes a
column: a node read more than once (a hidden unit feeding the next layer, the GRU state) or
read twice by its own formula gets a named column; a node read once is written inline where it
is read, and a linear combination read by a linear combination is multiplied out, so a Gemm,
its bias Add and a scaling Mul are one sum. A column's layer is one more than the deepest
column it reads; each layer becomes one CTE, so nothing is computed twice.

Formulas are overflow-safe: ``exp`` and the sigmoid clamp their argument, ``ln`` floors its
argument at the smallest normal double, and a reciprocal of 0 is NULL, so no engine raises
(PostgreSQL stops a query on a float overflow or underflow, a log of 0 or a division by 0).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from clv.sql_scoring.dialects import DotProducts, literal

# Clamps: exp(700) and exp(-700) are finite and non-zero doubles; a sigmoid beyond +-100 is
# within float32's subnormals of 0 or 1 (what onnxruntime computes there).
EXP_BOUND = 700.0
SIGMOID_BOUND = 100.0
TINY = 2.2250738585072014e-308  # smallest normal double: ln() of anything at or below it


@dataclass(eq=False)
class Node:
    """A value computed from the row; identity is the node (``eq=False``)."""

    origin: tuple[str, int] | None = field(default=None, init=False)  # ONNX value, flat index

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(eq=False)
class Input(Node):
    """A column of the layer before the first one (a network input)."""

    column: str


@dataclass(eq=False)
class Linear(Node):
    """bias + sum(coefficient * node)."""

    terms: tuple[tuple[float, Node], ...]
    bias: float

    def children(self) -> tuple[Node, ...]:
        return tuple(node for _, node in self.terms)


@dataclass(eq=False)
class Product(Node):
    """left * right, both computed from the row."""

    left: Node
    right: Node

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(eq=False)
class Apply(Node):
    """A function of nodes and numbers (see :data:`FUNCTIONS`)."""

    function: str
    args: tuple[float | Node, ...]

    def children(self) -> tuple[Node, ...]:
        return tuple(arg for arg in self.args if isinstance(arg, Node))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _log(x: float) -> float:
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


# Each function: (numeric value for constant arguments, SQL template over rendered arguments,
# how many times the template reads each argument). An argument read twice must be a column.
_Template = Callable[..., str]
FUNCTIONS: dict[str, tuple[Callable[..., float], _Template, int]] = {
    "sigmoid": (_sigmoid, lambda x: (
        f"1.0e0 / (1.0e0 + exp(least(greatest(-{x}, {literal(-SIGMOID_BOUND)}), "
        f"{literal(SIGMOID_BOUND)})))"), 1),
    "tanh": (math.tanh, lambda x: f"tanh({x})", 1),
    "relu": (lambda x: max(x, 0.0), lambda x: f"greatest({x}, 0.0e0)", 1),
    "exp": (lambda x: math.exp(min(max(x, -EXP_BOUND), EXP_BOUND)), lambda x: (
        f"exp(least(greatest({x}, {literal(-EXP_BOUND)}), {literal(EXP_BOUND)}))"), 1),
    "log": (_log, lambda x: f"ln(greatest({x}, {literal(TINY)}))", 1),
    "abs": (abs, lambda x: f"abs({x})", 1),
    "sign": (lambda x: float((x > 0) - (x < 0)),
             lambda x: f"case when {x} > 0 then 1 when {x} < 0 then -1 else 0 end", 2),
    # softplus(x) = max(x, 0) + log(1 + exp(-|x|)): no overflow for large |x|
    "softplus": (lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))), lambda x: (
        f"greatest({x}, 0.0e0) + ln(1.0e0 + exp(greatest(-abs({x}), "
        f"{literal(-EXP_BOUND)})))"), 3),
    "reciprocal": (lambda x: 1.0 / x if x else math.inf,
                   lambda x: f"1.0e0 / nullif({x}, 0.0e0)", 1),
    "max": (max, lambda x, y: f"greatest({x}, {y})", 1),
    "min": (min, lambda x, y: f"least({x}, {y})", 1),
    "greater": (lambda x, y: float(x > y), lambda x, y: f"{x} > {y}", 1),
    "where": (lambda c, x, y: x if c else y,
              lambda c, x, y: f"case when {c} then {x} else {y} end", 1),
}
# Templates that are not a single function call: parenthesised where another formula reads them.
_COMPOUND = frozenset({"sigmoid", "sign", "softplus", "reciprocal", "greater", "where"})


def is_number(value: object) -> bool:
    return not isinstance(value, Node)


def linear(terms: Iterable[tuple[float, float | Node]], bias: float = 0.0) -> float | Node:
    """bias + sum(coefficient * value), with numbers folded into the bias and repeated nodes
    merged; a number when no node is left."""
    merged: dict[Node, float] = {}
    for coefficient, value in terms:
        if isinstance(value, Node):
            merged[value] = merged.get(value, 0.0) + float(coefficient)
        else:
            bias += float(coefficient) * float(value)
    kept = tuple((c, node) for node, c in merged.items() if c != 0.0)
    if not kept:
        return float(bias)
    if len(kept) == 1 and kept[0][0] == 1.0 and bias == 0.0:
        return kept[0][1]
    return Linear(kept, float(bias))


def add(a: float | Node, b: float | Node) -> float | Node:
    return linear(((1.0, a), (1.0, b)))


def sub(a: float | Node, b: float | Node) -> float | Node:
    return linear(((1.0, a), (-1.0, b)))


def mul(a: float | Node, b: float | Node) -> float | Node:
    if is_number(a) and is_number(b):
        return float(a) * float(b)
    if is_number(a):
        return linear(((float(a), b),))
    if is_number(b):
        return linear(((float(b), a),))
    return Product(a, b)


def apply(function: str, *args: float | Node) -> float | Node:
    """``function`` of ``args``: evaluated when every argument is a number."""
    if all(is_number(arg) for arg in args):
        return float(FUNCTIONS[function][0](*(float(arg) for arg in args)))
    return Apply(function, tuple(arg if isinstance(arg, Node) else float(arg) for arg in args))


# -- emission ---------------------------------------------------------------------------------

Layer = list[tuple[str, str]]  # (column name, SQL expression)


def identifier(text: str) -> str:
    """``text`` as a lower-case SQL identifier of letters, digits and underscores."""
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return name if name and not name[0].isdigit() else f"v_{name}"


def _topological(roots: Iterable[Node]) -> list[Node]:
    """Every node below ``roots``, children before parents (iterative: chains are deep)."""
    order: list[Node] = []
    seen: set[Node] = set()
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.children()))
    return order


@dataclass(eq=False)
class _Pack(Node):
    """The vector of columns a set of linear combinations reads."""

    items: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.items


class _Emitter:
    """Columns and layers for the nodes below a set of named outputs."""

    def __init__(self, outputs: Mapping[str, float | Node], prefix: str,
                 dot_products: DotProducts | None, terms_per_line: int) -> None:
        self.prefix = prefix
        self.terms_per_line = terms_per_line
        roots = [value for value in outputs.values() if isinstance(value, Node)]
        order = _topological(roots)
        uses: dict[Node, int] = dict.fromkeys(order, 0)
        self.column: set[Node] = {root for root in roots if not isinstance(root, Input)}
        inside_linear: set[Node] = set()  # read (once) by a linear combination
        for node in order:
            reads = FUNCTIONS[node.function][2] if isinstance(node, Apply) else 1
            for child in node.children():
                uses[child] += 1
                if reads > 1 and not isinstance(child, Input):
                    self.column.add(child)
                if isinstance(node, Linear):
                    inside_linear.add(child)
        self.column |= {node for node, count in uses.items()
                        if count > 1 and not isinstance(node, Input)}
        self.expanded: dict[Node, tuple[tuple[tuple[float, Node], ...], float]] = {}
        # Linear nodes written as a dot product: (packed vector, its weights).
        self.dots: dict[Linear, tuple[_Pack, tuple[float, ...]]] = {}
        self.order: list[Node] = []
        packs: dict[tuple[Node, ...], _Pack] = {}
        for node in order:
            rendered = node in self.column or node not in inside_linear
            if dot_products is not None and isinstance(node, Linear) and rendered:
                terms = self._expand(node)[0]
                packed = [(c, n) for c, n in terms if n in self.column or isinstance(n, Input)]
                if len(packed) >= dot_products.min_terms:
                    key = tuple(n for _, n in packed)
                    if key not in packs:
                        packs[key] = _Pack(key)
                        self.column.add(packs[key])
                        self.order.append(packs[key])
                    self.dots[node] = (packs[key], tuple(c for c, _ in packed))
            self.order.append(node)
        self.dot_products = dot_products
        self.names: dict[Node, str] = {}

    def _expand(self, node: Linear) -> tuple[tuple[tuple[float, Node], ...], float]:
        """``node``'s terms with every inline Linear child multiplied out."""
        if node in self.expanded:
            return self.expanded[node]
        merged: dict[Node, float] = {}
        bias = node.bias
        for coefficient, child in node.terms:
            if isinstance(child, Linear) and child not in self.column:
                terms, child_bias = self._expand(child)
                bias += coefficient * child_bias
                for value, inner in terms:
                    merged[inner] = merged.get(inner, 0.0) + coefficient * value
            else:
                merged[child] = merged.get(child, 0.0) + coefficient
        result = tuple((c, n) for n, c in merged.items() if c != 0.0), bias
        self.expanded[node] = result
        return result

    def _plain_terms(self, node: Linear) -> tuple[tuple[tuple[float, Node], ...], float]:
        """The terms of ``node`` written as a sum (those not in its dot product)."""
        terms, bias = self._expand(node)
        if node in self.dots:
            packed = set(self.dots[node][0].items)
            terms = tuple((c, n) for c, n in terms if n not in packed)
        return terms, bias

    def _reads(self, node: Node) -> list[Node]:
        """The nodes ``node``'s own formula reads (inline Linear children multiplied out)."""
        if isinstance(node, Linear):
            extra = [self.dots[node][0]] if node in self.dots else []
            return extra + [child for _, child in self._plain_terms(node)[0]]
        return list(node.children())

    def _reference(self, value: float | Node) -> tuple[str, bool]:
        """SQL text of ``value`` where it is read, and whether it is atomic (no parentheses
        needed around it)."""
        if not isinstance(value, Node):
            return literal(value), value >= 0
        if isinstance(value, Input):
            return value.column, True
        if value in self.column:
            return self.names[value], True
        return self.formula(value), isinstance(value, Apply) and value.function not in _COMPOUND

    def _operand(self, value: float | Node) -> str:
        text, atomic = self._reference(value)
        return text if atomic else f"({text})"

    def formula(self, node: Node) -> str:
        """SQL expression computing ``node`` from columns and inline nodes."""
        if isinstance(node, Input):
            return node.column
        if isinstance(node, _Pack):
            assert self.dot_products is not None
            return self.dot_products.pack.format(items=", ".join(
                self._operand(item) for item in node.items))
        if isinstance(node, Product):
            return f"{self._operand(node.left)} * {self._operand(node.right)}"
        if isinstance(node, Apply):
            template = FUNCTIONS[node.function][1]
            return template(*(self._operand(arg) for arg in node.args))
        assert isinstance(node, Linear)
        terms, bias = self._plain_terms(node)
        parts = [literal(bias)] if bias != 0.0 or not (terms or node in self.dots) else []
        if node in self.dots:
            assert self.dot_products is not None
            vector, weights = self.dots[node]
            parts.append(("+ " if parts else "") + self.dot_products.dot.format(
                vector=self.names[vector], weights=", ".join(literal(w) for w in weights)))
        for index, (coefficient, child) in enumerate(terms):
            operand = self._operand(child)
            magnitude = abs(coefficient)
            text = operand if magnitude == 1.0 else f"{literal(magnitude)} * {operand}"
            sign = "-" if coefficient < 0 else "+"
            part = f"{sign} {text}" if parts else (text if sign == "+" else f"-{text}")
            if parts and index and index % self.terms_per_line == 0:
                part = "\n            " + part
            parts.append(part)
        return " ".join(parts)

    def layers(self, outputs: Mapping[str, float | Node]) -> list[Layer]:
        output_names: dict[Node, str] = {}
        for name, value in outputs.items():
            if isinstance(value, Node) and value not in output_names:
                output_names[value] = name
        taken = set(outputs)
        packs = 0
        for position, node in enumerate(self.order):  # children first: names follow the graph
            if node not in self.column:
                continue
            if node in output_names:
                self.names[node] = output_names[node]
                continue
            base = f"{self.prefix}_t{position}"
            if isinstance(node, _Pack):
                packs += 1
                base = f"{self.prefix}_vector_{packs}"
            elif node.origin is not None:
                value, index = node.origin
                base = f"{self.prefix}_{identifier(value)}_{index}"
            name, suffix = base, 1
            while name in taken:
                suffix += 1
                name = f"{base}_{suffix}"
            taken.add(name)
            self.names[node] = name
        depth: dict[Node, int] = {}
        for node in self.order:
            if isinstance(node, Input):
                depth[node] = 0
                continue
            deepest = max((depth[child] for child in self._reads(node)), default=0)
            depth[node] = deepest + (1 if node in self.column else 0)
        layers: list[Layer] = [[] for _ in range(max(depth.values(), default=0))]
        for node in self.order:
            if node in self.column:
                layers[depth[node] - 1].append((self.names[node], self.formula(node)))
        # Outputs that are numbers, network inputs or another output's node: one more layer.
        tail: Layer = []
        for name, value in outputs.items():
            if not isinstance(value, Node):
                tail.append((name, literal(value)))
            elif isinstance(value, Input):
                tail.append((name, value.column))
            elif self.names[value] != name:
                tail.append((name, self.names[value]))
        if tail:
            layers.append(tail)
        return layers


def emit(outputs: Mapping[str, float | Node], prefix: str,
         dot_products: DotProducts | None = None, terms_per_line: int = 6) -> list[Layer]:
    """Layers of columns computing ``outputs`` (column name -> value); every output becomes a
    column of that name, other columns are named ``<prefix>_<ONNX value>_<flat index>``.
    With ``dot_products``, linear combinations of at least ``min_terms`` columns are written
    as dot products of packed vectors."""
    return _Emitter(outputs, prefix, dot_products, terms_per_line).layers(outputs)
