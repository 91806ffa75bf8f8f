"""The Parquet copy of clv_predictions that BI tools and other processes read.

DuckDB lets one process at a time open a database file for writing, so readers that must not
block ``dbt build`` read this file instead. It is replaced atomically after every build; a
build killed while writing leaves only a hidden temporary file, which a later export deletes.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clv.artifacts import LEFTOVER_SECONDS, new_temporary_file, write_failed
from clv.config import ID_COLUMN
from clv.pipeline.log import dbt_log
from clv.warehouse import Warehouse


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def checked_path(path: Path, var: str = "clv_export_path") -> Path:
    """``path`` (the value of ``var``, a file to write) after the checks only the file system
    can answer."""
    if path.is_dir():
        raise ValueError(f"Invalid value for var '{var}': {str(path)!r} is a directory")
    if path.parent.exists() and not path.parent.is_dir():
        raise ValueError(f"Invalid value for var '{var}': {str(path.parent)!r} is not "
                         "a directory")
    return path


def remove_leftovers(path: Path, older_than: float = LEFTOVER_SECONDS) -> list[str]:
    """Delete the temporary files of ``path`` that killed writes left (older than
    ``older_than`` seconds: a younger one may be another build's write in progress)."""
    if not path.parent.is_dir():
        return []
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - tmp.stat().st_mtime > older_than:
                tmp.unlink()
                removed.append(tmp.name)
    return removed


def write_parquet(batches: pa.RecordBatchReader, path: Path) -> pd.DataFrame:
    """Write ``batches`` to ``path`` as Parquet so that a reader only ever sees the previous
    complete file or the new complete file; return one row: path, rows, written_at.

    The rows stream into a temporary file in the same directory (bounded memory), which is
    flushed to disk and then renamed over ``path``: a rename within one file system is atomic.
    A failure at any point leaves the previous file untouched and removes the temporary one;
    a full disk (or quota, or file size limit) is reported as such, naming the file.
    """
    path = checked_path(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in remove_leftovers(path):
        dbt_log(f"removed {name}, left by an export that was interrupted")
    fd, tmp = new_temporary_file(path)  # readable by other accounts, as the umask allows
    rows = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            with pq.ParquetWriter(handle, batches.schema) as writer:
                for batch in batches:
                    writer.write_batch(batch)
                    rows += batch.num_rows
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(error, OSError):
            raise write_failed(path, error) from error
        raise
    _fsync_directory(path.parent)
    written_at = datetime.now(UTC).replace(tzinfo=None)
    dbt_log(f"exported {rows:,} rows to {path}")
    return pd.DataFrame({"path": [str(path.resolve())], "rows": [rows],
                         "written_at": [pd.Timestamp(written_at)]})


def export_predictions(warehouse: Warehouse, predictions: Any, path: Path,
                       batch_rows: int = 100_000) -> pd.DataFrame:
    """clv_predictions, in customer_id order, to the Parquet file ``path``."""
    return write_parquet(warehouse.batches(predictions, batch_rows, order_by=[ID_COLUMN]), path)
