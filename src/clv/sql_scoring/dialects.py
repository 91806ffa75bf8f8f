"""What differs between the engines the scoring query runs on: DuckDB, PostgreSQL and Spark.

Everything engine-specific in the generated SQL goes through a :class:`Dialect`: type names,
identifier quoting, the NaN test, the UTC clock, the fence that keeps PostgreSQL from merging
the network's layers back into one expression (which would compute a hidden unit once for
every unit that reads it), materialised CTEs, and DuckDB's list functions for dot products.
The rest is common SQL: ``exp``, ``ln``, ``sqrt``, ``tanh``,
``floor``, ``abs``, ``greatest``/``least``, ``case`` and ``sum(...) over ()``.

On Spark the query is valid Spark SQL, but Catalyst does not plan a query of this size whole
(measured with Spark 4 on local[2]: 35 s to analyse the network alone, minutes to optimise, and
its code generation ran out of a 6 GB heap): :meth:`clv.warehouse.SparkWarehouse.compute` runs
it one common table expression at a time.

Numeric literals are written in exponent form with the shortest digits that give the value back
(``1.0000000149011612e-1`` for the float32 weight 0.1): DuckDB and Spark read that as a double,
PostgreSQL as an exact numeric that it converts, correctly rounded, to the same double.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class DotProducts:
    """How an engine with vector functions writes a long linear combination: the columns it
    reads packed into one vector column (shared by every unit that reads the same columns,
    e.g. all units of a layer), then one dot product with a constant vector per unit."""

    pack: str  # ``{items}``: the columns, comma-separated
    dot: str  # ``{vector}``, ``{weights}``: the packed column and the literals, comma-separated
    min_terms: int  # shorter combinations stay plain sums


@dataclass(frozen=True)
class Dialect:
    """Names and snippets of one SQL engine."""

    name: str
    double: str  # the IEEE double type
    real: str  # the IEEE single type (what onnxruntime reads the inputs as)
    text: str  # the string type
    decimal: str  # an exact integer type wide enough for micro-unit sums
    quote_char: str  # identifier quotes
    nan_test: str  # ``{x}`` is NaN (NaN compares equal to itself on all three engines)
    utc_now: str  # the current UTC time as a timestamp without time zone
    layer_fence: str  # appended to each layer's select so the optimiser keeps it a layer
    # ``with name as materialized (...)``: the scores are computed once, then summed for the
    # spend level and read again; without it the totals are a window over all rows (which
    # DuckDB runs on one thread)
    materialized: bool
    dot_products: DotProducts | None = None  # vector functions for long linear combinations

    def quote(self, identifier: str) -> str:
        """``identifier`` quoted (quotes inside doubled)."""
        q = self.quote_char
        return q + identifier.replace(q, q + q) + q

    def is_nan(self, expression: str) -> str:
        return self.nan_test.format(x=expression)

    def string(self, value: str) -> str:
        """A string literal."""
        return "'" + value.replace("'", "''") + "'"

    def timestamp(self, value: datetime) -> str:
        """A timestamp literal (without time zone)."""
        return f"cast({self.string(value.isoformat(sep=' '))} as timestamp)"


DIALECTS: dict[str, Dialect] = {
    "duckdb": Dialect(name="duckdb", double="double", real="real", text="varchar",
                      decimal="decimal(38, 0)", quote_char='"', nan_test="isnan({x})",
                      utc_now="cast(timezone('UTC', now()) as timestamp)", layer_fence="",
                      materialized=True,
                      # about 3x faster than sums of products for a layer's 20 to 64 inputs
                      dot_products=DotProducts(pack="[{items}]",
                                               dot="list_dot_product({vector}, [{weights}])",
                                               min_terms=8)),
    "postgres": Dialect(name="postgres", double="double precision", real="real", text="text",
                        decimal="numeric(38, 0)", quote_char='"',
                        nan_test="{x} = cast('NaN' as double precision)",
                        utc_now="cast(timezone('UTC', now()) as timestamp)",
                        layer_fence="\n    offset 0", materialized=True),
    "spark": Dialect(name="spark", double="double", real="float", text="string",
                     decimal="decimal(38, 0)", quote_char="`", nan_test="isnan({x})",
                     utc_now="to_utc_timestamp(current_timestamp(), current_timezone())",
                     layer_fence="", materialized=False),
}


def dialect(name: str) -> Dialect:
    """The dialect called ``name`` (duckdb, postgres or spark)."""
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown SQL dialect {name!r}; expected one of "
                         f"{', '.join(DIALECTS)}") from None


def literal(value: float) -> str:
    """``value`` as a numeric literal every dialect reads as exactly this double."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{value} has no SQL literal")
    if value == 0.0:
        return "0.0e0"
    return f"{Decimal(repr(value)).normalize():e}"
