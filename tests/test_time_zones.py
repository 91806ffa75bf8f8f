"""The business time zone (var clv_time_zone): a timestamp with a UTC offset, or of a type that
holds instants, lands on its local day in that zone, daylight saving included; one without
offset, and a date, are local time already.

The data straddle New York's two changes of 2023: clocks went forward at 2023-03-12 07:00 UTC
(EST, UTC-5, to EDT, UTC-4) and back at 2023-11-05 06:00 UTC. The expected local times are
written by hand and checked against zoneinfo. With the as-of date 2023-11-05 and a horizon of
238 days, the one training cutoff is 2023-03-12: purchases at 23:30 local time on either
cutoff day count at that cutoff, although their UTC day is the next, and a purchase at 00:30
the next local day does not, although a fixed offset would put it on the cutoff day.

The same builds on PostgreSQL and Spark (``pytest -m engines``) give DuckDB's local times and
days; on Spark whatever the session's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dbt.exceptions import CompilationError
from dbt_common.exceptions import DbtBaseException
from engines import (
    assert_same_table,
    clv_build,
    drop_postgres_schemas,
    postgres_connection,
    postgres_settings,
    schema_name,
    spark_available,
)
from production import message_line

ZONE = "America/New_York"
AS_OF = "2023-11-05"
RUN_VARS = {"clv_time_zone": ZONE, "clv_as_of_date": AS_OF, "clv_horizon_days": 238,
            "clv_training_cutoffs": 1}
CUTOFFS = ("2023-03-12", AS_OF)

# (transaction_id, customer_id, transacted_at as written, amount, local time in New York or
# None when invalid). Amounts are powers of two, so a sum tells which rows it holds.
TRANSACTIONS = [
    ("t01", "A", "2023-03-12T06:30:00Z", 1, "2023-03-12 01:30:00"),  # EST, before the change
    ("t02", "A", "2023-03-12T07:30:00Z", 2, "2023-03-12 03:30:00"),  # EDT, after it
    ("t03", "A", "2023-03-13T04:30:00Z", 4, "2023-03-13 00:30:00"),  # fixed UTC-5: 03-12 23:30
    ("t04", "B", "2023-03-12T23:30:00-04:00", 8, "2023-03-12 23:30:00"),
    ("t05", "B", "2023-03-13T03:30:00+00:00", 16, "2023-03-12 23:30:00"),  # UTC day: 03-13
    ("t06", "B", "2023-03-13 00:30:00 -0400", 32, "2023-03-13 00:30:00"),
    ("t07", "C", "2023-11-05T05:30:00Z", 64, "2023-11-05 01:30:00"),  # EDT: the first 01:30
    ("t08", "C", "2023-11-05T06:30:00Z", 128, "2023-11-05 01:30:00"),  # EST: the second
    ("t09", "C", "2023-11-06T04:30:00Z", 256, "2023-11-05 23:30:00"),  # fixed UTC-4: 11-06 00:30
    ("t10", "C", "2023-11-05T23:30:00-05", 512, "2023-11-05 23:30:00"),
    ("t11", "D", "2023-11-05 23:30:00", 1024, "2023-11-05 23:30:00"),  # no offset: local
    ("t12", "D", "2023-03-12", 2048, "2023-03-12 00:00:00"),  # a date
    ("t13", "D", "2023-11-06T05:30:00Z", 4096, "2023-11-06 00:30:00"),  # after the as-of date
    ("t14", "D", "2023/03/12 24:00:00Z", 8192, "2023-03-12 20:00:00"),  # 24:00 is next midnight
    ("t15", "E", "2023-11-05T04:30:00.1234567Z", 16384, "2023-11-05 00:30:00.123456"),
    ("t16", "E", "2023-11-05T10:00:00+16:00", 1, None),  # no such offset
    ("t17", "E", "2023-02-30T10:00:00Z", 1, None),  # no such day
    ("t18", "E", "2023-11-05 11:30:00 PM", 1, None),  # not ISO (DuckDB's cast alone reads 11:30)
    ("t19", "E", "2023-11-05  10:00:00Z", 1, None),  # two spaces: not ISO, offset or none
    ("t20", "E", "12023-11-05 10:00:00Z", 1, None),  # a five-digit year
    ("t21", "E", "2023-11-05 23:59:60", 1, None),  # a leap second (PostgreSQL's cast rolls it)
]
# Browsing events as instants (a timestamp with time zone; Spark's timestamp):
# (customer_id, UTC time, local time)
EVENTS = [
    ("B", "2023-03-13 03:30:00", "2023-03-12 23:30:00"),
    ("A", "2023-03-13 04:30:00", "2023-03-13 00:30:00"),
    ("C", "2023-11-06 04:30:00", "2023-11-05 23:30:00"),
]
# (customer_id, signup_date as written, local date)
CUSTOMERS = [("A", "2023-03-12", "2023-03-12"), ("B", "2023-03-13T03:30:00Z", "2023-03-12"),
             ("C", "2023-11-06T04:59:59Z", "2023-11-05")]
DUCKDB_MODELS = ("+clv_customer_features +clv_data_quality stg_clv__events "
                 "stg_clv__customers")
ENGINE_MODELS = ["int_clv__customer_days", "clv_data_quality", "stg_clv__events",
                 "stg_clv__customers"]


def _reference_local(text: str, zone: str) -> pd.Timestamp:
    """The local time of a timestamp as written, from pandas and zoneinfo: with an offset it is
    converted to ``zone``, without one it is local already; 24:00 is the next midnight and a
    fraction is cut to microseconds."""
    text = text.replace("/", "-")
    next_day = " 24:00:00" in text
    stamp = pd.Timestamp(text.replace(" 24:00:00", " 00:00:00")) + pd.Timedelta(days=int(next_day))
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(ZoneInfo(zone)).tz_localize(None)
    return stamp.floor("us")


def _expected_local() -> dict[str, str | None]:
    return {row[0]: row[4] for row in TRANSACTIONS}


def _local_text(value: object) -> str | None:
    """A local time as the tables above write it (seconds; microseconds when there are)."""
    if value is None or value is pd.NaT:
        return None
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + (f".{stamp.microsecond:06d}"
                                                  if stamp.microsecond else "")


def test_reference_times_agree_with_zoneinfo():
    """The hand-written local times are New York's, and differ from a fixed offset's day."""
    for _, _, text, _, local in TRANSACTIONS:
        if local is not None:
            assert _local_text(_reference_local(text, ZONE)) == local, text
    for _, utc, local in EVENTS:
        at = dt.datetime.fromisoformat(utc).replace(tzinfo=dt.UTC)
        assert _local_text(at.astimezone(ZoneInfo(ZONE)).replace(tzinfo=None)) == local
    # what the cutoff checks rest on: a fixed offset would give the other day
    assert _reference_local("2023-03-13T04:30:00Z", "Etc/GMT+5").day == 12
    assert _reference_local("2023-11-06T04:30:00Z", "Etc/GMT+4").day == 6


def _input_tables() -> dict[str, pa.Table]:
    return {
        "transactions": pa.table({
            "transaction_id": [row[0] for row in TRANSACTIONS],
            "customer_id": [row[1] for row in TRANSACTIONS],
            "transacted_at": [row[2] for row in TRANSACTIONS],
            "amount": pa.array([float(row[3]) for row in TRANSACTIONS], pa.float64()),
            "product_category": ["books"] * len(TRANSACTIONS),
        }),
        "events": pa.table({
            "customer_id": [row[0] for row in EVENTS],
            "event_at": pa.array([dt.datetime.fromisoformat(row[1]) for row in EVENTS],
                                 pa.timestamp("us", tz="UTC")),
            "event_type": ["view"] * len(EVENTS),
        }),
        "customers": pa.table({
            "customer_id": [row[0] for row in CUSTOMERS],
            "signup_date": [row[1] for row in CUSTOMERS],
            "country": ["US"] * len(CUSTOMERS),
            "age_band": ["35-44"] * len(CUSTOMERS),
        }),
    }


def _write_inputs(directory: Path) -> dict[str, str]:
    """The inputs as Parquet files; the vars that point at them."""
    paths = {}
    for name, table in _input_tables().items():
        paths[name] = str(directory / f"{name}.parquet")
        pq.write_table(table, paths[name])
    return {"clv_transactions": paths["transactions"], "clv_events": paths["events"],
            "clv_customers": paths["customers"]}


# ---------------------------------------------------------------------------------------------
# The var and the macro, without a build


BAD_ZONES = {
    "unknown": ("Mars/Olympus", "'Mars/Olympus' is not a time zone name"),
    "spelled_in_lower_case": ("america/new_york", "did you mean 'America/New_York'?"),
    "fixed_offset": ("+05:00", "'+05:00' is not a time zone name"),
    "sql": ("UTC'; drop table x; --", "must not contain quotes"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_ZONES)
def test_a_bad_zone_stops_before_sql_runs_with_one_line(dbt_project, case):
    value, expected = BAD_ZONES[case]
    with pytest.raises(CompilationError) as raised:
        dbt_project.run("parse", vars={"clv_time_zone": value})
    assert expected in message_line(raised.value, "Invalid value for var 'clv_time_zone'")
    assert not dbt_project.database.exists(), "no SQL may run for an invalid var"


@pytest.mark.slow
def test_an_offset_directive_is_refused_where_formats_are_translated(dbt_project, capfd):
    """PostgreSQL and Spark translate clv_timestamp_format and have no %z: one line that
    names the var and says how offsets are read (dbt prints it and fails the inline query)."""
    with pytest.raises(DbtBaseException, match="Error parsing inline query"):
        dbt_project.run("compile", extra=[
            "--inline", "select '{{ clv_timestamp_format_patterns(\"%Y-%m-%d %H:%M%z\") }}'"])
    line = message_line(capfd.readouterr().out, "Invalid value for var 'clv_timestamp_format'")
    assert "the directive %z is not supported" in line and "read without a format" in line


@pytest.mark.slow
def test_duckdb_sql_gives_the_local_time_in_any_zone(dbt_project):
    """clv_parse_timestamp's DuckDB SQL on every text above, in New York, UTC (the default) and
    a zone east of UTC, against zoneinfo, whatever the session's zone; a strptime format with
    %z gives instants, converted the same way."""
    zones = [ZONE, "UTC", "Asia/Kolkata"]
    columns = ", ".join(
        f"{{{{ clv_parse_timestamp('value', time_zone='{zone}') }}}} as iso_{i}, "
        f"{{{{ clv_parse_timestamp('value', format='%Y-%m-%dT%H:%M:%S%z', time_zone='{zone}') }}}}"
        f" as format_{i}"
        for i, zone in enumerate(zones))
    result = dbt_project.run("compile", extra=["--inline", f"select value, {columns} from inputs"])
    sql = result.result.results[0].node.compiled_code
    expected_local = {row[2]: row[4] for row in TRANSACTIONS}
    with_format = {"t04", "t05", "t10"}  # the texts that %z reads
    with duckdb.connect() as connection:
        connection.execute("set TimeZone = 'Australia/Sydney'")  # no effect on the answers
        connection.execute("create table inputs as select unnest(?) as value",
                           [list(expected_local)])
        parsed = connection.sql(sql).df().set_index("value")
    for i, zone in enumerate(zones):
        for transaction_id, _, text, _, local in TRANSACTIONS:
            expected = None if local is None else _local_text(_reference_local(text, zone))
            assert _local_text(parsed.loc[text, f"iso_{i}"]) == expected, (zone, text)
            if zone == ZONE:
                assert expected == local
            if transaction_id in with_format:
                assert _local_text(parsed.loc[text, f"format_{i}"]) == expected, (zone, text)


# ---------------------------------------------------------------------------------------------
# Builds: the local days at the cutoffs on DuckDB, and the same answers on PostgreSQL and Spark


def _usable() -> list[tuple[str, str, float, str]]:
    """(transaction_id, customer_id, amount, local date) of the rows on or before the as-of
    date that parse."""
    return [(row[0], row[1], float(row[3]), row[4][:10]) for row in TRANSACTIONS
            if row[4] is not None and row[4][:10] <= AS_OF]


class _Built:
    """One engine's build: its tables as rows of a query (``{schema}`` is its schema) and as
    Arrow tables."""

    def __init__(self, engine: str, schema: str, rows: Callable[[str], list[tuple]],
                 table: Callable[[str], pa.Table], workdir: Path | None = None) -> None:
        self.engine, self.schema, self._rows, self.table = engine, schema, rows, table
        self.workdir = workdir

    def rows(self, sql: str) -> list[tuple]:
        return self._rows(sql.replace("{schema}", self.schema))

    def local(self, column: str) -> str:
        # Spark's timestamp is an instant rendered in the session's zone: as timestamp_ntz,
        # the wall-clock time the staging models give it
        return f"cast({column} as timestamp_ntz)" if self.engine == "spark" else column

    def staged(self, compiled: bool = False) -> dict[str, dict[str, str | None]]:
        """Local times and dates of the staging models, keyed by transaction or customer id:
        read from the views, or with ``compiled`` by running their compiled SQL."""
        columns = {"transactions": ("transaction_id", self.local("transacted_at")),
                   "events": ("customer_id", self.local("event_at")),
                   "customers": ("customer_id", "signup_date")}
        staged = {}
        for name, (key, value) in columns.items():
            model = f"stg_clv__{name}"
            relation = f"{{schema}}.{model}"
            if compiled:
                assert self.workdir is not None
                # the model's own SQL, not a unit test's fixture of the same name
                [path] = (self.workdir / "target" / "compiled").rglob(f"1_staging/{model}.sql")
                relation = f"({path.read_text()}) as {model}"
            rows = self.rows(f"select {key}, {value} from {relation}")
            staged[name] = {k: _local_text(v) if name != "customers" else str(v) for k, v in rows}
        return staged


def _expected_staged() -> dict[str, dict[str, str | None]]:
    return {"transactions": _expected_local(),
            "events": {customer: local for customer, _, local in EVENTS},
            "customers": {customer: local for customer, _, local in CUSTOMERS}}


@pytest.fixture(scope="module")
def duckdb_built(tmp_path_factory: pytest.TempPathFactory) -> _Built:
    from conftest import DbtProject

    project = DbtProject(tmp_path_factory.mktemp("time_zones_duckdb"))
    # cautious: the data tests that also read unselected models stay out
    result = project.run("build", vars={**RUN_VARS, **_write_inputs(project.workdir)},
                         select=DUCKDB_MODELS, extra=["--indirect-selection", "cautious"])
    assert result.success, [f"{r.node.name}: {r.message}" for r in result.result
                            if str(r.status) in ("error", "fail", "runtime error")]

    def rows(sql: str) -> list[tuple]:
        with duckdb.connect(str(project.database)) as connection:
            return connection.sql(sql).fetchall()

    def table(name: str) -> pa.Table:
        with duckdb.connect(str(project.database)) as connection:
            return connection.sql(f"select * from {name}").to_arrow_table()

    return _Built("duckdb", "main", rows, table)


@pytest.mark.slow
def test_duckdb_puts_each_row_on_its_local_day(duckdb_built):
    assert duckdb_built.staged() == _expected_staged()
    quality = dict(duckdb_built.rows("select reason, rows from {schema}.clv_data_quality"))
    assert quality["invalid_timestamp"] == 6 and quality["after_as_of_date"] == 1
    days = duckdb_built.rows("select customer_id, cast(activity_date as varchar) "
                             "from {schema}.int_clv__customer_days")
    assert sorted(days) == sorted({(customer, day) for _, customer, _, day in _usable()})


@pytest.mark.slow
def test_duckdb_cutoffs_count_23_30_on_its_day(duckdb_built):
    """At the cutoffs 2023-03-12 and 2023-11-05 the features hold exactly the rows whose local
    day is on or before the cutoff: the 23:30 purchases, events and the sign-up in, the 00:30
    ones out."""
    cutoffs = duckdb_built.rows(
        "select cast(cutoff_date as varchar) from {schema}.int_clv__cutoffs")
    assert sorted(day for (day,) in cutoffs) == list(CUTOFFS)
    features = duckdb_built.rows(
        "select cast(cutoff_date as varchar), customer_id, revenue_total, events_total, "
        "days_since_signup from {schema}.clv_customer_features")
    expected = {}
    for cutoff in CUTOFFS:
        for _, customer, amount, day in _usable():
            if day <= cutoff:
                key = (cutoff, customer)
                expected[key] = expected.get(key, 0.0) + amount
    assert {(c, customer): revenue for c, customer, revenue, _, _ in features} == expected
    # the 23:30 pair counts at the DST cutoff, the 00:30 purchase after it does not
    assert expected[("2023-03-12", "B")] == 8 + 16 and expected[("2023-03-12", "A")] == 1 + 2
    assert expected[("2023-11-05", "C")] == 64 + 128 + 256 + 512
    events = {(c, customer): total for c, customer, _, total, _ in features}
    assert events[("2023-03-12", "B")] == 1 and events[("2023-03-12", "A")] == 0
    assert events[("2023-11-05", "C")] == 1
    signup = {(c, customer): days for c, customer, _, _, days in features}
    assert signup[("2023-03-12", "B")] == 0 and signup[("2023-11-05", "C")] == 0


@pytest.fixture(scope="module", autouse=True)
def _drop_test_schemas():
    yield
    drop_postgres_schemas("clv_tz_")


def _postgres_built(workdir: Path) -> _Built:
    """The inputs copied into PostgreSQL tables (the event times as timestamptz), then built."""
    from clv.warehouse import PostgresWarehouse

    connection = postgres_connection()  # skips (or fails in CI) when there is no server
    inputs = schema_name("clv_tz_input")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create schema "{inputs}"')
        connection.commit()
        warehouse = PostgresWarehouse(connection, inputs)
        for name, table in _input_tables().items():
            warehouse.write_table(f"{inputs}.{name}", table)
    finally:
        connection.close()
    schema = schema_name("clv_tz")
    clv_build("postgres", {**RUN_VARS, "clv_transactions": f"{inputs}.transactions",
                           "clv_events": f"{inputs}.events",
                           "clv_customers": f"{inputs}.customers"},
              workdir, {"CLV_SCHEMA": schema, **postgres_settings()}, models=ENGINE_MODELS,
              tests=False)

    def rows(sql: str) -> list[tuple]:
        connection = postgres_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            connection.close()

    def table(name: str) -> pa.Table:
        return PostgresWarehouse(postgres_connection(), schema).read(f"{schema}.{name}")

    return _Built("postgres", schema, rows, table)


def _spark_built(workdir: Path, spark_dir: Path) -> _Built:
    """Built from the Parquet files (the event times as Spark timestamps)."""
    spark_available()
    schema = schema_name("clv_tz")
    clv_build("spark", {**RUN_VARS, **_write_inputs(workdir)}, workdir,
              {"CLV_SCHEMA": schema, "CLV_SPARK_DIR": str(spark_dir)}, models=ENGINE_MODELS,
              tests=False)
    from pyspark.sql import SparkSession

    from clv.warehouse import SparkWarehouse

    session = SparkSession.builder.getOrCreate()
    return _Built("spark", schema, lambda sql: [tuple(row) for row in session.sql(sql).collect()],
                  lambda name: SparkWarehouse(session, schema).read(f"{schema}.{name}"), workdir)


@pytest.fixture(scope="module")
def postgres_built(tmp_path_factory: pytest.TempPathFactory) -> _Built:
    return _postgres_built(tmp_path_factory.mktemp("time_zones_postgres"))


@pytest.fixture(scope="module")
def spark_built(spark_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> _Built:
    return _spark_built(tmp_path_factory.mktemp("time_zones_spark"), spark_dir)


@pytest.fixture(scope="module", params=("postgres", "spark"))
def engine_built(request: pytest.FixtureRequest) -> _Built:
    return request.getfixturevalue(f"{request.param}_built")


@pytest.mark.slow
@pytest.mark.engines
def test_engine_gives_duckdb_local_times_and_days(duckdb_built, engine_built):
    assert engine_built.staged() == _expected_staged()
    for table in ("int_clv__customer_days", "clv_data_quality"):
        assert_same_table(duckdb_built.table(table), engine_built.table(table),
                          f"{engine_built.engine}: {table}")


@pytest.mark.slow
@pytest.mark.engines
def test_spark_answers_do_not_depend_on_the_session_time_zone(spark_built):
    """Spark's staging SQL run in sessions west and east of UTC (Los Angeles changes its clocks
    on the same days as New York) gives the same local times: a timestamp, and the dates taken
    from it in one session, render the local time in that session's zone. The SQL is run, not
    the views, which keep the time zone of the session that created them."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.getOrCreate()
    try:
        for zone in ("America/Los_Angeles", "Asia/Tokyo", "UTC"):
            session.conf.set("spark.sql.session.timeZone", zone)
            assert spark_built.staged(compiled=True) == _expected_staged(), zone
    finally:
        session.conf.set("spark.sql.session.timeZone", "UTC")


@pytest.mark.slow
@pytest.mark.engines
def test_spark_refuses_a_zone_its_java_runtime_lacks_naming_the_var(spark_built, spark_dir,
                                                                   tmp_path, capfd):
    """A name in pytz's list (so valid when the vars are read) that the Java runtime's zone data
    lacks stops the Spark build before any model, with one line that names the var instead of
    Spark's INVALID_TIMEZONE at the first conversion."""
    import pytz
    from pyspark.sql import SparkSession

    from clv.build import BuildError

    java_zones = set(SparkSession.builder.getOrCreate()._jvm.java.time.ZoneId
                     .getAvailableZoneIds())
    missing = sorted(set(pytz.all_timezones) - java_zones)
    if not missing:
        pytest.skip("this Java runtime knows every name pytz lists")
    schema = schema_name("clv_tz_bad")
    with pytest.raises(BuildError) as raised:
        clv_build("spark", {**RUN_VARS, "clv_time_zone": missing[0], **_write_inputs(tmp_path)},
                  tmp_path, {"CLV_SCHEMA": schema, "CLV_SPARK_DIR": str(spark_dir)},
                  models=ENGINE_MODELS)
    text = str(raised.value) + capfd.readouterr().out
    line = message_line(text, "Invalid value for var 'clv_time_zone'")
    assert f"'{missing[0]}' is not in the time zone data of Spark's Java runtime" in line
    assert "INVALID_TIMEZONE" not in text
    assert not SparkSession.builder.getOrCreate().catalog.tableExists(
        f"{schema}.int_clv__transactions_checked")
