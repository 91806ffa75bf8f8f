"""Helpers of the production-condition tests (crash, overlap, disk full, retention, soak).

Builds run the way a scheduler runs them: ``dbt build`` as its own process (:class:`Build`),
which a test can kill, limit or start twice at once. Every build of one test runs with the same
vars and profile (relative paths, resolved against the build's directory), so dbt parses the
project once and re-uses the parse. In-process builds (:class:`ParsedProject`) re-use one
parsed manifest across var changes, so a long series of daily builds pays no parse per day.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from clv.synthetic import GeneratorSettings, generate

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The dbt command line, after a build's prelude (Python run first in the build's process).
LAUNCH = """{prelude}
from dbt.cli.main import cli
cli()
"""

# Run first in a process: from now on no file may grow past CLV_TEST_FILE_LIMIT bytes (a full
# disk, as the writer sees it).
FILE_LIMIT = """
import os, resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE,
                   (int(os.environ["CLV_TEST_FILE_LIMIT"]), resource.RLIM_INFINITY))
"""

# Small and fast: one network, no explanations (the model is not under test here).
FAST_VARS = {"clv_horizon_days": 60, "clv_training_cutoffs": 3, "clv_ensemble_size": 1,
             "clv_explanations": False}
# Relative to the directory a build runs in, so the vars (and dbt's parse) are the same for
# every directory.
PATHS = {"clv_transactions": "data/transactions.csv", "clv_model_dir": "models",
         "clv_export_path": "exports/clv_predictions.parquet"}
DATABASE = "clv.duckdb"
# Every table a production build makes (not the HTML report); the data and unit tests, which
# change no table, are other tests' business.
BUILD_ARGS = ["--exclude", "clv_report", "--exclude-resource-type", "test", "unit_test"]
# Columns that differ between two equal builds: clocks, absolute paths.
VOLATILE = {"scored_at", "written_at", "created_at", "path", "onnx_path"}


def transactions(n_customers: int = 200, seed: int = 8, start: date = date(2022, 1, 1),
                 end: date = date(2023, 6, 30)) -> pd.DataFrame:
    return generate(GeneratorSettings(n_customers=n_customers, start_date=start, end_date=end,
                                      seed=seed, with_events=False, bad_rows=False)).transactions


def write_transactions(workdir: Path, frame: pd.DataFrame, through: str | None = None) -> None:
    """``frame`` (up to and including the day ``through``) as the build's transactions."""
    if through is not None:
        frame = frame[pd.to_datetime(frame.transacted_at).dt.date <= date.fromisoformat(through)]
    path = workdir / PATHS["clv_transactions"]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


@dataclass
class Build:
    """``dbt build`` in its own process, run in ``workdir`` (database, models and export
    there), with its console output collected line by line."""

    workdir: Path
    target: Path  # shared by the builds of one test: dbt parses once
    vars: dict = field(default_factory=dict)  # on top of PATHS and FAST_VARS
    args: list[str] = field(default_factory=lambda: list(BUILD_ARGS))
    prelude: str = ""  # Python run in the build's process before dbt starts
    lines: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    def start(self) -> Build:
        env = {**os.environ, "CLV_DUCKDB_PATH": DATABASE, "PYTHONUNBUFFERED": "1",
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        command = [sys.executable, "-c", LAUNCH.format(prelude=self.prelude), "build",
                   "--project-dir", str(PROJECT_DIR), "--profiles-dir",
                   str(PROJECT_DIR), "--target-path", str(self.target), "--log-path",
                   str(self.workdir / "logs"), "--vars",
                   json.dumps({**PATHS, **FAST_VARS, **self.vars}),
                   *self.args]
        self.process = subprocess.Popen(command, cwd=self.workdir, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, timeout: float = 900) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return code

    def run(self) -> Build:
        """Start, wait, and fail with the build's output unless it succeeded."""
        code = self.start().wait()
        assert code == 0, "dbt build failed:\n" + self.output[-6000:]
        return self

    def kill_when(self, seen: Callable[[Build], bool], timeout: float = 600) -> bool:
        """SIGKILL the build as soon as ``seen(self)`` is true; False if it ended first."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if seen(self):
                self.process.send_signal(signal.SIGKILL)
                self.wait()
                return True
            time.sleep(0.02)
        self.wait()
        return False

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


def query(database: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(database)) as connection:
        return connection.sql(sql).df()


def tables(database: Path) -> set[str]:
    return set(query(database, "select table_name from information_schema.tables "
                               "where table_schema = 'main'").table_name)


def public_models(target: Path) -> list[str]:
    """The project's public models (access: public), from the manifest of a build."""
    manifest = json.loads((target / "manifest.json").read_text())
    return sorted(node["name"] for node in manifest["nodes"].values()
                  if node["resource_type"] == "model" and node.get("access") == "public")


def normalized(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as two equal builds in different directories write it: clocks and absolute
    paths dropped, model versions by their content hash (the part after the timestamp), floats
    to 9 significant digits, rows in a fixed order."""
    frame = frame.drop(columns=[c for c in frame.columns if c in VOLATILE]).copy()
    for column in frame.columns:
        if column == "model_version":
            frame[column] = frame[column].astype(str).str.split("_").str[-1]
        elif pd.api.types.is_float_dtype(frame[column]):
            values = frame[column].to_numpy(dtype=float)
            frame[column] = np.where(np.isfinite(values),
                                     [float(f"{v:.9g}") for v in values], values)
        elif frame[column].dtype == object:
            frame[column] = frame[column].map(lambda v: v if v is None or isinstance(v, str)
                                              else str(v))
    return frame.sort_values(list(frame.columns)).reset_index(drop=True).astype(str)


def snapshot(database: Path, names: Iterable[str]) -> dict[str, pd.DataFrame]:
    """The normalized content of each table of ``names`` that exists in ``database``."""
    present = tables(database)
    return {name: normalized(query(database, f"select * from {name}"))
            for name in names if name in present}


class ParsedProject:
    """In-process builds against one database that re-use one parse of the project: dbt reads
    the vars when it compiles, so changing them needs no new parse."""

    _manifest = None

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.database = workdir / DATABASE

    def _args(self, command: str) -> list[str]:
        return [command, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                "--target-path", str(self.workdir / "target"), "--log-path",
                str(self.workdir / "logs"), "--quiet"]

    def build(self, vars: dict, args: list[str], expect_success: bool = True):
        from conftest import duckdb_path
        from dbt.cli.main import dbtRunner

        with duckdb_path(self.database):
            try:
                if ParsedProject._manifest is None:
                    parsed = dbtRunner().invoke(self._args("parse"))
                    assert parsed.success, parsed.exception
                    ParsedProject._manifest = parsed.result
                result = dbtRunner(manifest=ParsedProject._manifest).invoke(
                    [*self._args("build"), "--vars", json.dumps(vars), *args])
            finally:
                close_database()
        if result.exception is not None:
            raise result.exception
        if expect_success:
            failures = [f"{r.node.name}: {r.message}" for r in (result.result or [])
                        if str(r.status) in ("error", "fail", "runtime error")]
            assert result.success, "dbt build failed:\n" + "\n".join(failures)
        return result

    def query(self, sql: str) -> pd.DataFrame:
        return query(self.database, sql)


def close_database() -> None:
    """Close the database dbt-duckdb keeps open in this process between builds, as the end of
    a dbt process does (DuckDB writes its log into the file when it closes)."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None


def message_line(message: BaseException | str, start: str) -> str:
    """The one line of an error message that starts with ``start``."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip().startswith(start)]
    assert len(lines) == 1, str(message)
    return lines[0]


def failures(result) -> dict[str, str]:
    return {r.node.name: str(r.message) for r in (result.result or [])
            if str(r.status) in ("error", "fail", "runtime error")}
