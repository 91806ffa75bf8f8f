"""Example tables to arrays: which columns are features, in what order, and how they are read.

The feature list is the sorted static numeric columns followed by the sequence columns, channel by
channel, lag 01 first. The network's ``sequence`` input is ordered oldest period first:
``sequence[:, t, c]`` holds ``seq_<channel c>_lag_<n_periods - t>``. A missing static value
(null or non-finite) reads as the feature's fill value, the median of the values the model was
trained on (:func:`fill_values`), so a customer without a value looks like a typical one rather
than like a 0 the model may never have seen; sequence values read as 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clv.config import (
    CUTOFF_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    LABEL_PREFIX,
    NON_FEATURE_COLUMNS,
    SEQUENCE_PREFIX,
)

SEQUENCE_PATTERN = re.compile(r"^seq_(?P<channel>.+?)_lag_(?P<lag>[0-9]+)$")

TabularInput = Any  # pa.Table | pa.RecordBatchReader | pa.RecordBatch | pandas.DataFrame


@dataclass(frozen=True)
class FeatureSpec:
    """Feature columns of an example table, in the order the network reads them."""

    static: tuple[str, ...]  # static numeric columns, sorted by name
    channels: tuple[str, ...]  # sequence channels in network order
    sequence: tuple[tuple[str, ...], ...]  # per channel, column names for lag 1..n_periods
    # per static feature, what a missing value reads as (fill_values); empty: 0 for every one
    # (models saved before fill values were kept)
    fill: tuple[float, ...] = ()

    @property
    def static_fill(self) -> tuple[float, ...]:
        return self.fill or (0.0,) * len(self.static)

    @property
    def n_periods(self) -> int:
        return len(self.sequence[0]) if self.sequence else 0

    @property
    def sequence_columns(self) -> tuple[str, ...]:
        return tuple(name for channel in self.sequence for name in channel)

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature column: static ones, then sequence ones by channel and lag."""
        return self.static + self.sequence_columns

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "static_features": list(self.static),
            "channels": list(self.channels),
            "n_periods": self.n_periods,
            "sequence_features": [list(c) for c in self.sequence],
            "static_fill": list(self.static_fill),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FeatureSpec:
        return cls(
            static=tuple(values["static_features"]),
            channels=tuple(values["channels"]),
            sequence=tuple(tuple(c) for c in values["sequence_features"]),
            fill=tuple(float(v) for v in values.get("static_fill", ())),
        )


def _is_numeric(dtype: pa.DataType) -> bool:
    return (pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
            or pa.types.is_decimal(dtype) or pa.types.is_boolean(dtype))


def feature_spec(schema: pa.Schema, static_features: Sequence[str],
                 channel_order: Sequence[str] = ()) -> FeatureSpec:
    """The feature columns of an example table (training or scoring table alike).

    Static features are declared, not discovered: ``static_features`` names them (the SQL
    layer's list from ``clv_run_settings`` plus the BTYD columns the Python side adds), and the
    network reads them sorted by name. A numeric column that is neither declared, nor a
    sequence column ``seq_<channel>_lag_<NN>``, a ``label_*`` column or one of the key columns
    is an error, so a new column can never silently become a model input. Every channel must
    have the same lags 1..N; channels follow ``channel_order``, unlisted ones alphabetically.
    """
    declared = set(static_features)
    names = set(schema.names)
    missing = sorted(declared - names)
    if missing:
        raise ValueError(f"the example table lacks declared feature columns {missing}")
    undeclared: list[str] = []
    lags: dict[str, dict[int, str]] = {}
    for field in schema:
        name = field.name
        if name in NON_FEATURE_COLUMNS or name.startswith(LABEL_PREFIX) or name in declared:
            if name in declared and not _is_numeric(field.type):
                raise ValueError(f"declared feature column {name} must be numeric, "
                                 f"got {field.type}")
            continue
        if name.startswith(SEQUENCE_PREFIX):
            match = SEQUENCE_PATTERN.match(name)
            if match is None:
                continue
            if not _is_numeric(field.type):
                raise ValueError(f"sequence column {name} must be numeric, got {field.type}")
            channel, lag = match["channel"], int(match["lag"])
            if lag in lags.setdefault(channel, {}):
                raise ValueError(f"sequence columns {lags[channel][lag]} and {name} give the "
                                 "same channel and lag")
            lags[channel][lag] = name
        elif _is_numeric(field.type):
            undeclared.append(name)
    if undeclared:
        raise ValueError(f"the example table has numeric columns that are not declared "
                         f"features: {undeclared}. A model input must be declared on purpose: "
                         "a feature the SQL layer computes goes into a group of "
                         "clv_feature_groups() (macros/clv_settings.sql); a numeric column of "
                         "clv_customers into the var clv_extra_features (see the README); "
                         "anything else is dropped from the example tables")
    if not declared:
        raise ValueError("no static feature columns are declared")
    if not lags:
        raise ValueError("the example table has no sequence columns named seq_<channel>_lag_<NN>; "
                         "check the dbt var clv_sequence_periods")
    known = [c for c in channel_order if c in lags]
    channels = tuple(known + sorted(c for c in lags if c not in known))
    n_periods = max(max(by_lag) for by_lag in lags.values())
    for channel in channels:
        missing_lags = sorted(set(range(1, n_periods + 1)) - set(lags[channel]))
        if missing_lags:
            raise ValueError(f"sequence channel {channel!r} lacks lags {missing_lags} "
                             f"(other channels go up to lag {n_periods})")
    sequence = tuple(tuple(lags[c][lag] for lag in range(1, n_periods + 1)) for c in channels)
    return FeatureSpec(static=tuple(sorted(declared)), channels=channels, sequence=sequence)


def as_table(data: TabularInput) -> pa.Table:
    """Read a pyarrow Table / RecordBatchReader / RecordBatch or pandas DataFrame fully into a
    pyarrow Table (warehouse relations are read through :mod:`clv.warehouse`)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "to_numpy") and hasattr(data, "columns") and hasattr(data, "iloc"):
        return pa.Table.from_pandas(data, preserve_index=False)
    raise TypeError(f"expected a pyarrow Table/RecordBatchReader or pandas DataFrame, "
                    f"got {type(data).__name__}")


def iter_batches(data: TabularInput | Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
    """Yield record batches lazily from a reader, table, DataFrame or iterable of batches."""
    if isinstance(data, pa.RecordBatchReader):
        yield from data
    elif isinstance(data, pa.Table):
        yield from data.to_batches()
    elif isinstance(data, pa.RecordBatch):
        yield data
    elif hasattr(data, "iloc"):  # pandas DataFrame
        yield from as_table(data).to_batches()
    else:
        for item in data:
            yield from iter_batches(item)


def _column_values(column: pa.ChunkedArray | pa.Array, fill: float = 0.0) -> np.ndarray:
    """A numeric column as a numpy array with nulls as ``fill`` (zero-copy when it has no
    nulls)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if column.null_count:
        column = pc.fill_null(column.cast(pa.float64(), safe=False), fill)
    elif pa.types.is_decimal(column.type) or pa.types.is_boolean(column.type):
        column = column.cast(pa.float64(), safe=False)
    return column.to_numpy(zero_copy_only=False)


def model_inputs(data: pa.Table | pa.RecordBatch, spec: FeatureSpec) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """The network inputs: ``static`` float32 [rows, n_static] and ``sequence`` float32
    [rows, n_periods, n_channels], periods oldest first. A null or non-finite static value
    becomes its feature's fill value (``spec.static_fill``, as float32); a sequence one 0.

    Each column is converted straight into its place in the two arrays: one pass over the data,
    with no intermediate matrix and no transpose (this runs once per scoring batch).
    """
    names = set(data.schema.names)
    missing = [c for c in spec.features if c not in names]
    if missing:
        raise ValueError(f"missing feature columns: {missing}")
    rows, periods = data.num_rows, spec.n_periods
    static = np.empty((rows, len(spec.static)), dtype=np.float32)
    sequence = np.empty((rows, periods, len(spec.channels)), dtype=np.float32)
    fill = np.asarray(spec.static_fill, dtype=np.float32)
    with np.errstate(over="ignore"):  # beyond float32: infinite, then the fill value
        for j, name in enumerate(spec.static):
            # numpy converts to float32 here
            static[:, j] = _column_values(data.column(name), float(fill[j]))
        for c, lags in enumerate(spec.sequence):
            for lag, name in enumerate(lags):  # lag 1 is the latest period
                sequence[:, periods - 1 - lag, c] = _column_values(data.column(name))
    invalid = ~np.isfinite(static)
    if invalid.any():
        static[invalid] = np.broadcast_to(fill, static.shape)[invalid]
    invalid = ~np.isfinite(sequence)
    if invalid.any():
        sequence[invalid] = 0.0
    return static, sequence


def fill_values(data: pa.Table, spec: FeatureSpec) -> tuple[float, ...]:
    """Per static feature of ``spec``, the median of its given (non-null, finite) values in
    ``data``, as float32 reads it; 0 for a feature with no given value. A missing value then
    reads as a typical training customer's, inside the range the network learned from: a
    customer without a value of an attribute whose values lie far from 0 would otherwise be
    scored on an input it never saw (a score between 1 and 10 read as 0)."""
    fills = []
    for name in spec.static:
        column = data.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        values = column.cast(pa.float64(), safe=False).drop_null().to_numpy(zero_copy_only=False)
        values = values[np.isfinite(values)]
        if values.size:
            median = np.float32(np.median(values))
            fills.append(float(median) if np.isfinite(median) else 0.0)
        else:
            fills.append(0.0)
    return tuple(fills)


def labels(data: pa.Table | pa.RecordBatch) -> np.ndarray:
    """``label_revenue`` as float64; nulls read as 0 and negative spend floored at 0."""
    if LABEL_COLUMN not in data.schema.names:
        raise ValueError(f"the training examples have no {LABEL_COLUMN} column")
    values = _column_values(data.column(LABEL_COLUMN)).astype(np.float64)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return np.maximum(values, 0.0)


def sorted_examples(table: pa.Table) -> pa.Table:
    """Rows ordered by (cutoff_date, customer_id) with customer_id as string; duplicates of that
    pair are an error because they would make the row order, and so training, ambiguous."""
    for name in (ID_COLUMN, CUTOFF_COLUMN):
        if name not in table.schema.names:
            raise ValueError(f"the example table has no {name} column")
    ids = table.column(ID_COLUMN)
    if ids.type != pa.string():
        table = table.set_column(table.schema.get_field_index(ID_COLUMN), ID_COLUMN,
                                 ids.cast(pa.string()))
    table = table.sort_by([(CUTOFF_COLUMN, "ascending"), (ID_COLUMN, "ascending")])
    if table.num_rows > 1:
        keys = table.select([CUTOFF_COLUMN, ID_COLUMN])
        head, tail = keys.slice(0, table.num_rows - 1), keys.slice(1)
        same = pc.and_(pc.equal(head.column(0), tail.column(0)),
                       pc.equal(head.column(1), tail.column(1)))
        n_dup = pc.sum(pc.fill_null(same, False)).as_py() or 0
        if n_dup:
            raise ValueError(f"the example table has {n_dup} duplicate (customer_id, cutoff_date) "
                             "rows; each customer must appear once per cutoff")
    return table


# The static feature columns of :func:`synthetic_examples`.
SYNTHETIC_STATIC_FEATURES = ("days_since_signup", "frequency", "monetary_value", "noise",
                             "orders_last_30d", "recency_days", "revenue_last_365d")


def synthetic_examples(n_customers: int = 1000, n_cutoffs: int = 3, n_periods: int = 12,
                       period_days: int = 30, horizon_periods: int = 12, seed: int = 0,
                       with_labels: bool = True) -> pa.Table:
    """A small example table with a known signal, for tests and benchmarks.

    Each customer has a latent order rate and a typical order value. The sequence columns are
    Poisson order counts per period and their revenue; static columns summarise them, plus a pure
    noise column, a column with nulls and a string column. The label is the revenue of the orders
    drawn for the horizon from the same latent rate and value, so history predicts the label.
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.6, 0.4, n_customers) * (rng.random(n_customers) < 0.7)  # orders/period
    value = np.exp(rng.normal(3.5, 0.6, n_customers))  # typical order value
    ids = np.array([f"c{i:06d}" for i in range(n_customers)], dtype=object)
    tables = []
    for k in range(n_cutoffs):
        cutoff = np.datetime64("2024-01-01") + np.timedelta64(91 * k, "D")
        orders = rng.poisson(rate[:, None], (n_customers, n_periods))  # column 0 = lag 1
        revenue = orders * value[:, None] * np.exp(rng.normal(0, 0.2, (n_customers, n_periods)))
        active = np.minimum(orders, period_days)
        total_orders = orders.sum(1)
        recent = np.where(orders > 0, np.arange(n_periods)[None, :], n_periods).min(1)
        columns: dict[str, Any] = {
            ID_COLUMN: ids,
            CUTOFF_COLUMN: np.full(n_customers, cutoff, dtype="datetime64[D]"),
            "country": np.where(rng.random(n_customers) < 0.5, "DE", "FR").astype(object),
            "frequency": total_orders,
            "recency_days": recent * period_days,
            "monetary_value": np.where(total_orders > 0, revenue.sum(1) / np.maximum(
                total_orders, 1), 0.0),
            "orders_last_30d": orders[:, 0],
            "revenue_last_365d": revenue.sum(1),
            "noise": rng.normal(0, 1, n_customers),
            "days_since_signup": pa.array(rng.integers(0, 900, n_customers),
                                          mask=rng.random(n_customers) < 0.1),
        }
        for name, values in (("orders", orders), ("revenue", revenue), ("active_days", active)):
            for lag in range(1, n_periods + 1):
                columns[f"seq_{name}_lag_{lag:02d}"] = values[:, lag - 1]
        if with_labels:
            future = rng.poisson(rate * horizon_periods)
            spend = future * value * np.exp(rng.normal(0, 0.3, n_customers))
            columns[LABEL_COLUMN] = spend
            columns["label_orders"] = future
        tables.append(pa.table({k: v if isinstance(v, pa.Array) else pa.array(v)
                                for k, v in columns.items()}))
    return pa.concat_tables(tables)


# stable_floats leaves values this large as they are (clv.sql_scoring reads them likewise).
UNROUNDED = 1e300


def stable_floats(data: pa.Table | pa.RecordBatch, decimals: int = 6) -> pa.Table | pa.RecordBatch:
    """Float columns rounded to ``decimals`` places.

    The warehouse sums money in parallel, so the last bits of a total can differ between two
    builds of the same data; rounding makes training and scoring inputs, and therefore the
    model and its predictions, identical from run to run. A value of :data:`UNROUNDED` or
    more (whole anyway, and beyond what rounding can scale: pyarrow raised an overflow on
    1e303) stays as it is, as the compiled SQL leaves it.
    """
    for index, field in enumerate(data.schema):
        if pa.types.is_floating(field.type):
            column = data.column(index)
            try:  # no extra pass over the column in the usual case
                rounded = pc.round(column, decimals)
            except pa.ArrowInvalid:  # the overflow of a value near the largest double
                huge = pc.greater_equal(pc.abs(column), UNROUNDED)
                rounded = pc.if_else(huge, column,
                                     pc.round(pc.if_else(huge, 0.0, column), decimals))
            data = data.set_column(index, field.name, rounded)
    return data
