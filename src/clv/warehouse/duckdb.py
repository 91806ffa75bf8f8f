"""DuckDB, the embedded default: dbt-duckdb runs Python models in its own process and hands
them a DuckDB connection and DuckDB relations. Also the writer of DuckDB database files
(:func:`write_database_file`), which the BI hand-off uses whatever the warehouse engine is."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from clv.warehouse.base import Warehouse, quote

_RELATION = "clv_relation"  # the name a relation takes inside a query
# The storage format of the database files write_database_file creates: DuckDB 2.0 writes its
# newest format by default, which DuckDB 1.x (inside the BI tools' drivers) cannot open; this one
# every DuckDB from 1.0 (and 0.10) on reads.
DATABASE_FILE_STORAGE = "v1.0.0"
# What the writer of a database file may use: it holds one batch per table being copied plus
# DuckDB's buffers, not the tables.
DATABASE_FILE_MEMORY = "128MB"

_ARROW_TYPES = {
    "BIGINT": pa.int64(), "INTEGER": pa.int64(), "SMALLINT": pa.int64(),
    "TINYINT": pa.int64(), "HUGEINT": pa.int64(), "UBIGINT": pa.int64(),
    "UINTEGER": pa.int64(), "USMALLINT": pa.int64(), "UTINYINT": pa.int64(),
    "DOUBLE": pa.float64(), "FLOAT": pa.float64(), "REAL": pa.float64(),
    "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
}


def _arrow_type(duckdb_type: Any) -> pa.DataType:
    name = str(duckdb_type).upper()
    if name.startswith("DECIMAL"):
        return pa.float64()
    if name.startswith("TIMESTAMP"):
        return pa.timestamp("us")
    return _ARROW_TYPES.get(name, pa.string())


def _reader(relation: duckdb.DuckDBPyRelation, batch_rows: int) -> pa.RecordBatchReader:
    # newer DuckDB releases call it to_arrow_reader, older ones fetch_record_batch
    if hasattr(relation, "to_arrow_reader"):
        return relation.to_arrow_reader(batch_rows)
    return relation.fetch_record_batch(batch_rows)


def _unwrap(session: Any) -> Any:
    """The DuckDB connection inside dbt-duckdb's cursor wrapper (or ``session`` itself)."""
    return getattr(session, "_cursor", session)


class DuckDBWarehouse(Warehouse):
    """A DuckDB connection; relations are DuckDB relations (``dbt.ref()`` in dbt-duckdb) or
    table names."""

    scoring_dialect = "duckdb"

    def __init__(self, connection: Any) -> None:
        self.connection = _unwrap(connection)

    @staticmethod
    def accepts(session: object) -> bool:
        return isinstance(_unwrap(session), duckdb.DuckDBPyConnection)

    def _relation(self, relation: Any) -> duckdb.DuckDBPyRelation:
        if isinstance(relation, str):
            return self.connection.table(relation)
        return relation

    def _bound(self, relation: Any, sql: str) -> duckdb.DuckDBPyRelation:
        return self._relation(relation).query(_RELATION, sql.replace("{relation}", _RELATION))

    def schema(self, relation: Any) -> pa.Schema:
        relation = self._relation(relation)
        return pa.schema([pa.field(name, _arrow_type(kind))
                          for name, kind in zip(relation.columns, relation.types, strict=True)])

    def query(self, relation: Any, sql: str) -> pa.Table:
        return _reader(self._bound(relation, sql), 1_000_000).read_all()

    def stream(self, relation: Any, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        return _reader(self._bound(relation, sql), batch_rows)

    def md5_int(self, text_sql: str) -> str:
        return f"cast('0x' || left(md5({text_sql}), 8) as ubigint)"

    def as_text(self, sql: str) -> str:
        return f"cast({sql} as varchar)"

    def database_files(self) -> list[str]:
        return [path for (path,) in self.connection.execute(
            "select path from duckdb_databases() where path is not null").fetchall()]

    def stored_order_batches(self, relation: Any, batch_rows: int, columns=None,
                             order_by=()) -> pa.RecordBatchReader:
        # DuckDB scans a table in the order it was written (insertion order is preserved), so
        # a table written sorted streams sorted without a sort that would hold it in memory.
        return self.batches(relation, batch_rows, columns)

    def write_table(self, name: str, data: pa.RecordBatchReader | pa.Table) -> int:
        if isinstance(data, pa.Table):
            data = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
        target = ".".join(quote(part) for part in name.split("."))
        # On a cursor of its own: ``data`` may stream a query of this connection (a
        # map_batches result), which keeps the connection busy until it is read.
        cursor = self.connection.cursor()
        try:
            cursor.register("clv_incoming", data)
            cursor.execute(f"create or replace table {target} as select * from clv_incoming")
            return int(cursor.execute(f"select count(*) from {target}").fetchall()[0][0])
        finally:
            cursor.close()


def write_database_file(path: Path,
                        tables: Iterable[tuple[str, pa.RecordBatchReader]]) -> dict[str, int]:
    """Create the DuckDB database file ``path`` (which must not exist) holding one table per
    (name, batches) pair, each streamed in (bounded memory; column types as the Arrow types
    say: DATE stays DATE, INTEGER stays INTEGER); return the rows of each table.

    The file is checkpointed and closed before this returns, so it is complete on its own (no
    write-ahead log beside it) and can be renamed. A failed write (DuckDB's I/O and fatal
    errors) is raised as an OSError whose message is DuckDB's ("Could not write file ...: No
    space left on device").
    """
    rows: dict[str, int] = {}
    config = {"storage_compatibility_version": DATABASE_FILE_STORAGE,
              "memory_limit": DATABASE_FILE_MEMORY}
    try:
        connection = duckdb.connect(str(path), config=config)
        try:
            for name, batches in tables:
                connection.register("clv_incoming", batches)
                try:
                    connection.execute(f"create table {quote(name)} as "
                                       f"select * from clv_incoming")
                finally:
                    connection.unregister("clv_incoming")
                rows[name] = int(connection.execute(
                    f"select count(*) from {quote(name)}").fetchall()[0][0])
            connection.execute("checkpoint")
        finally:
            connection.close()
    except (duckdb.IOException, duckdb.FatalException) as error:
        # a write that fails at a checkpoint is fatal to this new database only
        raise OSError(str(error)) from error
    return rows
