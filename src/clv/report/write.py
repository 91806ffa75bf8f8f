"""Write the report file and describe it in one row, for the dbt model ``clv_report``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from clv.artifacts import atomic_write_bytes
from clv.pipeline.handoff import checked_path
from clv.pipeline.log import dbt_log
from clv.report.data import read_report_data
from clv.report.render import render_report
from clv.warehouse import Warehouse

DEFAULT_PATH = "reports/clv_report.html"  # clv_report_path's default (dbt_project.yml)
RESULT_COLUMNS = {"path": "string", "bytes": "int64", "charts": "int64", "notes": "int64",
                  "written_at": "datetime64[us]"}


def report_path(value: Any) -> Path | None:
    """The var ``clv_report_path`` as a path (relative to the directory dbt runs in), or None
    when it is empty (no report)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise ValueError(f"Invalid value for var 'clv_report_path': {value!r} is not a path")
    return checked_path(Path(value.strip()), "clv_report_path")


def _result(path: Path | None, size: int, charts: int, notes: int,
            written_at: datetime | None) -> pd.DataFrame:
    return pd.DataFrame({
        "path": [None if path is None else str(path.resolve())], "bytes": [size],
        "charts": [charts], "notes": [notes], "written_at": [pd.Timestamp(written_at)],
    }).astype(RESULT_COLUMNS)


def write_report(warehouse: Warehouse, tables: Mapping[str, Callable[[], Any]],
                 path: Any = DEFAULT_PATH, currency: Any = "") -> pd.DataFrame:
    """Read ``tables`` (name -> a function returning its relation), render the report and
    write it to ``path`` (replaced atomically: a reader sees the old or the new file); return
    one row: path, bytes, charts drawn, notes shown instead of charts, written_at (UTC). An
    empty ``path`` writes nothing and returns a row of nulls and zeros. ``currency`` names the
    amounts' unit (var clv_currency; empty: "currency units")."""
    target = report_path(path)
    if target is None:
        dbt_log("report: clv_report_path is empty, no report written")
        return _result(None, 0, 0, 0, None)
    written_at = datetime.now(UTC).replace(tzinfo=None)
    data = read_report_data(warehouse, tables)
    data.currency = str(currency or "").strip()
    rendered = render_report(data, written_at)
    content = rendered.html.encode("utf-8")
    atomic_write_bytes(target, content)
    dbt_log(f"report: {rendered.charts} charts ({rendered.notes} notes) written to "
            f"{target.resolve()}")
    return _result(target, len(content), rendered.charts, rendered.notes, written_at)
