"""The one boundary between the Python package and the warehouse.

Everything the training, scoring, evaluation and export steps need from the engine goes
through :class:`Warehouse`: a relation's schema, row counts, a deterministic sample, a digest
of a relation's content, streamed batches and writing a table. Only the modules of this
subpackage know which engine they talk to; :func:`connect` picks the implementation for the
connection a dbt Python model receives.

A *relation* is whatever the engine's dbt adapter hands a Python model for ``dbt.ref()``
(a DuckDB relation on DuckDB, a pyspark DataFrame on Databricks) or a table name (what
``clv build`` passes on engines where dbt runs no Python models). Warehouse methods take it as
an opaque handle.

Implementations: DuckDB (:mod:`clv.warehouse.duckdb`), PostgreSQL
(:mod:`clv.warehouse.postgres`, a psycopg2 connection) and Spark (:mod:`clv.warehouse.spark`,
a SparkSession); neither psycopg2 nor pyspark is imported unless that engine is used.
"""

from __future__ import annotations

from clv.warehouse.base import SAMPLE_BUCKETS, Warehouse, bucket_of
from clv.warehouse.duckdb import DuckDBWarehouse
from clv.warehouse.postgres import PostgresWarehouse
from clv.warehouse.spark import SparkWarehouse

__all__ = ["SAMPLE_BUCKETS", "DuckDBWarehouse", "PostgresWarehouse", "SparkWarehouse",
           "Warehouse", "bucket_of", "connect"]


def connect(session: object) -> Warehouse:
    """The warehouse behind ``session``, the connection dbt (or ``clv build``) passes to a
    Python model; a :class:`Warehouse` is returned as it is."""
    if isinstance(session, Warehouse):
        return session
    for implementation in (DuckDBWarehouse, PostgresWarehouse, SparkWarehouse):
        if implementation.accepts(session):
            return implementation(session)
    raise TypeError(f"no warehouse implementation for a {type(session).__module__}."
                    f"{type(session).__name__} session; supported: DuckDB, PostgreSQL "
                    "(psycopg2), Spark (SparkSession)")
