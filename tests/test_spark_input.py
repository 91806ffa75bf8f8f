"""Spark on its own: a Parquet export read with an export's column names and types (names that
are not plain SQL names, "Customer ID" and "Unit Price", and a Quantity column of text), and the
spend level's totals added up on the executors, and what the scoring step keeps on the
executors freed."""

from __future__ import annotations

import dataclasses
import json
import secrets
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from engines import (
    PROJECT_DIR,
    clv_build,
    environment,
    schema_name,
    spark_available,
    spark_session,
)

ROWS = [  # InvoiceNo, InvoiceDate, Customer ID, Quantity, Unit Price
    ("536365", "12/1/2010 8:26", "17850", "40", 3.91),
    ("536366", "12/1/2010 8:28", "17850", "n/a", 1.85),
    ("536367", "12/1/2010 8:34", "13047", "83", 4.85),
    ("536368", "12/2/2010 9:35", "(blank)", "15", 4.75),
]
COLUMNS = {"customer_id": "Customer ID", "transacted_at": "InvoiceDate",
           "amount": "coalesce(Quantity, 0) * `Unit Price`", "transaction_id": "InvoiceNo"}
RUN_VARS = {"clv_timestamp_format": "%m/%d/%Y %H:%M", "clv_as_of_date": "2010-12-31",
            "clv_columns": COLUMNS}


@dataclasses.dataclass
class Retail:
    schema: str
    run_vars: dict[str, Any]
    workdir: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def retail(spark_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Retail:
    """The rows above as a Parquet export, built on Spark up to clv_data_quality."""
    spark_available()
    workdir = tmp_path_factory.mktemp("spark_retail")
    names = ["InvoiceNo", "InvoiceDate", "Customer ID", "Quantity", "Unit Price"]
    path = workdir / "retail.parquet"
    pq.write_table(pa.table({name: [row[i] for row in ROWS] for i, name in enumerate(names)}),
                   path)
    built = Retail(schema_name("clv_spin"), {**RUN_VARS, "clv_transactions": str(path)},
                   workdir, {"CLV_SCHEMA": "", "CLV_SPARK_DIR": str(spark_dir)})
    built.env["CLV_SCHEMA"] = built.schema
    clv_build("spark", built.run_vars, workdir, built.env, models=["clv_data_quality"])
    return built


@pytest.mark.slow
@pytest.mark.engines
def test_names_with_a_space_and_a_text_column_inside_a_function(retail: Retail):
    from pyspark.sql import SparkSession

    schema = retail.schema
    session = SparkSession.builder.getOrCreate()
    staged = dict(session.sql(f"select transaction_id, amount from {schema}.stg_clv__transactions"
                              ).collect())
    assert staged["536365"] == pytest.approx(40 * 3.91) and staged["536366"] == 0
    quality = [tuple(row) for row in session.sql(
        f"select reason, rows, example_value from {schema}.clv_data_quality where rows > 0"
    ).collect()]
    assert quality == [("missing_customer_id", 1, "536368")]


@pytest.mark.slow
@pytest.mark.engines
def test_clv_build_on_spark_builds_what_dbt_selects(retail: Retail, tmp_path: Path):
    """``clv build --select`` on Spark: dbt's selection (-m, +), exactly those models."""
    from pyspark.sql import SparkSession

    env = {**retail.env, "CLV_SCHEMA": schema_name("clv_spsel")}
    session = SparkSession.builder.getOrCreate()

    def built() -> set[str]:
        return {table.name for table in session.catalog.listTables(env["CLV_SCHEMA"])}

    clv_build("spark", retail.run_vars, tmp_path, env, dbt_args=["-m", "+stg_clv__transactions"])
    assert "stg_clv__transactions" in built()
    assert not {"int_clv__transactions_checked", "int_clv__customer_days"} & built()
    clv_build("spark", retail.run_vars, tmp_path, env,
              dbt_args=["--select", "int_clv__transactions_checked"])
    assert "int_clv__transactions_checked" in built() and "int_clv__customer_days" not in built()


@pytest.mark.slow
@pytest.mark.engines
def test_the_spend_level_totals_on_spark_count_a_wholesaler_as_a_tenth(spark_dir: Path):
    """The executors' exact totals and the customers above a tenth of them (clv.level rule 7)
    are the ones the scoring step adds up in this process."""
    import numpy as np

    from clv import level
    from clv.warehouse import SparkWarehouse

    rng = np.random.default_rng(8)
    btyd, network = rng.gamma(0.4, 300.0, 2000), rng.gamma(0.4, 250.0, 2000)
    network[3], btyd[3] = 2.0 * network.sum(), network.sum()
    session = spark_session(spark_dir)
    frame = session.createDataFrame(
        [(float(b), float(n)) for b, n in zip(btyd, network, strict=True)],
        "btyd_expected_spend double, network_clv double").repartition(4)
    kept, totals = SparkWarehouse(session).totals(frame, ["btyd_expected_spend", "network_clv"])
    kept.unpersist()
    reference = level.LevelAccumulator()
    reference.add(btyd, network)
    assert totals == {"btyd_expected_spend": reference.btyd.result(),
                      "network_clv": reference.network.result()}
    assert totals["network_clv"].dominant == 1


class _Returned(Exception):
    """dbt's ``return()`` inside a macro, for rendering one with plain Jinja."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _render_spark_seed_inserts(rows: list[tuple], column_names: list[str],
                               column_types: dict[str, str], inferred: list[str],
                               table: str) -> list[str]:
    """The inserts clv's ``spark__load_csv_rows`` (macros/clv_spark_seed_rows.sql) sends for a
    seed of ``rows`` (types: the seed's ``column_types``, else ``inferred``), rendered with
    Jinja and stand-ins for the few dbt objects it reads."""
    import jinja2

    queries: list[str] = []

    def returned(value: Any) -> None:
        raise _Returned(value)

    environment = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
    source = (PROJECT_DIR / "macros" / "clv_spark_seed_rows.sql").read_text()
    template = environment.from_string(source + "{{ spark__load_csv_rows(model, agate_table) }}")
    with pytest.raises(_Returned):
        template.render(
            model={"config": {"column_types": column_types}},
            agate_table=SimpleNamespace(rows=rows, column_names=column_names),
            adapter=SimpleNamespace(
                convert_type=lambda _table, index: inferred[index],
                add_query=lambda sql, abridge_sql_log=False: queries.append(sql)),
            this=SimpleNamespace(render=lambda: table), get_batch_size=lambda: 2,
            tojson=json.dumps, **{"return": returned})
    return queries


def _load_through_seed_inserts(spark_dir: Path, rows: list[tuple], columns: dict[str, str],
                               inferred: list[str]) -> tuple[list[str], list[tuple]]:
    """The inserts clv's seed macro sends for ``rows`` into a new Spark table of ``columns``
    (name: type; the first column's type given as the seed's column_types, the others'
    ``inferred``), and the rows the table then holds, sorted."""
    session = spark_session(spark_dir)
    table = f"clv_seed_check_{secrets.token_hex(3)}"
    session.sql(f"create table {table} ({', '.join(f'{n} {t}' for n, t in columns.items())}) "
                "using parquet")
    names = list(columns)
    try:
        queries = _render_spark_seed_inserts(rows, names, {names[0]: "string"}, inferred, table)
        for query in queries:
            session.sql(query)
        return queries, sorted(tuple(row) for row in session.table(table).collect())
    finally:
        session.sql(f"drop table if exists {table}")


@pytest.mark.slow
@pytest.mark.engines
def test_seed_values_with_quotes_backslashes_and_empty_cells_load_as_written(spark_dir: Path):
    """A seed's text with quotes and backslashes, and its empty cells, reach the Spark table as
    written (empty as null), through clv's seed inserts: text columns as literals, the others
    cast to their type, two rows per insert here."""
    rows = [("1", "it's", 1.5), ("2", "back\\slash", None), ("3", None, 2.0),
            ("4", "both '\\' end\\", 3.0), ("5", "\\'", -0.25)]
    queries, read = _load_through_seed_inserts(
        spark_dir, rows, {"id": "string", "note": "string", "amount": "double"},
        ["double", "string", "double"])
    assert len(queries) == 3, "two rows per insert"
    assert "cast(" not in queries[0].split("values", 1)[1].split(",")[0], (
        "a text column's value goes in without a cast")
    assert read == rows


@pytest.mark.slow
@pytest.mark.engines
def test_an_all_text_seed_loads_as_written_through_one_literal_per_insert(spark_dir: Path):
    """Every column text (the sample's seeds): each insert carries its rows as one JSON
    literal, and quotes, backslashes, a JSON escape, non-ASCII text and empty cells reach the
    table as written."""
    rows = [("1", "it's", "a\"b"), ("2", "back\\slash", None), ("3", None, "\\u0041"),
            ("4", "both '\\' end\\", "café ünïcødé"), ("5", "\\'", "line\nbreak")]
    queries, read = _load_through_seed_inserts(
        spark_dir, rows, {"id": "string", "note": "string", "other": "string"},
        ["string", "string", "string"])
    assert len(queries) == 3, "two rows per insert"
    assert all("from_json(" in query and "values" not in query for query in queries)
    assert read == rows


@pytest.mark.slow
@pytest.mark.engines
def test_the_second_pass_frees_the_first_and_reads_leave_no_view(spark_dir: Path):
    """The scores the first pass kept are unpersisted once the second pass is computed (the
    result goes to whoever writes the table, so nothing after could free them), and the
    temporary views that queries and streams read through are dropped once read, or when
    Spark refuses the query; a double quote inside a string literal stays a character."""
    from pyspark import StorageLevel

    from clv.warehouse import SparkWarehouse

    session = spark_session(spark_dir)
    warehouse = SparkWarehouse(session)

    def doubled(batches):  # defined here: the executors unpickle it by value
        for batch in batches:
            yield pa.RecordBatch.from_arrays([pc.multiply(batch.column(0), 2.0)],
                                             names=["network_clv"])

    def views() -> set[str]:
        return {table.name for table in session.catalog.listTables() if table.isTemporary}

    before = views()
    frame = session.createDataFrame([(float(v),) for v in range(100)],
                                    "network_clv double").repartition(3)
    kept, totals = warehouse.totals(frame, ["network_clv"])
    assert totals["network_clv"].total == 4950 * 1_000_000
    assert kept.storageLevel != StorageLevel.NONE
    second = warehouse.map_batches(kept, doubled, pa.schema([("network_clv", pa.float64())]),
                                   50)
    result = warehouse.detach(second, kept)
    assert kept.storageLevel == StorageLevel.NONE
    assert sorted(row[0] for row in result.collect()) == [2.0 * v for v in range(100)]

    counted = warehouse.query(frame, "select count(*) as n from {relation}")
    assert counted.column("n")[0].as_py() == 100
    streamed = warehouse.stream(frame, "select network_clv from {relation}", 30).read_all()
    assert streamed.num_rows == 100
    quoted = warehouse.query(frame, """select 'say "hi"' as "a note" from {relation} limit 1""")
    assert quoted.to_pylist() == [{"a note": 'say "hi"'}]
    with pytest.raises(Exception, match="no_such_column"):
        warehouse.query(frame, "select no_such_column from {relation}")
    assert views() == before


@pytest.mark.slow
@pytest.mark.engines
@pytest.mark.parametrize("name", ["no_such_orders", "no_such_schema.retail", "{schema}.nope",
                                  "{schema}.Clv_Data_Quality"])
def test_a_missing_relation_stops_with_one_line_naming_the_var(retail: Retail, name: str):
    """Spark's own error for a missing table surfaces in dbt as "Runtime Error" alone: clv
    stops before it, naming the var. A relation that exists, in any case, is read. (A run: dbt
    compile goes on without the input, as before anything is built.)"""
    from dbt.cli.main import dbtRunner

    name = name.format(schema=retail.schema)
    args = ["run", "--target", "spark", "--select", "stg_clv__transactions", "--project-dir",
            str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), "--vars",
            json.dumps({**retail.run_vars, "clv_transactions": name}), "--target-path",
            str(retail.workdir / "target"), "--log-path", str(retail.workdir / "logs"),
            "--quiet"]
    with environment(**retail.env):
        result = dbtRunner().invoke(args)
    messages = " ".join(str(r.message) for r in result.result or []) + str(result.exception)
    if name.endswith("Clv_Data_Quality"):  # found: the column map then reads its columns
        assert "no table or view" not in messages, messages
        assert "clv_columns" in messages, messages
        return
    assert not result.success
    assert (f"Invalid value for var 'clv_transactions': no table or view '{name}' in the "
            "warehouse of target 'spark'") in messages, messages
    # the hint names the files this engine reads
    assert "(a file path must end in .parquet: Spark reads Parquet files)" in messages, messages


@pytest.mark.slow
@pytest.mark.engines
def test_a_failed_table_build_keeps_the_previous_table(retail: Retail):
    """dbt-spark's own table materialization drops the table before its query runs; the
    project's (clv_table) swaps the new table in only after the query has succeeded. The query
    fails here because its parent view is gone."""
    from dbt.cli.main import dbtRunner
    from pyspark.sql import SparkSession

    session = SparkSession.builder.getOrCreate()
    schema = retail.schema

    def rows() -> list[tuple]:
        return sorted(tuple(r) for r in session.sql(f"select * from {schema}.clv_data_quality")
                      .collect())

    def tables() -> set[str]:
        return {r.tableName for r in session.sql(f"show tables in {schema}").collect()}

    before = rows()
    session.sql(f"drop view {schema}.int_clv__transactions_classified")
    args = ["run", "--target", "spark", "--select", "clv_data_quality", "--project-dir",
            str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR), "--vars",
            json.dumps(retail.run_vars), "--target-path", str(retail.workdir / "target"),
            "--log-path", str(retail.workdir / "logs"), "--quiet"]
    with environment(**retail.env):
        failed = dbtRunner().invoke(args)
    assert not failed.success
    assert rows() == before
    assert "clv_data_quality__clv_staging" not in tables()

    clv_build("spark", retail.run_vars, retail.workdir, retail.env, models=["clv_data_quality"])
    assert rows() == before
    assert {"clv_data_quality", "int_clv__transactions_classified"} <= tables()
    assert not any(name.endswith("__clv_staging") for name in tables())


@pytest.mark.slow
@pytest.mark.engines
def test_a_location_root_stops_clv_table_with_the_reason(retail: Retail, tmp_path: Path):
    """With a location_root, dbt-spark would put the staging table where the live table's files
    are: clv_table refuses, naming the config, and the previous table stays."""
    import shutil

    import yaml
    from dbt.cli.main import dbtRunner
    from pyspark.sql import SparkSession

    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns(
        ".*", "target", "logs", "tests", "bench", "onnx", "spark", "exports", "reports", "data",
        "docs", "src", "*.duckdb", "*.wal"))
    settings = yaml.safe_load((project / "dbt_project.yml").read_text())
    settings["models"]["clv"]["+location_root"] = str(tmp_path / "external")
    (project / "dbt_project.yml").write_text(yaml.safe_dump(settings, sort_keys=False))
    session = SparkSession.builder.getOrCreate()
    before = session.sql(f"select * from {retail.schema}.clv_data_quality").collect()

    args = ["run", "--target", "spark", "--select", "clv_data_quality", "--project-dir",
            str(project), "--profiles-dir", str(PROJECT_DIR), "--vars",
            json.dumps(retail.run_vars), "--target-path", str(tmp_path / "target"),
            "--log-path", str(tmp_path / "logs"), "--quiet"]
    with environment(**retail.env):
        result = dbtRunner().invoke(args)
    assert not result.success
    messages = " ".join(str(r.message) for r in result.result)
    assert "unset the location_root config" in messages, messages
    assert session.sql(f"select * from {retail.schema}.clv_data_quality").collect() == before


@pytest.mark.slow
@pytest.mark.engines
def test_a_stream_reads_timestamps_as_a_query_does_in_any_driver_time_zone(spark_dir: Path,
                                                                          monkeypatch):
    """PySpark gives a row's TIMESTAMP in the driver process's local time; the stream (the
    Parquet hand-off's and the BI copy's reader) gives the same UTC values as a query, also
    when the driver runs in another zone, on either side of a daylight-saving change."""
    import time

    from clv.warehouse import SparkWarehouse

    session = spark_session(spark_dir)
    warehouse = SparkWarehouse(session)
    frame = session.sql("select * from values (timestamp'2023-07-01 12:00:00'), "
                        "(timestamp'2023-11-05 05:30:00'), (timestamp'2023-11-05 06:30:00'), "
                        "(null) as t(scored_at)")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        queried = warehouse.query(frame, "select scored_at from {relation}")
        streamed = warehouse.stream(frame, "select scored_at from {relation}", 2).read_all()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert streamed.column("scored_at").to_pylist() == queried.column("scored_at").to_pylist()



@pytest.mark.slow
@pytest.mark.engines
def test_a_written_timestamp_is_utc_in_any_session_time_zone(spark_dir: Path):
    """A Python step's result holds UTC timestamps without a zone (``written_at``): written
    in a session whose time zone is not UTC, it reads back as written, as scores written
    through map_batches do."""
    from clv.warehouse import SparkWarehouse

    session = spark_session(spark_dir)
    warehouse = SparkWarehouse(session)
    written = [datetime(2023, 7, 1, 12, 0), datetime(2023, 11, 5, 5, 30), None]
    table = pa.table({"written_at": pa.array(written, pa.timestamp("us"))})
    zone = session.conf.get("spark.sql.session.timeZone")
    session.conf.set("spark.sql.session.timeZone", "America/New_York")
    try:
        warehouse.write_table("clv_written_at_check", table)
        read = warehouse.query("clv_written_at_check", "select written_at from {relation} "
                                                       "order by written_at nulls last")
    finally:
        session.conf.set("spark.sql.session.timeZone", zone)
        session.sql("drop table if exists clv_written_at_check")
    assert read.column("written_at").to_pylist() == written
