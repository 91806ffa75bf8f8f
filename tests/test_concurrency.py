"""Readers while dbt runs: the Parquet export of clv_predictions and DuckDB's file lock.

DuckDB lets one process at a time open a database file for writing, and a second process can
open it neither for writing nor read-only while the first holds it. So dbt cannot run while a BI
tool holds the file, and a BI tool cannot open it while dbt runs. The supported way to read the
predictions concurrently is the Parquet file clv_predictions_export writes: it is replaced
atomically, so a reader sees the previous complete file or the new one, never a partial file.

Readers run as separate processes (the script below), as a BI tool would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt.exceptions import CompilationError

from clv.pipeline import handoff

# One network: these tests prove the hand-off, not the model (three times faster to train).
VARS = {"clv_as_of_date": "2023-06-30", "clv_horizon_days": 60, "clv_training_cutoffs": 3,
        "clv_ensemble_size": 1}

# Reads the Parquet file in a loop until the stop file appears; prints what it saw as JSON.
# Each read opens the file once: a reader that opens the path twice per read (for the footer,
# then for the data) can pair two versions if a replacement lands in between.
READER = """
import json, sys, pathlib
import pyarrow.parquet as pq
path, stop = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
seen = {"reads": 0, "rows": [], "errors": [], "stamps": []}
announced = False
while not stop.exists():
    try:
        with pq.ParquetFile(path) as handle:
            table = handle.read()
    except Exception as error:
        seen["errors"].append(f"{type(error).__name__}: {error}"[:200])
        continue
    seen["reads"] += 1
    if table.num_rows not in seen["rows"]:
        seen["rows"].append(table.num_rows)
    if "scored_at" in table.column_names and table.num_rows:
        stamp = str(table.column("scored_at")[0])
        if stamp not in seen["stamps"]:
            seen["stamps"].append(stamp)
    if not announced:
        print("reading", flush=True)
        announced = True
print(json.dumps(seen), flush=True)
"""

# Tries to open the database as a second process would; reads the Parquet export meanwhile.
PROBE = """
import json, sys
import duckdb
import pyarrow.parquet as pq
database, export = sys.argv[1], sys.argv[2]
outcome = {}
for mode, read_only in (("read_write", False), ("read_only", True)):
    try:
        duckdb.connect(database, read_only=read_only).close()
        outcome[mode] = "opened"
    except Exception as error:
        outcome[mode] = f"{type(error).__name__}: {error}"
outcome["export_rows"] = pq.read_metadata(export).num_rows
print(json.dumps(outcome))
"""


class Reader:
    """A separate process reading the Parquet file until stopped."""

    def __init__(self, path: Path, workdir: Path):
        self.stop_file = workdir / f"stop-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, "-c", READER, str(path),
                                         str(self.stop_file)],
                                        stdout=subprocess.PIPE, text=True)
        # start writing only once the reader is reading
        assert self.process.stdout.readline().strip() == "reading"

    def stop(self) -> dict:
        self.stop_file.touch()
        out, _ = self.process.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])


def _slow_batches(batches: pa.RecordBatchReader, pause: float,
                  check=None) -> pa.RecordBatchReader:
    """The same batches, with a pause (and an optional check) before each one."""
    def generate_():
        for batch in batches:
            if check is not None:
                check()
            time.sleep(pause)
            yield batch
    return pa.RecordBatchReader.from_batches(batches.schema, generate_())


def _small_batches(batches: pa.RecordBatchReader, rows: int) -> pa.RecordBatchReader:
    """The same rows in batches of at most ``rows`` rows."""
    def generate_():
        for batch in batches:
            for start in range(0, batch.num_rows, rows):
                yield batch.slice(start, rows)
    return pa.RecordBatchReader.from_batches(batches.schema, generate_())


def _table(rows: int, offset: int = 0) -> pa.Table:
    return pa.table({"customer_id": [f"C{i:05d}" for i in range(offset, offset + rows)],
                     "predicted_clv": [float(i) for i in range(rows)]})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from conftest import small_shop

    project = small_shop(tmp_path_factory.mktemp("concurrency"), VARS)
    project.build(vars=project.vars, select="+clv_predictions_export")
    return project


@pytest.mark.slow
def test_a_model_validated_on_few_customers_warns(built):
    """This module's shop is small (200 customers): the current model's validation cutoff holds
    fewer than 200, and the registry's build says its figures rest on few customers."""
    result = built.run("build", vars=built.vars, select="clv_model_registry")
    statuses = {r.node.name: (str(r.status), r.failures) for r in result.result}
    assert statuses["clv_model_validated_on_enough_customers"] == ("warn", 1)
    rows = built.query("select validation_rows from clv_model_registry where is_current")
    assert 0 < rows.validation_rows[0] < 200


# ---------------------------------------------------------------------------------------------
# The export


@pytest.mark.slow
def test_export_holds_exactly_clv_predictions(built):
    exported = pq.read_table(built.export).to_pandas()
    predictions = built.query("select * from clv_predictions order by customer_id")
    assert list(exported.columns) == list(predictions.columns)
    assert exported.customer_id.tolist() == predictions.customer_id.tolist()
    assert exported.predicted_clv.tolist() == predictions.predicted_clv.tolist()
    summary = built.query("select * from clv_predictions_export")
    assert list(summary.columns) == ["path", "rows", "written_at"]
    assert summary.rows.tolist() == [len(predictions)]
    assert Path(summary.path[0]) == built.export.resolve()
    assert [p.name for p in built.export.parent.iterdir()] == [built.export.name], "no temp file"


# The var itself is validated by the clv_validate_export_path macro (macros/clv_settings.sql)
# when dbt parses the project, before any SQL runs; the file system checks stay in Python.
@pytest.mark.slow
@pytest.mark.parametrize(("value", "problem"), [
    ("", "must not be empty"),
    ("   ", "must not be empty"),
    ("exports/predictions.csv", "ending in .parquet"),
    ("exports/predictions", "ending in .parquet"),
])
def test_export_path_is_validated(dbt_project, value, problem):
    with pytest.raises(CompilationError, match=rf"var 'clv_export_path'.*{problem}"):
        dbt_project.run("parse", vars={"clv_export_path": value})
    assert not dbt_project.database.exists(), "no SQL may run for an invalid var"


@pytest.mark.slow
def test_export_path_reaches_the_python_steps_trimmed(dbt_project):
    dbt_project.build(vars={"clv_export_path": " exports/p.parquet "},
                      select="clv_run_settings")
    settings = dbt_project.query("select export_path from clv_run_settings")
    assert settings.export_path.tolist() == ["exports/p.parquet"]


def test_export_path_must_not_be_a_directory(tmp_path):
    (tmp_path / "taken.parquet").mkdir()
    with pytest.raises(ValueError, match=r"clv_export_path.*is a directory \(the value "
                                         r"clv_run_settings holds: .*not dbt retry"):
        handoff.checked_path(tmp_path / "taken.parquet")
    # the writer checks before it writes anything
    with pytest.raises(ValueError, match=r"clv_export_path.*is a directory"):
        handoff.write_parquet(_table(3).to_reader(), tmp_path / "taken.parquet")
    (tmp_path / "file").touch()
    with pytest.raises(ValueError, match=r"clv_export_path.*'.*file' is not a directory"):
        handoff.checked_path(tmp_path / "file" / "p.parquet")
    # a file further up the path, too, before any directory is made
    with pytest.raises(ValueError, match=r"clv_export_path.*'.*file' is not a directory"):
        handoff.write_parquet(_table(3).to_reader(), tmp_path / "file" / "sub" / "p.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "taken.parquet"]
    assert list((tmp_path / "taken.parquet").iterdir()) == []
    assert handoff.checked_path(Path("exports/p.parquet")) == Path("exports/p.parquet")


def test_writer_replaces_the_file_in_one_step(tmp_path):
    """Deterministic: between the batches of a write, the target is still the old complete
    file; afterwards it is the new one, and no temporary file is left."""
    target = tmp_path / "out" / "predictions.parquet"
    handoff.write_parquet(_table(10).to_reader(), target)
    checks = []

    def old_file_is_intact():
        checks.append(pq.read_table(target).num_rows)

    new = _slow_batches(_table(300).to_reader(max_chunksize=30), 0.0, old_file_is_intact)
    summary = handoff.write_parquet(new, target)
    assert checks == [10] * 10
    assert summary.rows.tolist() == [300] and pq.read_table(target).equals(_table(300))
    assert [p.name for p in target.parent.iterdir()] == [target.name]
    # permissions of any new file (readers may run as another user), not owner-only
    (tmp_path / "plain").touch()
    assert target.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "predictions.parquet"
    handoff.write_parquet(_table(10).to_reader(), target)

    def failing():
        yield _table(30).to_batches()[0]
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        handoff.write_parquet(pa.RecordBatchReader.from_batches(_table(1).schema, failing()),
                              target)
    assert pq.read_table(target).equals(_table(10))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_reader_process_sees_partial_files_only_from_a_direct_write(tmp_path):
    """The reader below can catch a partial file: it does when the file is written in place,
    and does not when write_parquet writes it."""
    target = tmp_path / "predictions.parquet"
    handoff.write_parquet(_table(10).to_reader(), target)

    reader = Reader(target, tmp_path)
    for _ in range(3):
        handoff.write_parquet(_slow_batches(_table(300).to_reader(max_chunksize=30), 0.01),
                              target)
    atomic = reader.stop()
    assert atomic["errors"] == [] and set(atomic["rows"]) == {10, 300}, atomic

    reader = Reader(target, tmp_path)
    slow = _slow_batches(_table(300).to_reader(max_chunksize=30), 0.01)
    with pq.ParquetWriter(target, slow.schema) as writer:  # in place: what not to do
        for batch in slow:
            writer.write_batch(batch)
    direct = reader.stop()
    assert direct["errors"], "a reader must notice a file that is written in place"


@pytest.mark.slow
def test_reader_never_sees_a_partial_file_while_dbt_rebuilds(built, monkeypatch):
    expected_rows = len(built.query("select customer_id from clv_predictions"))
    original = handoff.write_parquet
    writes = []

    def slowly(batches, path, *args, **kwargs):
        # write in small batches with pauses, so each write takes a while
        writes.append(path)
        return original(_slow_batches(_small_batches(batches, 20), 0.02), path, *args, **kwargs)

    monkeypatch.setattr(handoff, "write_parquet", slowly)
    reader = Reader(built.export, built.workdir)
    try:
        for _ in range(2):
            # scoring again, through to the export (the fixture built only what the export needs)
            built.build(vars=built.vars, select="int_clv__scoring_plan+,+clv_predictions_export")
    finally:
        seen = reader.stop()
    assert len(writes) == 2, "each build must have written through the slowed writer"
    assert seen["errors"] == [], seen["errors"][:3]
    assert seen["rows"] == [expected_rows]
    assert len(seen["stamps"]) >= 2, "the reader must have read across a replacement"


@pytest.mark.slow
def test_second_process_gets_the_lock_error_while_dbt_runs(built, monkeypatch):
    original = handoff.write_parquet
    outcomes = []

    def probe_then_export(batches, path, *args, **kwargs):
        # runs inside the dbt run, while dbt holds the database file
        probe = subprocess.run([sys.executable, "-c", PROBE, str(built.database),
                                str(built.export)], capture_output=True, text=True, timeout=60,
                               check=True)
        outcomes.append(json.loads(probe.stdout))
        return original(batches, path, *args, **kwargs)

    monkeypatch.setattr(handoff, "write_parquet", probe_then_export)
    built.build(vars=built.vars, select="clv_predictions_export")
    [outcome] = outcomes
    assert "Could not set lock on file" in outcome["read_write"], outcome
    assert "Could not set lock on file" in outcome["read_only"], outcome
    assert outcome["export_rows"] == len(built.query("select * from clv_predictions"))


@pytest.mark.slow
def test_export_path_error_reaches_the_user(built):
    """A bad var stops the build when dbt parses the project (the settings macro validates it),
    with dbt's error naming the var; nothing is written and the previous export stays."""
    before = pq.read_table(built.export)
    vars_ = {**built.vars, "clv_export_path": str(built.workdir / "predictions.csv")}
    with pytest.raises(CompilationError, match="Invalid value for var 'clv_export_path'"):
        built.run("build", vars=vars_, select="clv_predictions_export")
    assert not (built.workdir / "predictions.csv").exists()
    assert pq.read_table(built.export).equals(before)


@pytest.mark.slow
def test_a_process_holding_the_database_blocks_dbt(built, tmp_path):
    from conftest import DbtProject

    project = DbtProject(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                                "print('holding', flush=True); sys.stdin.read()"),
         str(project.database)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException, match="Could not set lock on file"):
            project.run("run", vars=built.vars, select="stg_clv__transactions")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


def test_model_files_are_readable_like_any_new_file(tmp_path):
    """Model files and scoring runs (atomic writes) get the umask's permissions, so a BI or
    scoring account can read them, not mkstemp's owner-only mode."""
    from clv.artifacts import atomic_write_bytes, atomic_write_json

    atomic_write_bytes(tmp_path / "model.onnx", b"graph")
    atomic_write_json(tmp_path / "model.json", {"a": 1})
    (tmp_path / "plain").touch()
    plain = (tmp_path / "plain").stat().st_mode & 0o777
    assert (tmp_path / "model.onnx").stat().st_mode & 0o777 == plain
    assert (tmp_path / "model.json").stat().st_mode & 0o777 == plain
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.onnx", "plain"]
