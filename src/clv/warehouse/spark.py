"""Apache Spark: relations are table names or pyspark DataFrames (what ``dbt.ref()`` returns in
a Python model on Databricks); the session is a SparkSession.

Per-customer work is distributed: :meth:`SparkWarehouse.map_batches` runs a batch function
on the executors with ``mapInArrow`` (the function and the model it closes over are shipped
once per task), and its result is a DataFrame that Spark writes itself, so no customer row is
collected to the driver. Only bounded results (a sample, counts, totals) come back as Arrow.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import Any

import pyarrow as pa

from clv.level import DOMINANT_SHARE, MICRO_BOUND, CappedTotal
from clv.warehouse.base import BatchFunction, Warehouse

# Rows per Arrow batch that Spark hands a mapInArrow function.
_ARROW_BATCH_ROWS = 10_000

# PySpark 4 warns on every Arrow call that it is not yet tested with pandas 3. The paths used
# here hand Arrow batches to the scoring and never convert through pandas; the cross-engine
# tests run them on pandas 3. Without this filter a Spark build prints the warning at every
# Python step.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)


def _is_dataframe(value: object) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pyspark")


def _quote(name: str) -> str:
    if "`" in name:
        raise ValueError(f"name {name!r} contains a backquote")
    return f"`{name}`"


# A string literal (Spark's: backslash escapes) or an ANSI double-quoted identifier.
_LITERAL_OR_QUOTED = re.compile(r"'(?:\\.|[^'\\])*'|\"((?:[^\"]|\"\")*)\"")


def spark_identifiers(sql: str) -> str:
    """``sql`` with its ANSI double-quoted identifiers in Spark's backquotes; a double quote
    inside a string literal stays as written."""
    def convert(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)
        return "`" + match.group(1).replace('""', '"').replace("`", "``") + "`"

    return _LITERAL_OR_QUOTED.sub(convert, sql)


def _arrow(schema: Any) -> pa.Schema:
    """A Spark schema as Arrow fields (numeric, text, date, timestamp and boolean types)."""
    fields = []
    for field in schema.fields:
        kind = field.dataType.typeName()
        if kind in {"long", "integer", "short", "byte"}:
            arrow = pa.int64()
        elif kind in {"double", "float", "decimal"}:
            arrow = pa.float64()
        elif kind == "boolean":
            arrow = pa.bool_()
        elif kind == "date":
            arrow = pa.date32()
        elif kind in {"timestamp", "timestamp_ntz"}:
            arrow = pa.timestamp("us")
        else:
            arrow = pa.string()
        fields.append(pa.field(field.name, arrow))
    return pa.schema(fields)


def _utc(row: Sequence[Any], timestamps: Sequence[int]) -> list[Any]:
    """``row`` with the local wall times at positions ``timestamps`` as UTC wall times."""
    values = list(row)
    for i in timestamps:
        if values[i] is not None:
            values[i] = values[i].astimezone(UTC).replace(tzinfo=None)
    return values


def _naive_as_utc(table: pa.Table) -> pa.Table:
    """``table`` with its timestamps without a time zone marked as UTC (the values unchanged):
    Spark reads a zone-less timestamp as wall time in the session's time zone, and these are
    UTC, as the tables of ``map_batches`` and every read here hold them."""
    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            table = table.set_column(index, field.name, table.column(index).cast(
                pa.timestamp(field.type.unit, tz="UTC")))
    return table


def spark_schema(schema: pa.Schema) -> Any:
    """An Arrow schema as a Spark StructType."""
    from pyspark.sql import types as t

    def kind(arrow: pa.DataType) -> Any:
        if pa.types.is_boolean(arrow):
            return t.BooleanType()
        if pa.types.is_integer(arrow):
            return t.LongType()
        if pa.types.is_floating(arrow) or pa.types.is_decimal(arrow):
            return t.DoubleType()
        if pa.types.is_date(arrow):
            return t.DateType()
        if pa.types.is_timestamp(arrow):  # as dbt-spark's own tables hold them (UTC session)
            return t.TimestampType()
        return t.StringType()

    return t.StructType([t.StructField(field.name, kind(field.type), nullable=True)
                         for field in schema])


# A common table expression as clv.sql_scoring writes it: the name and ``as (`` alone on a
# line at the margin, the body indented, ``)`` closing it at the margin.
_CTE_START = re.compile(r"^(\w+) as (?:materialized )?\($")
_CTE_END = re.compile(r"^\),?$")


def with_stages(sql: str) -> tuple[list[tuple[str, str]], str]:
    """A ``with a as (...), b as (...) select ...`` statement in the layout of
    :mod:`clv.sql_scoring` as its common table expressions, ``(name, select)`` in order, and
    the final select. Raises ValueError on any other layout."""
    lines = sql.strip().splitlines()
    if not lines or lines[0] != "with":
        raise ValueError("not a statement in the layout of clv.sql_scoring: no leading 'with'")
    stages: list[tuple[str, str]] = []
    name: str | None = None
    body: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        if name is None:
            start = _CTE_START.match(line)
            if start:
                name, body = start.group(1), []
            elif line.strip():  # the final select
                return stages, "\n".join(lines[number - 1:])
        elif _CTE_END.match(line):
            stages.append((name, "\n".join(body)))
            name = None
        else:
            body.append(line)
    raise ValueError("not a statement in the layout of clv.sql_scoring: no final select")


class SparkWarehouse(Warehouse):
    """A SparkSession (local, or a cluster's)."""

    distributed = True
    scoring_dialect = "spark"
    plans_whole_scoring_query = False

    def __init__(self, session: Any, database: str | None = None) -> None:
        self.session = session
        self.database = database
        session.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(_ARROW_BATCH_ROWS))

    @staticmethod
    def accepts(session: object) -> bool:
        return type(session).__name__ == "SparkSession"

    def location(self) -> str:
        """The session's warehouse directory; a relative local one (a profile's
        ``spark-warehouse``) made absolute, so two checkouts that share a model directory are
        two builds (:func:`clv.pipeline.registry.build_key`)."""
        directory = str(self.session.conf.get("spark.sql.warehouse.dir", ""))
        if not directory or "://" in directory or directory.startswith("file:"):
            return directory
        return os.path.abspath(directory)

    @classmethod
    def start(cls, settings: dict[str, str], database: str | None) -> SparkWarehouse:
        """The SparkSession of a dbt-spark ``session`` profile (its server_side_parameters),
        created before dbt runs so that dbt-spark and the Python steps share it. Python workers
        run this interpreter, which has the package installed."""
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.enableHiveSupport()
        for key, value in settings.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return cls(session, database)

    @property
    def session_object(self) -> Any:
        return self.session

    def relation(self, name: str) -> Any:
        return self._frame(name)

    def _frame(self, relation: Any) -> Any:
        if _is_dataframe(relation):
            return relation
        name = str(relation).replace("`", "").replace('"', "")
        if "." not in name and self.database:
            name = f"{self.database}.{name}"
        return self.session.table(".".join(_quote(part) for part in name.split(".")))

    def _sql(self, relation: Any, sql: str) -> tuple[Any, str]:
        """``sql`` over the relation as a DataFrame, and the temporary view it reads, which
        the caller drops once the rows are read (:meth:`_drop_view`)."""
        view = f"clv_relation_{secrets.token_hex(4)}"
        self._frame(relation).createOrReplaceTempView(view)
        try:
            return self.session.sql(spark_identifiers(sql.replace("{relation}", view))), view
        except BaseException:  # a query Spark refuses to analyse leaves no view behind
            self._drop_view(view)
            raise

    def _drop_view(self, view: str) -> None:
        self.session.catalog.dropTempView(view)

    def schema(self, relation: Any) -> pa.Schema:
        return _arrow(self._frame(relation).schema)

    def _to_arrow(self, frame: Any) -> pa.Table:
        table = frame.toArrow()
        target = _arrow(frame.schema)
        return table.cast(target) if table.schema != target else table

    def query(self, relation: Any, sql: str) -> pa.Table:
        frame, view = self._sql(relation, sql)
        try:
            return self._to_arrow(frame)
        finally:
            self._drop_view(view)

    def stream(self, relation: Any, sql: str, batch_rows: int) -> pa.RecordBatchReader:
        """The rows through the driver one partition at a time (for small results and the
        Parquet hand-off; per-customer work uses :meth:`map_batches`)."""
        frame, view = self._sql(relation, sql)
        schema = _arrow(frame.schema)
        names = schema.names
        # A row gives a TIMESTAMP as the driver's local wall time (PySpark converts with the
        # process's time zone); as UTC, as query() reads it through Arrow.
        local = [i for i, field in enumerate(frame.schema.fields)
                 if field.dataType.typeName() == "timestamp"]

        def batches() -> Iterator[pa.RecordBatch]:
            rows: list[Any] = []
            try:
                for row in frame.toLocalIterator(prefetchPartitions=False):
                    rows.append(_utc(row, local) if local else row)
                    if len(rows) >= batch_rows:
                        yield pa.RecordBatch.from_pylist([dict(zip(names, r, strict=True))
                                                          for r in rows], schema=schema)
                        rows = []
                if rows:
                    yield pa.RecordBatch.from_pylist([dict(zip(names, r, strict=True))
                                                      for r in rows], schema=schema)
            finally:
                self._drop_view(view)

        return pa.RecordBatchReader.from_batches(schema, batches())

    def md5_int(self, text_sql: str) -> str:
        return f"cast(conv(substr(md5({text_sql}), 1, 8), 16, 10) as bigint)"

    def as_text(self, sql: str) -> str:
        return f"cast({sql} as string)"

    def map_batches(self, relation: Any, function: BatchFunction, schema: pa.Schema,
                    batch_rows: int, order_by: Sequence[str] = ()) -> Any:
        """``function`` over each partition's batches, on the executors: a lazy DataFrame."""
        del batch_rows, order_by  # Spark sizes the batches; rows carry their own keys
        return self._frame(relation).mapInArrow(function, spark_schema(schema))

    def totals(self, result: Any, columns: Sequence[str]) -> tuple[Any, dict[str, CappedTotal]]:
        """The result persisted (memory, spilling to disk) and the columns' exact sums in
        micro-units, rounded per value as :func:`clv.level.micro_units` rounds, with the
        values above a tenth of each sum (:class:`clv.level.CappedTotal`): a second
        aggregate over the persisted rows."""
        from pyspark.sql import functions as F

        def micro(name: str) -> Any:
            # NaN, infinities and values beyond MICRO_BOUND as 0; summed as decimal(38, 0),
            # which does not overflow where bigint would wrap
            value = F.nanvl(F.col(name), F.lit(0.0))
            value = F.when(F.abs(value) <= F.lit(MICRO_BOUND), value).otherwise(F.lit(0.0))
            rounded = F.signum(value) * F.floor(F.abs(value) * F.lit(1_000_000.0) + F.lit(0.5))
            return rounded.cast("decimal(38, 0)")

        units = {name: micro(name) for name in columns}
        kept = result.persist()
        try:
            row = kept.agg(*[F.coalesce(F.sum(units[name]), F.lit(0)).alias(name)
                             for name in columns]).collect()[0]
            sums = {name: int(row[name]) for name in columns}
            dominant = {name: units[name] * F.lit(DOMINANT_SHARE)
                        > F.lit(str(sums[name])).cast("decimal(38, 0)")
                        for name in columns}
            row = kept.agg(*[aggregate for name in columns for aggregate in (
                F.coalesce(F.sum(F.when(dominant[name], units[name])),
                           F.lit(0)).alias(f"{name}_sum"),
                F.count(F.when(dominant[name], F.lit(1))).alias(f"{name}_count"))]).collect()[0]
        except BaseException:
            self.release(kept)
            raise
        return kept, {name: CappedTotal(sums[name], int(row[f"{name}_sum"]),
                                        int(row[f"{name}_count"])) for name in columns}

    def compute(self, relation: Any, name: str, sql: str) -> Any:
        """Run ``sql`` (a statement in the layout of :mod:`clv.sql_scoring`, reading the
        relation as ``name``) one common table expression at a time, each checkpointed on the
        executors before the next is planned: Catalyst plans the compiled scoring query whole
        only in minutes and then runs out of memory (its optimiser merges the layers back into
        one expression per output), while a stage that starts from the previous stage's rows
        holds one layer's expressions. The result is the last stage's rows, checkpointed."""
        stages, final = with_stages(sql)
        views = [name]
        self._frame(relation).createOrReplaceTempView(name)
        try:
            for view, select in stages:
                self.session.sql(select).localCheckpoint().createOrReplaceTempView(view)
                views.append(view)
            return self.session.sql(final).localCheckpoint()
        finally:
            for view in views:
                self.session.catalog.dropTempView(view)

    def release(self, kept: Any) -> None:
        kept.unpersist()

    def detach(self, result: Any, kept: Any) -> Any:
        """``result`` computed into the executors' storage (a local checkpoint, freed when the
        result is no longer referenced), then ``kept`` unpersisted: the result is returned to
        whoever writes the table (``clv build``, or dbt on Databricks), after which nothing of
        this step could unpersist the kept scores, so a session that runs many builds (a
        backfill) would keep every date's."""
        try:
            return result.localCheckpoint(eager=True)
        finally:
            self.release(kept)

    def write_table(self, name: str, data: Any) -> int:
        """Replace table ``name``: written under a new name first, then swapped in (a drop and
        a rename: two catalog statements, not one transaction), so a failure while writing
        leaves the old table and no staged one."""
        if _is_dataframe(data):
            frame = data
        else:
            if isinstance(data, pa.RecordBatchReader):
                data = data.read_all()
            if not isinstance(data, pa.Table):
                data = pa.Table.from_pandas(data, preserve_index=False)
            data = _naive_as_utc(data)
            frame = self.session.createDataFrame(data, schema=spark_schema(data.schema))
        name = name.replace("`", "").replace('"', "")
        if "." not in name and self.database:
            name = f"{self.database}.{name}"
        database, _, table = name.rpartition(".")
        prefix = f"{_quote(database)}." if database else ""
        staged = f"{prefix}{_quote(f'{table}__clv_{secrets.token_hex(4)}')}"
        try:
            frame.write.format("parquet").mode("error").saveAsTable(staged)
        except BaseException:
            with contextlib.suppress(Exception):  # the write's own error is the one to report
                self.session.sql(f"drop table if exists {staged}")
            raise
        self.session.sql(f"drop table if exists {prefix}{_quote(table)}")
        self.session.sql(f"alter table {staged} rename to {prefix}{_quote(table)}")
        return self.session.table(f"{prefix}{_quote(table)}").count()
