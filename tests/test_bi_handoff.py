"""The BI hand-off: a DuckDB database file with a copy of every public table
(``clv_bi_database_path``), replaced atomically after every build.

What a BI tool relies on: the file holds exactly the public tables, with the warehouse's rows
and column types; it is replaced in one rename, so a connection opened before a build keeps
reading the previous copy, a new one reads the new copy, and a reader never sees a partial
file or blocks the build; a failed write leaves the previous file and no temporary file. The
SQLAlchemy form Superset uses (duckdb-engine, read-only) is exercised against real rebuilds.

Readers that must not share this process's DuckDB instance run as separate processes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy
from dbt.exceptions import CompilationError
from production import FILE_LIMIT as LIMIT
from sqlalchemy.pool import NullPool

from clv.pipeline import handoff
from clv.warehouse import DuckDBWarehouse, PostgresWarehouse

ROOT = Path(__file__).resolve().parent.parent
# One network, no explanations: these tests prove the hand-off, not the model.
VARS = {"clv_as_of_date": "2023-06-30", "clv_horizon_days": 60, "clv_training_cutoffs": 3,
        "clv_ensemble_size": 1, "clv_explanations": False}

# Counts a table's rows in a new process (so it opens the file as it is now).
COUNT = """
import sys, duckdb
with duckdb.connect(sys.argv[1], read_only=True) as connection:
    print(connection.execute(f"select count(*) from {sys.argv[2]}").fetchall()[0][0])
"""

# Reads clv_predictions through SQLAlchemy and duckdb-engine, as Superset does (a new connection
# per query: Superset's engines use NullPool), alternating the two read-only forms, until the
# stop file appears; prints what it saw as JSON. It first tries to write, which must fail.
SQLALCHEMY_READER = """
import json, pathlib, sys
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
path, stop = sys.argv[1], pathlib.Path(sys.argv[2])
engines = [create_engine(f"duckdb:///{path}", connect_args={"read_only": True},
                         poolclass=NullPool),
           create_engine(f"duckdb:///{path}?access_mode=read_only", poolclass=NullPool)]
seen = {"reads": 0, "rows": [], "stamps": [], "errors": [], "write": "succeeded"}
try:
    with engines[0].begin() as connection:
        connection.execute(text("create table clv_probe (a integer)"))
except Exception as error:
    seen["write"] = f"{type(error).__name__}: {error}"[:300]
announced = False
while not stop.exists():
    try:
        with engines[seen["reads"] % 2].connect() as connection:
            rows, stamp = connection.execute(text(
                "select count(*), cast(min(scored_at) as varchar) from clv_predictions")).one()
    except Exception as error:
        seen["errors"].append(f"{type(error).__name__}: {error}"[:200])
        continue
    seen["reads"] += 1
    if rows not in seen["rows"]:
        seen["rows"].append(rows)
    if stamp not in seen["stamps"]:
        seen["stamps"].append(stamp)
    if not announced:
        print("reading", flush=True)
        announced = True
print(json.dumps(seen), flush=True)
"""

COPY_UNDER_LIMIT = """
import json, sys
from pathlib import Path
import duckdb
from clv.pipeline import handoff
from clv.warehouse import DuckDBWarehouse
source = duckdb.connect()
source.execute("create table t as select range as id, 'C' || range as name from range(200000)")
try:
    handoff.copy_to_database(DuckDBWarehouse(source), {"t": lambda: "t"}, Path(sys.argv[1]))
    print(json.dumps({"error": None}))
except OSError as error:
    print(json.dumps({"error": str(error)}))
"""


def _source(rows: int = 2_500) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with one table of every column type the public tables use and a
    timestamp with a time zone (nulls included), an empty one and a small one."""
    connection = duckdb.connect()
    connection.execute(f"""
        create table predictions as select
            'C' || lpad(cast(range as varchar), 5, '0') as customer_id,
            date '2024-06-30' + cast(range % 3 as integer) as as_of_date,
            cast(365 as integer) as horizon_days,
            cast(range as double) * 1.5 as predicted_clv,
            cast(range % 10 + 1 as bigint) as value_decile,
            range % 7 = 0 as is_flagged,
            case when range % 5 = 0 then null else 'active' end as segment,
            timestamp '2024-07-01 12:00:00' + to_seconds(range) as scored_at,
            timestamptz '2024-07-01 12:00:00+00' as created_at
        from range({rows})""")
    connection.execute("create table empty as select * from predictions where false")
    connection.execute("create table settings as select 'x' as name, 1 as value")
    return connection


def _tables(source: duckdb.DuckDBPyConnection, names=("predictions", "empty", "settings")):
    return {name: (lambda name=name: source.table(name)) for name in names}


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in connection.execute(f"describe {table}").fetchall()]


def _count_in_new_process(path: Path, table: str = "predictions") -> int:
    out = subprocess.run([sys.executable, "-c", COUNT, str(path), table], capture_output=True,
                         text=True, check=True, timeout=60)
    return int(out.stdout.strip())


def _slowly(batches: pa.RecordBatchReader, pause: float, rows: int = 500,
            fail_after: int | None = None) -> pa.RecordBatchReader:
    """The same rows in batches of at most ``rows``, with a pause before each (and an error
    after ``fail_after`` batches)."""
    def generate_():
        sent = 0
        for batch in batches:
            for start in range(0, batch.num_rows, rows):
                if fail_after is not None and sent == fail_after:
                    raise RuntimeError("injected failure while copying")
                time.sleep(pause)
                sent += 1
                yield batch.slice(start, rows)
    return pa.RecordBatchReader.from_batches(batches.schema, generate_())


def _only(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------------------------------------
# The writer, on small hand-made tables


def test_copy_holds_the_tables_with_their_rows_and_types(tmp_path):
    source = _source()
    target = tmp_path / "bi" / "clv_bi.duckdb"
    summary = handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target,
                                       batch_rows=1_000)  # three batches for predictions
    assert summary.schema == handoff.BI_DATABASE_SCHEMA
    assert summary.column("table_name").to_pylist() == ["predictions", "empty", "settings"]
    assert summary.column("rows").to_pylist() == [2_500, 0, 1]
    assert set(summary.column("path").to_pylist()) == {str(target.resolve())}
    with duckdb.connect(str(target), read_only=True) as copy:
        assert sorted(name for (name,) in copy.execute("show tables").fetchall()) == \
            ["empty", "predictions", "settings"]
        for name in ("predictions", "empty", "settings"):
            assert _columns(copy, name) == _columns(source, name), name
            assert copy.table(name).to_arrow_table().equals(
                source.table(name).to_arrow_table()), name
        assert dict(_columns(copy, "predictions"))["as_of_date"] == "DATE"
        assert dict(_columns(copy, "predictions"))["horizon_days"] == "INTEGER"
        assert dict(_columns(copy, "predictions"))["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert _only(target.parent) == ["clv_bi.duckdb"], "no temporary file or log left"
    # readable by other accounts as the umask allows, like any new file
    (tmp_path / "plain").touch()
    assert target.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_the_file_is_written_in_the_duckdb_1_0_storage_format(tmp_path):
    """BI tools bundle their own DuckDB (1.x): the file is written in a storage format every
    DuckDB from 1.0 on reads, not DuckDB 2.0's newest one."""
    source = _source(10)
    target = tmp_path / "clv_bi.duckdb"
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    header = target.read_bytes()[:32]
    # the storage version DuckDB 0.10 to 1.1 write, which every later release reads
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64


def test_the_hand_offs_through_a_link_replace_the_files_it_points_to(tmp_path):
    """A path that is a symbolic link (to a share a BI tool reads, say) is followed: the file
    it points to is replaced, and the link stays a link."""
    share = tmp_path / "share"
    share.mkdir()
    source = _source(10)
    for name, write in (
            ("clv_bi.duckdb", lambda path: handoff.copy_to_database(
                DuckDBWarehouse(source), _tables(source), path)),
            ("clv.parquet", lambda path: handoff.write_parquet(
                DuckDBWarehouse(source).batches("predictions", 4), path))):
        (share / name).write_bytes(b"old")
        link = tmp_path / name
        link.symlink_to(share / name)
        write(link)
        assert link.is_symlink() and (share / name).read_bytes() != b"old", name
    assert _only(share) == ["clv.parquet", "clv_bi.duckdb"]
    assert pq.read_table(share / "clv.parquet").num_rows == 10


def test_empty_path_writes_nothing(tmp_path):
    source = _source(10)
    summary = handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), None)
    assert summary.num_rows == 0 and summary.schema == handoff.BI_DATABASE_SCHEMA
    assert list(tmp_path.iterdir()) == []


def test_a_reader_keeps_the_file_it_opened_and_the_next_one_reads_the_new_copy(tmp_path):
    target = tmp_path / "clv_bi.duckdb"
    handoff.copy_to_database(DuckDBWarehouse(_source(10)), _tables(_source(10)), target)
    reader = duckdb.connect(str(target), read_only=True)
    try:
        assert reader.execute("select count(*) from predictions").fetchall() == [(10,)]
        source = _source(300)
        handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
        # the open connection reads the previous file to the end; nothing blocked the write
        assert reader.execute("select count(*) from predictions").fetchall() == [(10,)]
        assert _count_in_new_process(target) == 300
    finally:
        reader.close()
    assert _only(tmp_path) == ["clv_bi.duckdb"]


def test_a_process_reads_the_file_it_opened_until_its_last_connection_closes(tmp_path):
    """DuckDB shares one database per file path within a process: a connection opened while an
    older one is still open reads the older file too. Closing every connection (a notebook's
    ``with duckdb.connect(...)``, a pool without kept connections) reads the new copy."""
    target = tmp_path / "clv_bi.duckdb"
    handoff.copy_to_database(DuckDBWarehouse(_source(10)), _tables(_source(10)), target)
    first = duckdb.connect(str(target), read_only=True)
    source = _source(20)
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    with duckdb.connect(str(target), read_only=True) as second:
        assert second.execute("select count(*) from predictions").fetchall() == [(10,)]
    first.close()
    with duckdb.connect(str(target), read_only=True) as third:
        assert third.execute("select count(*) from predictions").fetchall() == [(20,)]


def _slowed_writer(monkeypatch, pause: float, rows: int, fail_after: int | None = None,
                   writes: list | None = None) -> None:
    """Make the copy write every table in batches of ``rows`` with ``pause`` before each (and
    fail after ``fail_after`` batches)."""
    write = handoff.write_database_file

    def slowly(path, tables):
        if writes is not None:
            writes.append(path)
        return write(path, ((name, _slowly(batches, pause, rows, fail_after))
                            for name, batches in tables))

    monkeypatch.setattr(handoff, "write_database_file", slowly)


def test_a_reader_process_never_sees_a_partial_copy(tmp_path, monkeypatch):
    """A separate process reading through SQLAlchemy while the copy is replaced three times:
    every read succeeds and returns one complete version."""
    target = tmp_path / "clv_bi.duckdb"

    def copy(rows: int) -> None:
        source = _source(rows)
        source.execute("alter table predictions rename to clv_predictions")
        handoff.copy_to_database(DuckDBWarehouse(source), _tables(source, ["clv_predictions"]),
                                 target)

    copy(10)
    reader = SqlAlchemyReader(target, tmp_path)
    try:
        _slowed_writer(monkeypatch, 0.01, rows=20)
        for rows in (300, 40, 300):
            copy(rows)
    finally:
        seen = reader.stop()
    assert seen["errors"] == [], seen["errors"][:3]
    assert set(seen["rows"]) <= {10, 300, 40} and len(seen["rows"]) >= 2, seen
    assert "read-only" in seen["write"], seen["write"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("stop-")] == \
        ["clv_bi.duckdb"]


def test_a_failed_copy_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "clv_bi.duckdb"
    source = _source(50)
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    before = target.read_bytes()
    _slowed_writer(monkeypatch, 0.0, rows=10, fail_after=2)
    # the warehouse's error, as DuckDB reports a stream that failed while it read it
    with pytest.raises((RuntimeError, duckdb.Error), match="injected failure while copying"):
        handoff.copy_to_database(DuckDBWarehouse(_source(60)), _tables(_source(60)), target)
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["clv_bi.duckdb"], "no temporary file or log left"


def test_a_table_that_cannot_be_read_is_named_and_nothing_is_replaced(tmp_path):
    target = tmp_path / "clv_bi.duckdb"
    source = _source(50)
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    before = target.read_bytes()
    tables = {**_tables(source), "clv_gain_curve": lambda: source.table("clv_gain_curve")}
    with pytest.raises(RuntimeError, match=r"cannot read the public table clv_gain_curve .*"
                                           r"build it first.*previous copy is unchanged"):
        handoff.copy_to_database(DuckDBWarehouse(source), tables, target)
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["clv_bi.duckdb"]


def test_a_full_disk_fails_the_copy_clearly_and_keeps_the_previous_file(tmp_path):
    target = tmp_path / "clv_bi.duckdb"
    source = _source(10)
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    before = target.read_bytes()
    out = subprocess.run([sys.executable, "-c", LIMIT + COPY_UNDER_LIMIT, str(target)],
                         capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, "CLV_TEST_FILE_LIMIT": str(len(before))})
    assert out.returncode == 0, out.stderr[-3000:]
    error = json.loads(out.stdout.strip().splitlines()[-1])["error"]
    assert error is not None, "the copy must fail under the limit"
    assert f"cannot write {target}" in error and "file size limit is full" in error, error
    assert "previous file is unchanged" in error, error
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["clv_bi.duckdb"], "no temporary file or log left"


@pytest.mark.slow  # the retries wait out their back-off: about 2 s each
@pytest.mark.parametrize("refusals", [3, 1_000])
def test_a_refused_rename_is_retried_then_reported(tmp_path, monkeypatch, refusals):
    """Windows refuses to rename over a file a reader has open: the copy retries for
    REPLACE_WAIT_SECONDS (the reader may be done by then), then fails saying why, with the
    previous file in place."""
    target = tmp_path / "clv_bi.duckdb"
    source = _source(10)
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    before = target.read_bytes()
    replace = os.replace
    attempts = []

    def refuse(src, dst):
        attempts.append(dst)
        if len(attempts) <= refusals:
            raise PermissionError(13, "Access is denied")
        return replace(src, dst)

    monkeypatch.setattr(handoff, "REPLACE_WAIT_SECONDS", 2.0)
    monkeypatch.setattr(handoff.os, "replace", refuse)
    bigger = _source(30)
    if refusals < 1_000:
        handoff.copy_to_database(DuckDBWarehouse(bigger), _tables(bigger), target)
        monkeypatch.undo()
        assert _count_in_new_process(target) == 30 and len(attempts) == refusals + 1
    else:
        with pytest.raises(PermissionError, match=r"cannot replace .*clv_bi.duckdb.*a BI tool "
                                                  r"or notebook has it open.*previous file is "
                                                  r"unchanged"):
            handoff.copy_to_database(DuckDBWarehouse(bigger), _tables(bigger), target)
        assert target.read_bytes() == before and len(attempts) > 2
    assert _only(tmp_path) == ["clv_bi.duckdb"]


def test_the_warehouse_file_itself_is_refused(tmp_path):
    database = tmp_path / "clv.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create table predictions as select 1 as a")
        warehouse = DuckDBWarehouse(connection)
        for path in (database, tmp_path / "." / "clv.duckdb"):
            with pytest.raises(ValueError, match=r"clv_bi_database_path.*warehouse's own "
                                                 r"database file"):
                handoff.copy_to_database(warehouse, {"predictions": lambda: "predictions"},
                                         path)
        assert connection.execute("select a from predictions").fetchall() == [(1,)]
    assert _only(tmp_path) == ["clv.duckdb"]


def test_leftovers_of_a_killed_copy_are_removed(tmp_path):
    target = tmp_path / "clv_bi.duckdb"
    old = [tmp_path / ".clv_bi.duckdb.0123456789abcdef.tmp",
           tmp_path / ".clv_bi.duckdb.0123456789abcdef.tmp.wal"]
    young = tmp_path / ".clv_bi.duckdb.fedcba9876543210.tmp"  # maybe another build's write
    for path in [*old, young]:
        path.write_bytes(b"partial")
    hour_ago = time.time() - 3600
    for path in old:
        os.utime(path, (hour_ago, hour_ago))
    source = _source(10)
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    assert _only(tmp_path) == sorted([target.name, young.name])


def test_leftovers_are_found_for_a_name_with_glob_characters(tmp_path):
    """A file name with [ ] or * is matched as written: its old temporary file goes, another
    file's that the pattern would have matched stays."""
    target = tmp_path / "clv[1].parquet"
    old, other = tmp_path / ".clv[1].parquet.0123.tmp", tmp_path / ".clv1.parquet.0123.tmp"
    for path in (old, other):
        path.write_bytes(b"partial")
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    assert handoff.remove_file_leftovers(target) == [old.name]
    assert _only(tmp_path) == [other.name]


def test_the_sqlalchemy_forms_are_read_only(tmp_path):
    """The two ways to give duckdb-engine a read-only connection (Superset's URI, or its engine
    parameters' connect_args) both read and neither writes."""
    target = tmp_path / "clv_bi.duckdb"
    source = _source(25)
    handoff.copy_to_database(DuckDBWarehouse(source), _tables(source), target)
    for engine in (sqlalchemy.create_engine(f"duckdb:///{target}?access_mode=read_only",
                                            poolclass=NullPool),
                   sqlalchemy.create_engine(f"duckdb:///{target}", poolclass=NullPool,
                                            connect_args={"read_only": True})):
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text(
                "select count(*) from predictions")).scalar_one() == 25
            with pytest.raises(sqlalchemy.exc.DBAPIError, match="read-only"):
                connection.execute(sqlalchemy.text("create table probe (a integer)"))
        engine.dispose()


def test_documented_columns_are_the_rows_returned():
    """clv_bi_database has no contract: its documented columns are compared with the rows the
    hand-off returns."""
    schema = (ROOT / "python_models" / "_python_models.yml").read_text()
    block = schema.split("- name: clv_bi_database", 1)[1].split("\n  - name: ", 1)[0]
    assert re.findall(r"- name: (\w+)", block) == handoff.BI_DATABASE_SCHEMA.names


@pytest.mark.engines
def test_copy_from_postgres_keeps_rows_and_dates(tmp_path):
    """On PostgreSQL (where `clv build` runs the Python steps) the copy streams through the
    same Warehouse interface: dates stay DATE, text and floats exact, integers as bigint."""
    from engines import postgres_connection, schema_name

    connection = postgres_connection()
    schema = schema_name("clv_test_bi")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create schema "{schema}"')
            cursor.execute(f"""create table "{schema}".predictions as select
                'C' || lpad(i::text, 5, '0') as customer_id,
                date '2024-06-30' + (i % 3) as as_of_date, 365 as horizon_days,
                i * 1.5::double precision as predicted_clv, i % 7 = 0 as is_flagged,
                case when i % 5 = 0 then null else 'active' end as segment,
                timestamptz '2024-07-01 12:00:00+00' + i * interval '1 second' as created_at
                from generate_series(0, 2499) as i""")
        connection.commit()
        warehouse = PostgresWarehouse(connection, schema)
        target = tmp_path / "clv_bi.duckdb"
        summary = handoff.copy_to_database(
            warehouse, {"predictions": lambda: f"{schema}.predictions"}, target,
            batch_rows=1_000)
        assert summary.column("rows").to_pylist() == [2_500]
        expected = warehouse.read(f"{schema}.predictions")
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{schema}" cascade')
        connection.commit()
        connection.close()
    with duckdb.connect(str(target), read_only=True) as copy:
        assert dict(_columns(copy, "predictions")) == {
            "customer_id": "VARCHAR", "as_of_date": "DATE", "horizon_days": "BIGINT",
            "predicted_clv": "DOUBLE", "is_flagged": "BOOLEAN", "segment": "VARCHAR",
            "created_at": "TIMESTAMP WITH TIME ZONE"}
        got = copy.sql("select * from predictions order by customer_id").to_arrow_table()
    assert got.to_pylist() == expected.sort_by("customer_id").to_pylist()


class SqlAlchemyReader:
    """A separate process reading clv_predictions through SQLAlchemy until stopped."""

    def __init__(self, path: Path, workdir: Path):
        self.stop_file = workdir / f"stop-{time.monotonic_ns()}"
        self.process = subprocess.Popen([sys.executable, "-c", SQLALCHEMY_READER, str(path),
                                         str(self.stop_file)], stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout.readline().strip() == "reading"

    def stop(self) -> dict:
        self.stop_file.touch()
        out, _ = self.process.communicate(timeout=60)
        return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------
# Inside dbt builds


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every public table built once on 200 generated customers, with the copy on."""
    from conftest import small_shop

    workdir = tmp_path_factory.mktemp("bi_handoff")
    project = small_shop(workdir, VARS)
    project.copy = workdir / "exports" / "clv_bi.duckdb"
    project.vars["clv_bi_database_path"] = str(project.copy)
    project.build(vars=project.vars, select="+clv_bi_database")
    project.manifest = json.loads((workdir / "target" / "manifest.json").read_text())
    return project


def _public_marts(manifest: dict) -> set[str]:
    """The public tables: access public, with an enforced contract."""
    return {node["name"] for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["package_name"] == "clv"
            and node["access"] == "public" and node["config"]["contract"]["enforced"]}


@pytest.mark.slow
def test_the_copy_reads_exactly_the_public_marts(built):
    """The Python model's refs (its place in the DAG) and the exposure are the public marts,
    as the manifest declares them: a new public table cannot be left out of the copy."""
    nodes = built.manifest["nodes"]
    marts = _public_marts(built.manifest)
    assert len(marts) >= 12
    parents = {uid.rsplit(".", 1)[1] for uid in nodes["model.clv.clv_bi_database"]
               ["depends_on"]["nodes"]}
    assert parents == marts | {"clv_run_settings"}
    exposure = built.manifest["exposures"]["exposure.clv.clv_bi_database"]
    assert {uid.rsplit(".", 1)[1] for uid in exposure["depends_on"]["nodes"]} == \
        marts | {"clv_bi_database"}
    assert exposure["url"] == str(built.copy)


@pytest.mark.slow
def test_the_copy_holds_every_public_table_as_the_warehouse_does(built):
    marts = _public_marts(built.manifest)
    with duckdb.connect(str(built.database)) as warehouse:
        # this process's dbt shares the database instance: detach before the next build
        warehouse.execute(f"attach '{built.copy}' as copy (read_only)")
        try:
            _compare_copy(warehouse, marts, built.copy)
        finally:
            warehouse.execute("detach copy")
    assert [p.name for p in built.copy.parent.glob(".*")] == [], "no temporary file left"


def _compare_copy(warehouse: duckdb.DuckDBPyConnection, marts: set[str], copy: Path) -> None:
    """The copy attached as ``copy`` holds exactly ``marts``, as the warehouse does."""
    copied = {name for (name,) in warehouse.execute(
        "select table_name from information_schema.tables "
        "where table_catalog = 'copy'").fetchall()}
    assert copied == marts
    for name in sorted(marts):
        assert _columns(warehouse, f"copy.main.{name}") == _columns(warehouse, name), name
        for left, right in ((name, f"copy.main.{name}"), (f"copy.main.{name}", name)):
            missing = warehouse.execute(f"select count(*) from (select * from {left} "
                                        f"except all select * from {right})").fetchall()
            assert missing == [(0,)], f"{name}: rows of {left} missing from {right}"
    counts = dict(warehouse.execute("select table_name, rows from clv_bi_database")
                  .fetchall())
    assert counts == {name: warehouse.execute(f"select count(*) from {name}").fetchall()
                      [0][0] for name in marts}
    assert counts["clv_predictions"] > 100 and counts["clv_model_evaluation"] > 0
    assert {path for (path,) in warehouse.execute(
        "select distinct path from clv_bi_database").fetchall()} == {str(copy)}


@pytest.mark.slow
def test_readers_during_a_rebuild_keep_a_complete_copy_and_never_block_it(built, monkeypatch):
    """A notebook's read-only connection opened before a rebuild, and a SQLAlchemy reader
    (Superset's form) polling throughout it: the rebuild succeeds, the notebook reads the
    previous copy until it reconnects, and every SQLAlchemy read returns a complete version."""
    expected_rows = _count_in_new_process(built.copy, "clv_predictions")
    writes = []
    _slowed_writer(monkeypatch, 0.005, rows=50, writes=writes)  # the copy takes a while
    notebook = duckdb.connect(str(built.copy), read_only=True)
    try:
        before = notebook.execute("select count(*), min(scored_at) from clv_predictions") \
            .fetchall()
        reader = SqlAlchemyReader(built.copy, built.workdir)
        try:
            result = built.run("build", vars=built.vars, select="int_clv__scoring_plan+",
                               extra=["--exclude", "clv_report"])
        finally:
            seen = reader.stop()
        assert result.success, [f"{r.node.name}: {r.message}" for r in result.result
                                if str(r.status) in ("error", "fail")]
        assert len(writes) == 1, "the rebuild must have copied through the slowed writer"
        assert notebook.execute("select count(*), min(scored_at) from clv_predictions") \
            .fetchall() == before
    finally:
        notebook.close()
    assert seen["errors"] == [], seen["errors"][:3]
    assert seen["rows"] == [expected_rows]
    assert len(seen["stamps"]) >= 2, "the reader must have read across a replacement"
    assert "read-only" in seen["write"], seen["write"]
    with duckdb.connect(str(built.copy), read_only=True) as fresh:
        after = fresh.execute("select count(*), min(scored_at) from clv_predictions").fetchall()
    assert after[0][0] == before[0][0] and after[0][1] > before[0][1], "the new scores"
    assert [p.name for p in built.copy.parent.glob(".*")] == [], "no temporary file left"


@pytest.mark.slow
def test_the_warehouse_file_cannot_be_the_copy(built):
    """Pointing the var at the warehouse's own file fails the copy before anything is written;
    the warehouse keeps every table."""
    before = _count_in_new_process(built.copy, "clv_predictions")
    result = built.build(vars={**built.vars, "clv_bi_database_path": str(built.database)},
                         select="clv_run_settings clv_bi_database", expect_success=False)
    [failed] = [r for r in result.result if r.node.unique_id == "model.clv.clv_bi_database"]
    assert str(failed.status) == "error", failed.status
    assert "warehouse's own database file" in str(failed.message), failed.message
    assert len(built.query("select * from clv_predictions")) == before
    # the settings row back to this module's vars
    built.build(vars=built.vars, select="clv_run_settings")


@pytest.mark.slow
@pytest.mark.parametrize("value", ["exports/clv_bi.db", "exports/clv_bi", "it's.duckdb"])
def test_the_var_is_validated_before_any_sql_runs(dbt_project, value):
    with pytest.raises(CompilationError, match=r"var 'clv_bi_database_path'"):
        dbt_project.run("parse", vars={"clv_bi_database_path": value})
    assert not dbt_project.database.exists()
