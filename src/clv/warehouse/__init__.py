"""The one boundary between the Python package and the warehouse.

Everything the training, scoring, evaluation and export steps need from the engine goes
through :class:`Warehouse`: a relation's schema, row counts, a deterministic sample, a digest
of a relation's content, streamed batches and writing a table. Only the modules of this
subpackage know which engine they talk to; :func:`connect` picks the implementation for the
connection a dbt Python model receives.

A *relation* is whatever the engine's dbt adapter hands a Python model for ``dbt.ref()``
(a DuckDB relation on DuckDB). Warehouse methods take it as an opaque handle.
"""

from __future__ import annotations

from clv.warehouse.base import SAMPLE_BUCKETS, Warehouse, bucket_of
from clv.warehouse.duckdb import DuckDBWarehouse

__all__ = ["SAMPLE_BUCKETS", "DuckDBWarehouse", "Warehouse", "bucket_of", "connect"]


def connect(session: object) -> Warehouse:
    """The warehouse behind ``session``, the connection dbt passes to a Python model."""
    if DuckDBWarehouse.accepts(session):
        return DuckDBWarehouse(session)
    raise TypeError(f"no warehouse implementation for a {type(session).__module__}."
                    f"{type(session).__name__} session; supported: DuckDB")
