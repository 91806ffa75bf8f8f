"""A full disk while writing a model, the Parquet export or a table: a clear error, and every
previous output intact.

The disk fills up for real, as far as the writer can tell: the process runs under a file size
limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored), so a write past it fails with EFBIG as a
write to a full disk fails with ENOSPC. The writers are checked alone first, then inside real
``dbt build`` processes whose limit is lowered exactly while the model or the export is
written (or, for the tables, for the whole build).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from production import (
    FILE_LIMIT as LIMIT,
)
from production import (
    Build,
    normalized,
    public_models,
    snapshot,
    transactions,
    write_transactions,
)

WRITERS = """
import json, sys
from pathlib import Path
import pyarrow as pa
from clv.artifacts import atomic_write_bytes, atomic_write_json
from clv.pipeline.handoff import write_parquet
what, target = sys.argv[1], Path(sys.argv[2])
try:
    if what == "model":
        atomic_write_bytes(target, bytes(200_000))
    elif what == "metadata":
        atomic_write_json(target, {"weights": list(range(50_000))})
    else:
        write_parquet(pa.table({"customer_id": [f"C{i:06d}" for i in range(100_000)]})
                      .to_reader(max_chunksize=10_000), target)
    print(json.dumps({"error": None}))
except OSError as error:
    print(json.dumps({"error": str(error)}))
"""


def _write_under_limit(what: str, target: Path, limit: int) -> str | None:
    out = subprocess.run([sys.executable, "-c", LIMIT + WRITERS, what, str(target)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "CLV_TEST_FILE_LIMIT": str(limit)})
    return json.loads(out.stdout.strip().splitlines()[-1])["error"]


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("what", ["model", "metadata", "export"])
def test_a_full_disk_fails_the_write_clearly_and_keeps_the_old_file(tmp_path, what):
    target = tmp_path / {"model": "clv_model_v.onnx", "metadata": "clv_model_v.json",
                         "export": "clv_predictions.parquet"}[what]
    if what == "export":
        pq.write_table(pa.table({"customer_id": ["C1", "C2"]}), target)
    else:
        target.write_bytes(b'{"previous": true}')
    before = _files(tmp_path)
    error = _write_under_limit(what, target, limit=16_384)
    assert error is not None, "the write must fail under the limit"
    assert f"cannot write {target}" in error, error
    assert "file size limit is full" in error and "previous file is unchanged" in error, error
    assert _files(tmp_path) == before, "the old file is intact and no temporary file is left"
    # the same write succeeds once there is room
    assert _write_under_limit(what, target, limit=1 << 30) is None


# ---------------------------------------------------------------------------------------------
# Inside dbt builds

# Lowers the limit while a model file is written (the training step), then restores it.
MODEL_WRITE = """
import resource, signal
import clv.export
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_write = clv.export.atomic_write_bytes
def _on_a_full_disk(path, data):
    if not str(path).endswith(".onnx"):
        return _write(path, data)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(data) // 2, resource.RLIM_INFINITY))
    try:
        return _write(path, data)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE,
                           (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
clv.export.atomic_write_bytes = _on_a_full_disk
"""
# The same around the Parquet export.
EXPORT_WRITE = """
import resource, signal
from clv.pipeline import handoff
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_write = handoff.write_parquet
def _on_a_full_disk(batches, path):
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))
    try:
        return _write(batches, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE,
                           (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
handoff.write_parquet = _on_a_full_disk
"""
ONE_THREAD = ["--threads", "1"]  # nothing else writes while the limit is low


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """A complete build; each test rebuilds the same data, which leaves every table as it is,
    so "intact" means "equal to this"."""
    workdir = tmp_path_factory.mktemp("disk_full")
    target = workdir / "target"
    site = workdir / "site"
    site.mkdir()
    write_transactions(site, transactions())
    Build(site, target).run()
    names = public_models(target)
    return site, target, names


def _outputs(site: Path, names) -> dict:
    files = _files(site / "models")
    return {"tables": snapshot(site / "clv.duckdb", names), "model files": sorted(files),
            "models": {name: data for name, data in files.items()
                       if name.startswith("clv_model_")},
            "export": _files(site / "exports")}


def _assert_intact(site: Path, names, before: dict, export: bool = True) -> None:
    """Every table as before; no file added to or left in the model directory, no model
    changed; the Parquet export byte for byte (unless the build re-exported)."""
    after = _outputs(site, names)
    assert after["model files"] == before["model files"], "no file added or left half-written"
    assert after["models"] == before["models"]
    if export:
        assert after["export"] == before["export"]
    for name, table in before["tables"].items():
        assert after["tables"][name].equals(table), name


@pytest.mark.slow
def test_a_full_disk_while_writing_the_model(warehouse):
    site, target, names = warehouse
    before = _outputs(site, names)
    build = Build(site, target, vars={"clv_retrain": "always"}, prelude=MODEL_WRITE,
                  args=[*Build(site, target).args, *ONE_THREAD])
    assert build.start().wait() != 0
    assert "int_clv__model_registry" in build.output
    full = ".onnx: File too large (the disk, a quota or the file size limit is full)"
    assert "cannot write" in build.output and full in build.output, build.output[-3000:]
    _assert_intact(site, names, before)


@pytest.mark.slow
def test_a_full_disk_while_writing_the_export(warehouse):
    site, target, names = warehouse
    before = _outputs(site, names)
    build = Build(site, target, prelude=EXPORT_WRITE,
                  args=[*Build(site, target).args, *ONE_THREAD])
    assert build.start().wait() != 0
    assert f"cannot write {site / 'exports' / 'clv_predictions.parquet'}" in build.output or \
        "cannot write exports/clv_predictions.parquet" in build.output, build.output[-3000:]
    assert "file size limit is full" in build.output
    assert before["export"] == _files(site / "exports")
    _assert_intact(site, names, before)


@pytest.mark.slow
def test_a_full_disk_while_writing_a_table(warehouse):
    site, target, names = warehouse
    before = _outputs(site, names)
    limit = (site / "clv.duckdb").stat().st_size // 4  # the first write past it fails
    # The sample seeds are loaded too: megabytes of table writes, where a rebuild of this small
    # shop's own tables can stay within the log DuckDB writes before a checkpoint.
    build = Build(site, target, vars={"clv_load_sample": True}, prelude=LIMIT.replace(
        'int(os.environ["CLV_TEST_FILE_LIMIT"])', str(limit)))
    assert build.start().wait() != 0
    assert "Could not write file" in build.output and "File too large" in build.output, \
        build.output[-3000:]
    # the table whose write failed is the previous one; the others, rebuilt from the same
    # data, equal it too (a later step may have re-exported the same predictions)
    _assert_intact(site, names, before, export=False)
    exported = pq.ParquetFile(site / "exports" / "clv_predictions.parquet").read().to_pandas()
    assert normalized(exported).equals(before["tables"]["clv_predictions"])
    # with room again, the next build succeeds and changes no table
    Build(site, target).run()
    _assert_intact(site, names, before, export=False)
