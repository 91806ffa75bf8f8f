"""What every warehouse implementation provides, and the SQL they share.

Deterministic sampling and content digests use md5 of the key as text, which DuckDB,
PostgreSQL, Spark, Snowflake and BigQuery all compute identically: the same rows are sampled
and the same digest is computed whichever engine holds the data. A row's *bucket* is the first
32 bits of that md5 modulo :data:`SAMPLE_BUCKETS`; :func:`bucket_of` is the same rule in Python.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from clv.level import CappedTotal, MicroTotal

SAMPLE_BUCKETS = 1_000_000
KEY_SEPARATOR = "|"


def bucket_of(*key: object) -> int:
    """The sample bucket of a key, as the warehouse computes it (for tests and tools)."""
    text = KEY_SEPARATOR.join(str(part) for part in key)
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % SAMPLE_BUCKETS


def quote(name: str) -> str:
    """A column name as a quoted SQL identifier."""
    if '"' in name:
        raise ValueError(f"column name {name!r} contains a double quote")
    return f'"{name}"'


BatchFunction = Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]


class Spool:
    """Batches kept in an anonymous temporary file (deleted when closed, whatever happens)
    with the micro-unit totals of some columns (:class:`clv.level.CappedTotal`), for a second
    pass over them."""

    def __init__(self, batches: pa.RecordBatchReader, columns: Sequence[str]) -> None:
        self.schema = batches.schema
        adding = {name: MicroTotal() for name in columns}
        self._file = tempfile.TemporaryFile(prefix="clv_spool_")  # noqa: SIM115 see close()
        try:
            with pa.ipc.new_stream(self._file, batches.schema) as writer:
                for batch in batches:
                    for name in columns:
                        adding[name].add(batch.column(name).to_numpy(zero_copy_only=False))
                    writer.write_batch(batch)
        except BaseException:
            self._file.close()
            raise
        self.totals = {name: total.result() for name, total in adding.items()}

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The kept batches, once; the file is closed after the last one."""
        try:
            self._file.seek(0)
            yield from pa.ipc.open_stream(self._file)
        finally:
            self._file.close()

    def close(self) -> None:
        self._file.close()


class Warehouse(ABC):
    """The operations the pipeline steps need from the engine that holds the tables."""

    # True where per-customer work runs on the engine's executors (map_batches returns the
    # engine's own lazy result instead of a stream through this process).
    distributed = False
    # The SQL dialect of clv.sql_scoring this engine runs the compiled scoring query in (None:
    # not supported).
    scoring_dialect: str | None = None
    # True where the engine plans the compiled scoring query whole, so dbt runs it as the SQL
    # model int_clv__scores; False where the Python scoring step runs it in stages (compute).
    plans_whole_scoring_query = True

    # -- engine-specific pieces -------------------------------------------------------------

    @abstractmethod
    def schema(self, relation: Any) -> pa.Schema:
        """The relation's columns as Arrow fields (numeric, text, date and boolean types)."""

    @abstractmethod
    def query(self, relation: Any, sql: str) -> pa.Table:
        """Run ``sql``, in which ``{relation}`` stands for the relation, and return the result."""

    @abstractmethod
    def stream(self, relation: Any, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        """Like :meth:`query`, but streamed in batches of at most ``batch_rows`` rows."""

    @abstractmethod
    def md5_int(self, text_sql: str) -> str:
        """SQL for the first 32 bits of md5(``text_sql``) as a non-negative integer."""

    @abstractmethod
    def as_text(self, sql: str) -> str:
        """SQL casting an expression to text."""

    @abstractmethod
    def write_table(self, name: str, data: pa.RecordBatchReader | pa.Table) -> int:
        """Create or replace table ``name`` from ``data`` (streamed); return the row count."""

    # -- shared SQL ---------------------------------------------------------------------------

    def key_sql(self, columns: Sequence[str]) -> str:
        """SQL for the text key ``col1|col2|...`` that :func:`bucket_of` mirrors."""
        parts = [self.as_text(quote(column)) for column in columns]
        return f" || '{KEY_SEPARATOR}' || ".join(parts)

    def bucket_sql(self, columns: Sequence[str]) -> str:
        """SQL for a row's sample bucket, 0 .. SAMPLE_BUCKETS - 1, from its key columns."""
        return f"({self.md5_int(self.key_sql(columns))} % {SAMPLE_BUCKETS})"

    def row_count(self, relation: Any) -> int:
        return int(self.query(relation, "select count(*) as n from {relation}").column(0)[0]
                   .as_py())

    def digest(self, relation: Any, expressions: Sequence[str]) -> tuple[int, int]:
        """(rows, sum of md5 buckets of each row's ``expressions`` joined as text): equal for
        equal content whatever the scan order, the same on every engine."""
        parts = " || '|' || ".join(self.as_text(expression) for expression in expressions)
        table = self.query(relation, f"select count(*) as n, "
                                     f"coalesce(sum({self.md5_int(parts)}), 0) as h "
                                     f"from {{relation}}")
        return int(table.column("n")[0].as_py()), int(table.column("h")[0].as_py())

    def sample(self, relation: Any, columns: Sequence[str], key: Sequence[str],
               limit: int | None) -> pa.Table:
        """The ``columns`` of the rows whose bucket of ``key`` is below ``limit``; None (or
        :data:`SAMPLE_BUCKETS`) keeps every row."""
        select = ", ".join(quote(column) for column in columns)
        sql = f"select {select} from {{relation}}"
        if limit is not None:
            sql += f" where {self.bucket_sql(key)} < {int(limit)}"
        return self.query(relation, sql)

    def read(self, relation: Any, columns: Sequence[str] | None = None) -> pa.Table:
        """The whole relation (or ``columns`` of it); for small tables only."""
        select = "*" if columns is None else ", ".join(quote(c) for c in columns)
        return self.query(relation, f"select {select} from {{relation}}")

    def batches(self, relation: Any, batch_rows: int, columns: Sequence[str] | None = None,
                order_by: Sequence[str] = ()) -> pa.RecordBatchReader:
        """The relation streamed in batches, ordered by ``order_by`` when given."""
        select = "*" if columns is None else ", ".join(quote(c) for c in columns)
        sql = f"select {select} from {{relation}}"
        if order_by:
            sql += " order by " + ", ".join(quote(c) for c in order_by)
        return self.stream(relation, sql, batch_rows)

    def stored_order_batches(self, relation: Any, batch_rows: int,
                             columns: Sequence[str] | None = None,
                             order_by: Sequence[str] = ()) -> pa.RecordBatchReader:
        """Batches in the order the relation was written, where the engine keeps it (no sort,
        so memory stays flat); elsewhere ordered by ``order_by``."""
        return self.batches(relation, batch_rows, columns, order_by)

    # -- what clv build needs where dbt runs no Python models --------------------------------

    @property
    def session_object(self) -> Any:
        """The connection a Python model receives as ``session``."""
        raise NotImplementedError(f"{type(self).__name__} is used inside dbt only")

    def relation(self, name: str) -> Any:
        """What ``dbt.ref()`` returns for table ``name`` (``schema.table``) on this engine."""
        return name

    def close(self) -> None:  # noqa: B027 most warehouses open nothing of their own
        """Release the connection this object opened (none by default)."""

    def database_files(self) -> list[str]:
        """The local files that hold this warehouse's tables (DuckDB's database files; none
        for a server), which no hand-off may overwrite."""
        return []

    def location(self) -> str:
        """Where this warehouse's tables live (its files, server or warehouse directory): with
        a schema, it tells two builds that share a model directory apart."""
        return ",".join(sorted(os.path.abspath(path) for path in self.database_files()))

    # -- per-customer work ----------------------------------------------------------------------

    def map_batches(self, relation: Any, function: BatchFunction, schema: pa.Schema,
                    batch_rows: int, order_by: Sequence[str] = ()) -> Any:
        """``function`` applied to the relation's batches (or a :class:`Spool`'s); here it
        streams through this process, in stored order. ``function`` must be picklable and
        depend only on its input: a distributed engine runs it on its executors, once per
        partition."""
        if isinstance(relation, Spool):
            source = relation.batches()
        else:
            source = iter(self.stored_order_batches(relation, batch_rows, order_by=order_by))
        return pa.RecordBatchReader.from_batches(schema, function(source))

    def totals(self, result: Any, columns: Sequence[str]) -> tuple[Any, dict[str, CappedTotal]]:
        """Keep a :meth:`map_batches` result for a second pass and add up ``columns`` in
        micro-units, with the customers above a tenth of each total (:class:`clv.level.
        CappedTotal`); returns (the kept result, totals)."""
        spool = Spool(result, columns)
        return spool, spool.totals

    def compute(self, relation: Any, name: str, sql: str) -> Any:
        """Run ``sql`` (a statement in the layout of :mod:`clv.sql_scoring`, reading the
        relation as table ``name``) in stages; only for engines that do not plan it whole."""
        raise NotImplementedError(f"{type(self).__name__} plans the scoring query whole: dbt "
                                  "runs it as int_clv__scores")

    def release(self, kept: Any) -> None:
        """Free what :meth:`totals` kept."""
        kept.close()

    def detach(self, result: Any, kept: Any) -> Any:
        """``result``, a :meth:`map_batches` over what :meth:`totals` kept, in a form that no
        longer needs ``kept``, which is then freed. Here the kept batches are read once and
        their file closed after the last, so ``result`` is returned as it is."""
        del kept
        return result
