"""Writing frames as CSV or Parquet files, chosen by the file extension."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

_FILE_SUFFIXES = (".csv", ".parquet", ".pq")  # formats write_frame understands


def _csv_field(text: str) -> str:
    """A CSV field, quoted only when it contains a delimiter, quote or line break."""
    if any(char in text for char in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _write_csv(table: pa.Table, path: Path) -> None:
    """CSV with a plain header; values are quoted only if some value requires it."""
    header = (",".join(_csv_field(name) for name in table.column_names) + "\n").encode()
    for style in ("none", "needed"):
        try:
            with path.open("wb") as sink:
                sink.write(header)
                options = pa_csv.WriteOptions(include_header=False, quoting_style=style)
                pa_csv.write_csv(table, sink, options)
            return
        except pa.ArrowInvalid:
            if style == "needed":
                raise


def write_frame(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a frame as CSV or Parquet, chosen by the file extension.

    String columns stay strings in Parquet; datetime columns whose name ends in '_date' are
    written as dates. CSV values are unquoted whenever that is unambiguous.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _FILE_SUFFIXES:
        raise ValueError(f"unsupported file extension {path.suffix!r}: use .csv or .parquet")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for index, name in enumerate(table.column_names):
        if name.endswith("_date") and pa.types.is_timestamp(table.schema.field(name).type):
            table = table.set_column(index, name, table.column(name).cast(pa.date32()))
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        _write_csv(table, path)
    else:
        pq.write_table(table, path)
