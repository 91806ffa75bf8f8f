"""PostgreSQL: dbt-postgres runs no Python models, so ``clv build`` runs the Python steps with a
psycopg2 connection of its own; relations are table names.

Rows travel in PostgreSQL's CSV COPY format both ways: out through a temporary file read back
by pyarrow's streaming CSV reader (bounded memory, typed by the query's own column types),
in through ``COPY ... FROM STDIN`` fed batch by batch. PostgreSQL prints a double with the
fewest digits that read back exactly (extra_float_digits = 1, the default since version 12),
and pyarrow's CSV writer does the same, so values survive the round trip bit for bit. The
connection pins the settings that the text depends on (:data:`_SESSION_OPTIONS`), whatever
the server's or the role's defaults.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from clv.warehouse.base import Warehouse, quote

_RELATION = "clv_relation"
_COPY_BLOCK = 1 << 20  # bytes per read of a COPY stream
# How this connection prints values, which the CSV reader relies on: doubles that read back
# exactly, a timestamp with time zone in UTC (a zone's historical offset such as +00:53:28 is
# not ISO 8601). psycopg2 itself sets ISO dates. After the user's own PGOPTIONS, so these win.
_SESSION_OPTIONS = "-c extra_float_digits=1 -c TimeZone=UTC"

# pg_type OIDs -> Arrow types (anything else is read as text)
_ARROW_TYPES = {
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 26: pa.int64(),
    700: pa.float64(), 701: pa.float64(), 1700: pa.float64(),
    1082: pa.date32(), 1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"),
}


def _pg_type(kind: pa.DataType) -> str:
    if pa.types.is_boolean(kind):
        return "boolean"
    if pa.types.is_integer(kind):
        return "bigint"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "double precision"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    return "text"


def _table_name(name: str) -> str:
    return ".".join(quote(part) for part in name.split("."))


class _CsvStream(io.RawIOBase):
    """A file-like object that reads Arrow batches as CSV bytes, for ``COPY FROM STDIN``."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self._buffer = b""
        self.rows = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while len(self._buffer) < max(size, 1):
            batch = next(self._batches, None)
            if batch is None:
                break
            if batch.num_rows == 0:
                continue
            self.rows += batch.num_rows
            out = io.BytesIO()
            # Every valid value quoted, nulls left empty: COPY tells an empty text ("") from
            # a null that way.
            pacsv.write_csv(batch, out, pacsv.WriteOptions(include_header=False,
                                                           quoting_style="all_valid"))
            self._buffer += out.getvalue()
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def readline(self, size: int = -1) -> bytes:  # psycopg2 reads COPY data with read()
        return self.read(size)


def _name_money_type() -> None:
    """Give PostgreSQL's money (type 790) a name in psycopg2, which has no caster for it:
    dbt-postgres, which names a column's type after psycopg2's casters, would report it as
    "unknown type_code 790" with a warning (an error under --warn-error) for every money
    column of an input. Its values stay the text psycopg2 returns for a type it does not know."""
    import psycopg2.extensions

    if 790 not in psycopg2.extensions.string_types:
        psycopg2.extensions.register_type(
            psycopg2.extensions.new_type((790,), "MONEY", lambda value, cursor: value))


class PostgresWarehouse(Warehouse):
    """A psycopg2 connection; relations are (schema-qualified) table names."""

    scoring_dialect = "postgres"

    def __init__(self, connection: Any, schema: str | None = None) -> None:
        self.connection = connection
        self.default_schema = schema

    @staticmethod
    def accepts(session: object) -> bool:
        return type(session).__module__.startswith("psycopg2")

    def location(self) -> str:
        dsn = self.connection.get_dsn_parameters()
        return f"{dsn.get('host', '')}:{dsn.get('port', '')}/{dsn.get('dbname', '')}"

    @classmethod
    def open(cls, credentials: Any) -> PostgresWarehouse:
        """A new connection from a dbt-postgres profile's credentials, as dbt connects: its
        ``role`` (set after login, so the tables the Python steps write belong to the role
        dbt's own stages write as), ``search_path``, SSL files and ``keepalives_idle`` too. An
        unreachable server or refused login raises ConnectionError with the server's one-line
        reason."""
        import psycopg2

        _name_money_type()
        options = [os.environ.get("PGOPTIONS", "")]
        if search_path := getattr(credentials, "search_path", None):
            options.append("-c search_path=" + search_path.replace(" ", "\\ "))
        options.append(_SESSION_OPTIONS)  # last, so these win
        extra = {name: value for name in ("sslmode", "sslcert", "sslkey", "sslrootcert",
                                          "keepalives_idle")
                 if (value := getattr(credentials, name, None))}
        try:
            connection = psycopg2.connect(
                host=credentials.host, port=credentials.port, user=credentials.user,
                password=credentials.password, dbname=credentials.database,
                connect_timeout=getattr(credentials, "connect_timeout", 10) or 10,
                application_name="clv", options=" ".join(o for o in options if o), **extra)
        except psycopg2.OperationalError as error:
            # "connection to server at ..., port ... failed: FATAL:  <reason>"
            first = next((line for line in str(error).splitlines() if line.strip()), "")
            reason = first.rsplit("failed:", 1)[-1].replace("FATAL:", "").strip()
            raise ConnectionError(
                f"cannot connect to PostgreSQL at {credentials.host}:{credentials.port} as "
                f"{credentials.user} (database {credentials.database}): {reason}; set PGHOST, "
                "PGPORT, PGUSER, PGPASSWORD and PGDATABASE") from None
        if role := getattr(credentials, "role", None):
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"set role {role}")  # unquoted, as dbt-postgres sets it
                connection.commit()
            except psycopg2.Error as error:
                connection.close()
                raise ConnectionError(f"cannot set role {role} (the profile's role) as "
                                      f"{credentials.user}: {str(error).strip()}") from None
        warehouse = cls(connection, credentials.schema)
        warehouse._owned = True
        return warehouse

    @property
    def session_object(self) -> Any:
        return self.connection

    def close(self) -> None:
        if getattr(self, "_owned", False):
            self.connection.close()

    def _name(self, relation: Any) -> str:
        name = str(relation)
        if "." not in name and '"' not in name and self.default_schema:
            return f"{quote(self.default_schema)}.{quote(name)}"
        return name if '"' in name else _table_name(name)

    def _sql(self, relation: Any, sql: str) -> str:
        return (f"with {_RELATION} as (select * from {self._name(relation)}) "
                + sql.replace("{relation}", _RELATION))

    def _types(self, sql: str) -> list[tuple[str, pa.DataType]]:
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(f"select * from ({sql}) as clv_query limit 0")
                fields = [(column.name, _ARROW_TYPES.get(column.type_code, pa.string()))
                          for column in cursor.description]
        except BaseException:
            self._end_failed_transaction()
            raise
        self.connection.commit()  # a read holds no lock once it is done
        return fields

    def _end_failed_transaction(self) -> None:
        """Roll back after a failed statement, so the connection takes the next one (a
        failed read, such as a missing table, must not poison later reads)."""
        with contextlib.suppress(Exception):
            self.connection.rollback()

    def schema(self, relation: Any) -> pa.Schema:
        fields = self._types(f"select * from {self._name(relation)}")
        return pa.schema([pa.field(name, kind) for name, kind in fields])

    def _copy_out(self, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        fields = self._types(sql)
        spool = tempfile.TemporaryFile(prefix="clv_pg_")  # noqa: SIM115 closed by the reader
        try:
            try:
                with self.connection.cursor() as cursor:
                    cursor.copy_expert(f"copy ({sql}) to stdout with (format csv, header true)",
                                       spool, size=_COPY_BLOCK)
            except BaseException:
                self._end_failed_transaction()
                raise
            self.connection.commit()
            spool.seek(0)
            schema = pa.schema([pa.field(name, kind) for name, kind in fields])
            if not fields:
                spool.close()
                return pa.RecordBatchReader.from_batches(schema, [])
            # Rows per block: about batch_rows, from a rough 16 bytes per value (the batches
            # are cut to batch_rows below). A quoted text may hold a line break.
            block = max(1 << 16, min(1 << 28, batch_rows * len(fields) * 16))
            reader = pacsv.open_csv(
                spool,
                read_options=pacsv.ReadOptions(block_size=block),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict(fields), strings_can_be_null=True,
                    quoted_strings_can_be_null=False, null_values=[""],
                    true_values=["t"], false_values=["f"],
                    timestamp_parsers=[pacsv.ISO8601]))
        except BaseException:
            spool.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for read in reader:
                    batch = read.cast(schema) if read.schema != schema else read
                    for start in range(0, batch.num_rows, batch_rows):
                        yield batch.slice(start, batch_rows)
            finally:
                spool.close()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def query(self, relation: Any, sql: str) -> pa.Table:
        return self._copy_out(self._sql(relation, sql), 1_000_000).read_all()

    def stream(self, relation: Any, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        return self._copy_out(self._sql(relation, sql), batch_rows)

    def md5_int(self, text_sql: str) -> str:
        return f"(('x' || left(md5({text_sql}), 8))::bit(32)::bigint)"

    def as_text(self, sql: str) -> str:
        return f"cast({sql} as text)"

    def write_table(self, name: str, data: Any) -> int:
        """Replace table ``name`` in one transaction: readers see the old or the new table,
        and a failure (or a lost connection) leaves the old one. ``data`` is a stream, a table
        or DataFrame, or the name of a relation to copy (a :meth:`compute` result)."""
        if isinstance(data, str):
            source = self._name(data)

            def fill(cursor: Any, staged: str) -> int:
                cursor.execute(f"create table {staged} as select * from {source}")
                return int(cursor.rowcount)

            return self._replace(name, fill)
        if not isinstance(data, pa.RecordBatchReader | pa.Table):
            data = pa.Table.from_pandas(data, preserve_index=False)
        batches = iter(data.to_batches() if isinstance(data, pa.Table) else data)
        columns = ", ".join(f"{quote(field.name)} {_pg_type(field.type)}"
                            for field in data.schema)

        def copy_in(cursor: Any, staged: str) -> int:
            stream = _CsvStream(batches)
            cursor.execute(f"create table {staged} ({columns})")
            cursor.copy_expert(f"copy {staged} from stdin with (format csv)", stream,
                               size=_COPY_BLOCK)
            return stream.rows

        return self._replace(name, copy_in)

    def _replace(self, name: str, fill: Callable[[Any, str], int]) -> int:
        """``fill(cursor, staged)`` creates and fills a new table under a staged name and
        returns its rows; then, in the same transaction, it takes the place of ``name`` (the
        old table is locked only for the swap). Views over the old table are dropped with it,
        as dbt's own table materialization drops them (PostgreSQL keeps no view of a dropped
        table): the build creates its own views again downstream."""
        target = self._name(name)
        schema_name, _, table = name.rpartition(".")
        schema_name = schema_name or self.default_schema
        staged = f"{table}__clv_{secrets.token_hex(4)}"
        staged_name = f"{quote(schema_name)}.{quote(staged)}" if schema_name else quote(staged)
        try:
            with self.connection.cursor() as cursor:
                rows = fill(cursor, staged_name)
                cursor.execute(f"drop table if exists {target} cascade")
                cursor.execute(f"alter table {staged_name} rename to {quote(table)}")
            self.connection.commit()
        except BaseException:
            self._end_failed_transaction()
            raise
        return rows
