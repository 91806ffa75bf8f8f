"""The files BI tools and other processes read instead of the warehouse: the Parquet copy of
clv_predictions (:func:`export_predictions`) and, when ``clv_bi_database_path`` is set, a DuckDB
database holding a copy of every public table (:func:`copy_to_database`).

DuckDB lets one process at a time open a database file for writing, so readers that must not
block ``dbt build`` read these files instead. Each is written to a hidden temporary file in the
same directory and renamed over the previous one after every build, so a reader sees the
previous complete file or the new one; a build killed while writing leaves only the hidden
temporary file, which a later write deletes.
"""

from __future__ import annotations

import contextlib
import glob
import os
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clv.artifacts import (
    LEFTOVER_SECONDS,
    link_target,
    new_temporary_file,
    temporary_path,
    write_failed,
)
from clv.config import ID_COLUMN
from clv.pipeline.log import dbt_log
from clv.warehouse import Warehouse
from clv.warehouse.duckdb import write_database_file

# Windows refuses to rename over a file that another process has open (DuckDB opens database
# files there without FILE_SHARE_DELETE), so a BI tool's open connection blocks the replacement:
# it is retried this long, then the step fails and the previous file stays. POSIX systems
# replace an open file at once (its readers keep the old one), so there is nothing to wait for.
REPLACE_WAIT_SECONDS = 10.0 if os.name == "nt" else 0.0
# The columns of clv_bi_database: one row per table copied.
BI_DATABASE_SCHEMA = pa.schema([("table_name", pa.string()), ("rows", pa.int64()),
                                ("path", pa.string()), ("written_at", pa.timestamp("us"))])


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# The Python steps read the vars from clv_run_settings, which `dbt retry` does not rebuild when
# it built: a var corrected before a retry is not the value they see.
STALE_SETTINGS_HINT = ("(the value clv_run_settings holds: after correcting the var, run dbt "
                       "build --select clv_run_settings+, not dbt retry, which rebuilds only "
                       "what failed)")


def checked_path(path: Path, var: str = "clv_export_path") -> Path:
    """``path`` (the value of ``var``, a file to write) after the checks only the file system
    can answer."""
    if path.is_dir():
        raise ValueError(f"Invalid value for var '{var}': {str(path)!r} is a directory "
                         f"{STALE_SETTINGS_HINT}")
    for folder in path.parents:  # the nearest that exists must be a directory
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"Invalid value for var '{var}': {str(folder)!r} is not a "
                                 f"directory {STALE_SETTINGS_HINT}")
            break
    return path


def remove_file_leftovers(path: Path, older_than: float = LEFTOVER_SECONDS) -> list[str]:
    """Delete the temporary files of ``path`` that killed writes left (older than
    ``older_than`` seconds: a younger one may be another build's write in progress)."""
    if not path.parent.is_dir():
        return []
    removed = []
    # the temporary files, and the write-ahead log DuckDB keeps beside a database being written
    name = glob.escape(path.name)  # a name with [ or * is matched as written
    for tmp in [*path.parent.glob(f".{name}.*.tmp"), *path.parent.glob(f".{name}.*.tmp.wal")]:
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
    path = link_target(checked_path(Path(path)))
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in remove_file_leftovers(path):
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


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync_file(path: Path) -> None:
    # opened for writing: Windows cannot flush a file opened read-only (EBADF)
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(tmp: Path, path: Path, wait: float) -> None:
    """Rename ``tmp`` over ``path``, retrying for ``wait`` seconds while the system refuses
    because a reader has ``path`` open (Windows); then raise an OSError that says so."""
    deadline = time.monotonic() + wait
    while True:
        try:
            os.replace(tmp, path)
            return
        except PermissionError as error:
            if time.monotonic() >= deadline:
                raise PermissionError(
                    error.errno, f"cannot replace {path}: {error.strerror or error}. Either the "
                    "directory is not writable, or (on Windows, which cannot rename over an "
                    "open file) a BI tool or notebook has it open: close that connection, or let "
                    "the tool open one per query, then build again; the previous file is "
                    "unchanged") from error
            time.sleep(0.5)


def _public_tables(warehouse: Warehouse, tables: Mapping[str, Callable[[], Any]],
                   batch_rows: int) -> Iterator[tuple[str, pa.RecordBatchReader]]:
    """(name, batches) of each table, opened one at a time as the writer reaches it."""
    for name, relation in tables.items():
        try:
            batches = warehouse.batches(relation(), batch_rows)
        except Exception as error:
            reason = next((line for line in str(error).splitlines() if line.strip()),
                          type(error).__name__)
            raise RuntimeError(f"cannot read the public table {name} for the BI database copy "
                               f"({reason.strip()}): build it first (a full `dbt build` builds "
                               "every public table); the previous copy is unchanged") from error
        yield name, batches


def copy_to_database(warehouse: Warehouse, tables: Mapping[str, Callable[[], Any]],
                     path: Path | None, batch_rows: int = 100_000) -> pa.Table:
    """Copy ``tables`` (name -> a function returning the relation) into a new DuckDB database
    file that then replaces ``path``; return one row per table: table_name, rows, path,
    written_at (no rows when ``path`` is None: the copy is off).

    Every table streams from the warehouse through :meth:`Warehouse.batches` (any engine;
    bounded memory) into a hidden temporary file in the same directory, which is checkpointed,
    flushed to disk and renamed over ``path`` in one step. A reader that opened the previous
    file keeps reading it; a failure at any point (a table that cannot be read, a full disk, a
    rename refused) leaves the previous file untouched and removes the temporary one.
    """
    if path is None:
        dbt_log("clv_bi_database_path is empty: no BI database copy written")
        return BI_DATABASE_SCHEMA.empty_table()
    path = link_target(checked_path(Path(path), "clv_bi_database_path"))
    if path.resolve() in {Path(file).resolve() for file in warehouse.database_files()}:
        raise ValueError(f"Invalid value for var 'clv_bi_database_path': {str(path)!r} is the "
                         "warehouse's own database file; name another file")
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in remove_file_leftovers(path):
        dbt_log(f"removed {name}, left by a BI database copy that was interrupted")
    tmp = temporary_path(path)
    try:
        rows = write_database_file(tmp, _public_tables(warehouse, tables, batch_rows))
        _fsync_file(tmp)
        _replace(tmp, path, REPLACE_WAIT_SECONDS)
    except BaseException as error:
        _remove(tmp, tmp.with_name(tmp.name + ".wal"))
        if isinstance(error, OSError) and not isinstance(error, PermissionError):
            raise write_failed(path, error) from error
        raise
    _fsync_directory(path.parent)
    written_at = datetime.now(UTC).replace(tzinfo=None)
    dbt_log(f"copied {len(rows)} public tables ({sum(rows.values()):,} rows) to {path}")
    resolved = str(path.resolve())
    return pa.table({"table_name": list(rows), "rows": list(rows.values()),
                     "path": [resolved] * len(rows), "written_at": [written_at] * len(rows)},
                    schema=BI_DATABASE_SCHEMA)
