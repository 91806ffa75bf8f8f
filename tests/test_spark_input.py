"""Spark on its own: a Parquet export read with an export's column names and types (names that
are not plain SQL names, "Customer ID" and "Unit Price", and a Quantity column of text), and the
spend level's totals added up on the executors."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from engines import clv_build, schema_name, spark_available

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


@pytest.mark.slow
@pytest.mark.engines
def test_names_with_a_space_and_a_text_column_inside_a_function(spark_dir: Path,
                                                                tmp_path: Path):
    spark_available()
    names = ["InvoiceNo", "InvoiceDate", "Customer ID", "Quantity", "Unit Price"]
    path = tmp_path / "retail.parquet"
    pq.write_table(pa.table({name: [row[i] for row in ROWS] for i, name in enumerate(names)}),
                   path)
    schema = schema_name("clv_spin")
    clv_build("spark", {**RUN_VARS, "clv_transactions": str(path)}, tmp_path,
              {"CLV_SCHEMA": schema, "CLV_SPARK_DIR": str(spark_dir)},
              models=["clv_data_quality"])
    from pyspark.sql import SparkSession

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
def test_the_spend_level_totals_on_spark_count_a_wholesaler_as_a_tenth(spark_dir: Path):
    """The executors' exact totals and the customers above a tenth of them (clv.level rule 7)
    are the ones the scoring step adds up in this process."""
    spark_available()
    import numpy as np
    from pyspark.sql import SparkSession

    from clv import level
    from clv.warehouse import SparkWarehouse

    rng = np.random.default_rng(8)
    btyd, network = rng.gamma(0.4, 300.0, 2000), rng.gamma(0.4, 250.0, 2000)
    network[3], btyd[3] = 2.0 * network.sum(), network.sum()
    session = SparkSession.builder.getOrCreate()
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
