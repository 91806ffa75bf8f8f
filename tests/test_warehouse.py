"""The warehouse boundary on DuckDB: schema, counts, md5 sampling, digests, batches, writes."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import duckdb
import pyarrow as pa
import pytest

from clv.warehouse import SAMPLE_BUCKETS, DuckDBWarehouse, bucket_of, connect


@pytest.fixture
def warehouse() -> DuckDBWarehouse:
    connection = duckdb.connect()
    connection.execute("""
        create table examples as
        select 'c' || lpad(cast(i as varchar), 5, '0') as customer_id,
               date '2024-01-01' + cast(i % 3 as integer) * 30 as cutoff_date,
               i * 1.25 as revenue_total, cast(i as bigint) as t_days, i % 2 = 0 as is_even
        from range(3000) as r(i)
        order by customer_id
    """)
    return DuckDBWarehouse(connection)


def test_connect_picks_duckdb_and_refuses_other_sessions():
    assert isinstance(connect(duckdb.connect()), DuckDBWarehouse)
    with pytest.raises(TypeError, match="no warehouse implementation"):
        connect(object())


def test_schema_maps_engine_types_to_arrow(warehouse):
    schema = warehouse.schema("examples")
    assert schema.field("customer_id").type == pa.string()
    assert schema.field("cutoff_date").type == pa.date32()
    assert schema.field("revenue_total").type == pa.float64()
    assert schema.field("t_days").type == pa.int64()
    assert schema.field("is_even").type == pa.bool_()


def test_counts(warehouse):
    assert warehouse.row_count("examples") == 3000


def test_bucket_is_md5_of_the_key_text_in_sql_and_python(warehouse):
    table = warehouse.query("examples", "select customer_id, cutoff_date, "
                            f"{warehouse.bucket_sql(['customer_id', 'cutoff_date'])} as bucket "
                            "from {relation} limit 50")
    for row in table.to_pylist():
        text = f"{row['customer_id']}|{row['cutoff_date'].isoformat()}"
        expected = int(hashlib.md5(text.encode()).hexdigest()[:8], 16) % SAMPLE_BUCKETS
        assert row["bucket"] == expected == bucket_of(row["customer_id"], row["cutoff_date"])


def test_sample_keeps_exactly_the_rows_below_the_limit(warehouse):
    sample = warehouse.sample("examples", ["customer_id", "cutoff_date"],
                              key=["customer_id", "cutoff_date"], limit=100_000)
    everything = warehouse.read("examples", ["customer_id", "cutoff_date"]).to_pylist()
    expected = {(r["customer_id"], r["cutoff_date"]) for r in everything
                if bucket_of(r["customer_id"], r["cutoff_date"]) < 100_000}
    got = {(r["customer_id"], r["cutoff_date"]) for r in sample.to_pylist()}
    assert got == expected
    assert 200 < len(got) < 400  # about 10%
    single = warehouse.sample("examples", ["customer_id"], key=["customer_id"], limit=250_000)
    assert single.num_rows == sum(1 for r in everything if bucket_of(r["customer_id"]) < 250_000)
    assert warehouse.sample("examples", ["customer_id"], key=["customer_id"],
                            limit=None).num_rows == 3000


def test_digest_depends_on_content_not_order(warehouse):
    columns = ['"customer_id"', '"cutoff_date"', '"t_days"']
    first = warehouse.digest("examples", columns)
    warehouse.connection.execute("create table shuffled as select * from examples "
                                 "order by md5(customer_id)")
    assert warehouse.digest("shuffled", columns) == first
    warehouse.connection.execute("update shuffled set t_days = t_days + 1 where customer_id = "
                                 "'c00007'")
    changed = warehouse.digest("shuffled", columns)
    assert changed[0] == first[0] and changed[1] != first[1]


def test_batches_stream_in_bounded_pieces_and_in_order(warehouse):
    reader = warehouse.batches("examples", 128, columns=["customer_id"], order_by=["customer_id"])
    sizes, ids = [], []
    for batch in reader:
        sizes.append(batch.num_rows)
        ids += batch.column(0).to_pylist()
    assert max(sizes) <= 128 and sum(sizes) == 3000
    assert ids == sorted(ids)
    stored = warehouse.stored_order_batches("examples", 500, columns=["customer_id"])
    assert pa.Table.from_batches(list(stored)).column(0).to_pylist() == ids


def test_write_table_streams_a_reader_into_a_table(warehouse):
    data = pa.table({"customer_id": ["a", "b", "c"], "value": [1.0, 2.0, 3.0]})
    assert warehouse.write_table("written", data.to_reader(max_chunksize=1)) == 3
    assert warehouse.read("written").equals(data)
    assert warehouse.write_table("written", data.slice(0, 1)) == 1  # replaced


def test_write_table_takes_a_stream_of_the_same_warehouse(warehouse):
    """map_batches over a table of the warehouse, written back to it: the stream holds the
    connection's result open while the table is written (DuckDB refused the write)."""
    schema = warehouse.schema("examples")
    total = "select count(*) as n, sum(revenue_total) as s from {relation}"
    rows, revenue = warehouse.query("examples", total).to_pylist()[0].values()
    copied = warehouse.map_batches("examples", lambda batches: (b.cast(schema) for b in batches),
                                   schema, 7)
    assert warehouse.write_table("copied", copied) == rows
    assert list(warehouse.query("copied", total).to_pylist()[0].values()) == [rows, revenue]


def test_the_training_fingerprint_follows_features_and_version_not_row_order(monkeypatch):
    """clv_retrain auto reuses a model when the fingerprint is equal: it changes when a feature
    is set for other customers (customer attributes or events corrected while the
    transactions stayed), the package version or the features' definitions change, not with
    the rows' order."""
    import clv
    from clv.config import TrainSettings
    from clv.pipeline import training
    from clv.pipeline.settings import RunSettings
    from clv.pipeline.training import fingerprint

    connection = duckdb.connect()
    connection.execute("""
        create table examples as
        select 'c' || cast(i as varchar) as customer_id, date '2024-01-01' as cutoff_date,
               i * 1.5 as label_revenue, i * 2.25 as revenue_total, cast(i as bigint) as t_days,
               cast(i % 3 = 0 as double) as attr_vip
        from range(500) as r(i)""")
    warehouse = DuckDBWarehouse(connection)
    run = RunSettings(model_dir="onnx", retrain="auto", horizon_days=90, period_days=30,
                      sequence_periods=12, seed=42, static_features=(), channels=())
    features = ["revenue_total", "t_days", "attr_vip"]

    def current() -> str:
        return fingerprint(warehouse, "examples", features, run, TrainSettings())

    first = current()
    connection.execute("create or replace table examples as "
                       "select * from examples order by random()")
    assert current() == first
    connection.execute("update examples set attr_vip = 1 where t_days = 1")
    assert current() != first
    connection.execute("update examples set attr_vip = 0 where t_days = 1")
    assert current() == first
    monkeypatch.setattr(clv, "__version__", "9.9.9")
    assert current() != first
    # so does the features' definition (a model trained before a feature change is retrained)
    version = current()
    monkeypatch.setattr(training, "FEATURE_DEFINITIONS", training.FEATURE_DEFINITIONS + 1)
    assert current() != version
    # money beyond 9.2e12 (a bigint of micro-units) is digested in whole units, not an
    # overflow that stopped training (an amount in rupiah, a mistyped one)
    connection.execute("update examples set revenue_total = 5e12 * 2, label_revenue = 1e19 "
                       "where t_days = 2")
    huge = current()
    connection.execute("update examples set revenue_total = 5e12 * 3 where t_days = 2")
    assert current() != huge


def test_spark_sql_backquotes_identifiers_and_leaves_literals_as_written():
    from clv.warehouse.spark import spark_identifiers

    sql = ("""select "Customer ID", "a""b", "x`y" from t """
           """where note = 'say "hi"' and other = 'it\\'s "q"' and "n" = 1""")
    assert spark_identifiers(sql) == (
        """select `Customer ID`, `a"b`, `x``y` from t """
        """where note = 'say "hi"' and other = 'it\\'s "q"' and `n` = 1""")


def test_a_relative_spark_warehouse_directory_is_located_where_the_build_runs(tmp_path,
                                                                             monkeypatch):
    from clv.warehouse.spark import SparkWarehouse

    settings = {"spark.sql.warehouse.dir": "spark-warehouse"}
    conf = SimpleNamespace(get=lambda key, default=None: settings.get(key, default),
                           set=lambda key, value: None)
    warehouse = SparkWarehouse(SimpleNamespace(conf=conf))
    monkeypatch.chdir(tmp_path)
    assert warehouse.location() == str(tmp_path / "spark-warehouse")
    settings["spark.sql.warehouse.dir"] = "s3://bucket/warehouse"
    assert warehouse.location() == "s3://bucket/warehouse"
