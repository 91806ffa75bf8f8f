"""Input shapes of real exports: ids a file reader types as floats, text ids, a misspelled
column in clv_columns, a header-only file.

The files have the shape of the public "Online Retail" invoices (InvoiceNo, InvoiceDate as
M/D/YYYY H:MM, CustomerID, Quantity, UnitPrice; amount = Quantity * UnitPrice) and are
generated here. That file's id column has blanks, so pandas reads it as float64 and writes
17850 back as 17850.0; DuckDB then types the column as DOUBLE.
"""

from __future__ import annotations

import gzip
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import FEATURE_MODELS, PROJECT_DIR
from production import failures as node_failures
from production import message_line

RETAIL_COLUMNS = {"customer_id": "CustomerID", "transacted_at": "InvoiceDate",
                  "amount": "Quantity * UnitPrice", "transaction_id": "InvoiceNo"}
VARS = {
    "clv_columns": RETAIL_COLUMNS,
    "clv_timestamp_format": "%m/%d/%Y %H:%M",
    "clv_as_of_date": "2011-06-30",
    "clv_horizon_days": 60,
    "clv_training_cutoffs": 2,
}
# (InvoiceNo, InvoiceDate, CustomerID or None for a blank cell, Quantity, UnitPrice)
INVOICES = [
    ("536365", "12/1/2010 8:26", 17850, 40, 3.91),
    ("536366", "12/1/2010 8:28", 17850, 12, 1.85),
    ("536367", "12/1/2010 8:34", 13047, 83, 4.8533),
    ("536368", "12/1/2010 8:35", None, 15, 4.775),
    ("C536379", "12/1/2010 9:41", 14527, -1, 27.5),
    ("536380", "12/1/2010 9:45", 14527, 24, 1.25),
    ("540001", "1/4/2011 10:00", 13047, 10, 2.5),
    ("540002", "1/4/2011 10:05", None, 3, 9.95),
    ("545000", "2/28/2011 15:15", 17850, 6, 4.25),
    ("550000", "4/14/2011 12:00", 14527, 12, 0.85),
    ("552000", "5/6/2011 16:20", 13047, 2, 12.75),
]
CUSTOMERS = {"17850", "13047", "14527"}


def _retail_frame(invoices=INVOICES) -> pd.DataFrame:
    return pd.DataFrame(invoices, columns=["InvoiceNo", "InvoiceDate", "CustomerID", "Quantity",
                                           "UnitPrice"])


def _reader_types(path) -> dict[str, str]:
    """The column types DuckDB's CSV reader gives the file, as the project reads it."""
    with duckdb.connect() as connection:
        return dict(connection.sql(
            "select column_name, column_type from (describe select * from "
            f"read_csv('{path}', header = true, sample_size = -1))").fetchall())


def _expected_net_spend(invoices, as_of: str) -> dict[str, float]:
    """Net spend per customer id, as written, on or before the as-of date (plain Python)."""
    end = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    spend: dict[str, float] = {}
    for _, at, customer, quantity, price in invoices:
        if customer is not None and pd.Timestamp(at) < end:
            spend[str(customer)] = spend.get(str(customer), 0.0) + quantity * price
    return spend


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import DbtProject

    return DbtProject(tmp_path_factory.mktemp("input_shapes"))


@pytest.mark.slow
def test_float_typed_ids_come_out_as_written(project):
    """The public file's shape after a pandas round trip: 17850.0 and blank cells in a DOUBLE
    column give the customer 17850 and missing ids; attributes keyed the same way join."""
    frame = _retail_frame()
    assert frame.CustomerID.dtype == "float64"  # the blanks make pandas read a float column
    transactions = project.workdir / "online_retail.csv"
    frame.to_csv(transactions, index=False)
    assert "17850.0" in transactions.read_text()
    customers = project.workdir / "customers.csv"
    pd.DataFrame({"customer_id": [17850, None, 13047], "signup_date": ["2010-11-01"] * 3,
                  "country": ["United Kingdom", "France", "Norway"],
                  "age_band": ["35-44"] * 3}).to_csv(customers, index=False)
    assert _reader_types(transactions)["CustomerID"] == "DOUBLE"

    project.build(vars={**VARS, "clv_transactions": str(transactions),
                        "clv_customers": str(customers)})

    staged = project.query("select distinct customer_id from stg_clv__transactions")
    assert set(staged.customer_id.dropna()) == CUSTOMERS
    features = project.query(
        "select customer_id, revenue_total, country from clv_customer_features "
        "where cutoff_date = date '2011-06-30'").set_index("customer_id")
    assert set(features.index) == CUSTOMERS
    expected = _expected_net_spend(INVOICES, "2011-06-30")
    for customer in CUSTOMERS:
        assert features.loc[customer, "revenue_total"] == pytest.approx(expected[customer],
                                                                        rel=1e-9)
    assert features.loc["17850", "country"] == "United Kingdom"
    assert features.loc["13047", "country"] == "Norway"
    quality = project.query("select reason, rows from clv_data_quality")
    assert dict(zip(quality.reason, quality.rows, strict=True))["missing_customer_id"] == 2
    assert quality.rows.sum() == 2


@pytest.mark.slow
def test_decimal_and_double_ids_in_parquet(project):
    """Typed sources: a decimal customer id and a double invoice number lose only the zero
    fraction; a fraction that is not zero is kept, so no two ids merge."""
    invoices = [(float(number.lstrip("C")), at, customer, quantity, price)
                for number, at, customer, quantity, price in INVOICES]
    table = pa.table({
        "InvoiceNo": pa.array([row[0] for row in invoices], pa.float64()),
        "InvoiceDate": [row[1] for row in invoices],
        "CustomerID": pa.array([None if row[2] is None else Decimal(f"{row[2]}.00")
                                for row in invoices], pa.decimal128(9, 2)),
        "Quantity": [row[3] for row in invoices],
        "UnitPrice": [row[4] for row in invoices],
    })
    extra = pa.table({"InvoiceNo": pa.array([560000.5], pa.float64()),
                      "InvoiceDate": ["6/1/2011 9:00"],
                      "CustomerID": pa.array([Decimal("17850.50")], pa.decimal128(9, 2)),
                      "Quantity": [1], "UnitPrice": [10.0]})
    path = project.workdir / "online_retail.parquet"
    pq.write_table(pa.concat_tables([table, extra]), path)

    project.build(vars={**VARS, "clv_transactions": str(path)},
                  select="+int_clv__transactions_classified")

    staged = project.query("select transaction_id, customer_id from stg_clv__transactions")
    assert set(staged.customer_id.dropna()) == CUSTOMERS | {"17850.50"}
    assert "536365" in set(staged.transaction_id) and "560000.5" in set(staged.transaction_id)
    assert not any(value.endswith(".0") for value in staged.transaction_id)


@pytest.mark.slow
def test_spark_written_int96_timestamps_are_instants(project):
    """Spark writes timestamps as INT96 by default: UTC instants, which DuckDB reads as a
    timestamp without a zone. They convert to clv_time_zone as Spark converts them, so the
    same files give the same days on both; a timestamp column with its zone reads alike."""
    instants = [datetime(2021, 1, 2, 8, 43, 20), datetime(2021, 1, 2, 3, 0)]
    base = {"transaction_id": ["t1", "t2"], "customer_id": ["C1", "C2"], "amount": [10.0, 5.0]}
    int96 = project.workdir / "spark_int96.parquet"
    pq.write_table(pa.table({**base, "transacted_at": pa.array(instants, pa.timestamp("us"))}),
                   int96, use_deprecated_int96_timestamps=True)
    zoned = project.workdir / "utc_adjusted.parquet"
    pq.write_table(pa.table({**base, "transacted_at": pa.array(instants,
                                                               pa.timestamp("us", tz="UTC"))}),
                   zoned)
    local = []
    for path in (int96, zoned):
        project.build(vars={**VARS, "clv_columns": {}, "clv_transactions": str(path),
                            "clv_time_zone": "America/New_York"}, select="stg_clv__transactions")
        local.append(project.query("select cast(transacted_at as varchar) as local_time from "
                                   "stg_clv__transactions order by transaction_id"
                                   ).local_time.tolist())
    assert local == [["2021-01-02 03:43:20", "2021-01-01 22:00:00"]] * 2


@pytest.mark.slow
def test_a_column_name_in_a_file_is_a_name_never_sql(project):
    """The column names of a Parquet file are whoever wrote the file's: an INT96 column named
    to end its quoted identifier and read a local file into product_category stays a column of
    that odd name, and the secret stays out of every table."""
    secret = project.workdir / "secret.txt"
    secret.write_text("TOP-SECRET")
    path = project.workdir / "hostile.parquet"
    hostile = (f'x") as "ts", (select content from read_text(\'{secret}\')) as '
               f'"product_category") from read_parquet(\'{path}\')) --')
    instants = [datetime(2021, 1, 2, 8, 43, 20), datetime(2021, 1, 2, 3, 0)]
    pq.write_table(pa.table({"transaction_id": ["t1", "t2"], "customer_id": ["C1", "C2"],
                             "amount": [10.0, 5.0], "ts": ["a", "b"],
                             "transacted_at": pa.array(instants, pa.timestamp("us")),
                             hostile: pa.array(instants, pa.timestamp("us"))}),
                   path, use_deprecated_int96_timestamps=True)
    project.build(vars={**VARS, "clv_columns": {}, "clv_transactions": str(path)},
                  select="stg_clv__transactions")
    staged = project.query("select transaction_id, product_category from stg_clv__transactions "
                           "order by transaction_id")
    assert staged.transaction_id.tolist() == ["t1", "t2"]
    assert staged.product_category.isna().all()


@pytest.mark.slow
def test_text_ids_keep_their_spelling(project):
    """A text id column (as the published file, with its `(blank)` cells): leading zeros and
    every other character stay, surrounding spaces, tabs and line breaks go, sentinels are
    missing ids, and a whole number with a zero fraction (a float column's text) is the
    whole number."""
    ids = ["00123", " 17850 ", "(blank)", "A-17", "17850.0", " 0013047", "", "NULL", "00123",
           "17850\t", "\r\n13047", "13047.00 ", "1.5", "A.0", "12.0.0"]
    frame = pd.DataFrame({
        "InvoiceNo": [f"6{i:05d}" for i in range(len(ids))],
        "InvoiceDate": [f"1/{i + 2}/2011 10:00" for i in range(len(ids))],
        "CustomerID": ids, "Quantity": 2, "UnitPrice": 5.0,
    })
    path = project.workdir / "text_ids.csv"
    frame.to_csv(path, index=False)

    project.build(vars={**VARS, "clv_transactions": str(path)},
                  select="+int_clv__transactions_classified")

    staged = project.query("select customer_id from stg_clv__transactions")
    assert sorted(staged.customer_id.dropna()) == ["00123", "00123", "0013047", "1.5", "12.0.0",
                                                   "13047", "13047", "17850", "17850", "17850",
                                                   "A-17", "A.0"]
    assert staged.customer_id.isna().sum() == 3


@pytest.mark.slow
def test_day_first_dates_typed_by_the_reader_keep_their_day(project):
    """DuckDB's CSV reader would type day-first dates (13/01/2011) as DATE itself; they reach
    the project as text, read with the format the README asks for (%d/%m/%Y)."""
    frame = pd.DataFrame({"InvoiceNo": ["1", "2", "3"],
                          "InvoiceDate": ["13/01/2011", "01/02/2011", "28/02/2011"],
                          "CustomerID": ["17850", "13047", "17850"],
                          "Quantity": [1, 2, 3], "UnitPrice": [10.0, 5.0, 2.0]})
    path = project.workdir / "day_first.csv"
    frame.to_csv(path, index=False)
    assert _reader_types(path)["InvoiceDate"] == "DATE"

    project.build(vars={**VARS, "clv_transactions": str(path),
                        "clv_timestamp_format": "%d/%m/%Y"},
                  select="+int_clv__transactions_classified")

    staged = project.query("select transaction_id, cast(transacted_at as date) as day "
                           "from stg_clv__transactions order by transaction_id")
    assert [str(day)[:10] for day in staged.day] == ["2011-01-13", "2011-02-01", "2011-02-28"]


@pytest.mark.slow
@pytest.mark.parametrize(("written", "timestamp_format", "days"), [
    # DuckDB's reader alone takes these as January 21 of the year 1, ...
    (["01/01/21 11:54", "13/02/21 10:00", "04/05/21 23:32"], "%d/%m/%y %H:%M",
     ["2021-01-01", "2021-02-13", "2021-05-04"]),
    # ... and month-first dates whose days are all 12 or less as day-first
    (["01/01/2023", "02/01/2023", "04/01/2023"], "%m/%d/%Y",
     ["2023-01-01", "2023-02-01", "2023-04-01"]),
], ids=["two_digit_years", "month_first_days_to_12"])
def test_a_csv_dates_are_read_with_the_format_not_the_reader_guess(project, written,
                                                                   timestamp_format, days):
    frame = pd.DataFrame({"InvoiceNo": ["1", "2", "3"], "InvoiceDate": written,
                          "CustomerID": ["17850", "13047", "17850"],
                          "Quantity": [1, 2, 3], "UnitPrice": [10.0, 5.0, 2.0]})
    path = project.workdir / "guessed_dates.csv"
    frame.to_csv(path, index=False)
    project.build(vars={**VARS, "clv_transactions": str(path), "clv_as_of_date": "2023-06-30",
                        "clv_timestamp_format": timestamp_format},
                  select="+int_clv__transactions_classified")
    staged = project.query("select cast(transacted_at as date) as day "
                           "from stg_clv__transactions order by transaction_id")
    assert [str(day)[:10] for day in staged.day] == days


@pytest.mark.slow
def test_csv_times_without_an_offset_stay_local_beside_a_few_with_one(project):
    """One value with an offset made DuckDB's reader type the whole column as instants, and
    read every other value as UTC: they are local times, and stay as written."""
    frame = pd.DataFrame({"InvoiceNo": ["1", "2", "3"],
                          "InvoiceDate": ["2022-10-15 02:00:00", "2023-03-13T03:30:00Z",
                                          "2023-07-31 11:00:00"],
                          "CustomerID": ["17850", "13047", "17850"],
                          "Quantity": [1, 2, 3], "UnitPrice": [10.0, 5.0, 2.0]})
    path = project.workdir / "some_offsets.csv"
    frame.to_csv(path, index=False)
    project.build(vars={**VARS, "clv_transactions": str(path), "clv_as_of_date": "2023-08-31",
                        "clv_timestamp_format": "", "clv_time_zone": "America/New_York"},
                  select="+int_clv__transactions_classified")
    staged = project.query("select transacted_at from stg_clv__transactions "
                           "order by transaction_id")
    assert [str(t) for t in staged.transacted_at] == [
        "2022-10-15 02:00:00", "2023-03-12 23:30:00", "2023-07-31 11:00:00"]


@pytest.mark.slow
def test_instants_in_nanoseconds_convert_to_the_time_zone(project):
    """Time-zone-aware timestamps in nanoseconds in Parquet (as pandas 2 writes them;
    TIMESTAMPTZ_NS in DuckDB) are instants, converted to clv_time_zone as microsecond ones
    are."""
    instants = pd.to_datetime(["2023-03-13T03:30:00Z", "2023-07-31T15:00:00Z"])
    table = pa.table({"InvoiceNo": ["1", "2"],
                      "InvoiceDate": pa.array(instants, pa.timestamp("ns", tz="UTC")),
                      "CustomerID": ["17850", "13047"], "Quantity": [1, 2],
                      "UnitPrice": [10.0, 5.0]})
    path = project.workdir / "instants_ns.parquet"
    pq.write_table(table, path)
    assert pq.read_schema(path).field("InvoiceDate").type == pa.timestamp("ns", tz="UTC")
    project.build(vars={**VARS, "clv_transactions": str(path), "clv_as_of_date": "2023-08-31",
                        "clv_timestamp_format": "", "clv_time_zone": "America/New_York"},
                  select="+int_clv__transactions_classified")
    staged = project.query("select transacted_at from stg_clv__transactions "
                           "order by transaction_id")
    assert [str(t) for t in staged.transacted_at] == ["2023-03-12 23:30:00",
                                                      "2023-07-31 11:00:00"]


@pytest.mark.slow
def test_columns_named_with_sql_words_map_as_written(project):
    frame = pd.DataFrame({"Order": ["1", "2", "3"], "Date": ["1/4/2011 10:00"] * 3,
                          "Customer": ["17850", "13047", "17850"], "Group": ["a", "b", "a"],
                          "Amount": [10.0, 5.0, 2.0]})
    path = project.workdir / "sql_words.csv"
    frame.to_csv(path, index=False)
    project.build(vars={**VARS, "clv_transactions": str(path), "clv_columns": {
        "customer_id": "Customer", "transacted_at": "Date", "amount": "Amount",
        "transaction_id": "Order", "product_category": "Group"}},
        select="+int_clv__transactions_classified")
    staged = project.query("select transaction_id, product_category from stg_clv__transactions "
                           "order by transaction_id")
    assert staged.values.tolist() == [["1", "a"], ["2", "b"], ["3", "a"]]


# contract name -> (what clv_columns maps it to, names the error must quote)
MISSPELLED = {
    "plain_column": ({**RETAIL_COLUMNS, "customer_id": "CustomerId_"},
                     ["customer_id maps to 'CustomerId_'", "did you mean 'CustomerID'"]),
    "in_an_expression": ({**RETAIL_COLUMNS, "amount": "Quantiy * UnitPrice"},
                         ["amount maps to 'Quantiy'"]),
    "typo_at_the_start": ({**RETAIL_COLUMNS, "amount": "Qantity * UnitPrice"},
                          ["amount maps to 'Qantity'", "did you mean 'Quantity'"]),
    "a_sql_word": ({**RETAIL_COLUMNS, "transacted_at": "Date"},
                   ["transacted_at maps to 'Date'"]),
    "required_not_mapped": (
        {key: value for key, value in RETAIL_COLUMNS.items() if key != "amount"},
        ["has no column 'amount' and clv_columns does not map amount"]),
    # every wrong name in one message, not one per build
    "two_names": ({**RETAIL_COLUMNS, "customer_id": "CustomerId_", "amount": "Quantiy * UnitPrice"},
                  ["customer_id maps to 'CustomerId_', which clv_transactions (",
                   "; amount maps to 'Quantiy', which clv_transactions does not have"]),
    # a header with a space, as written in the export's documentation, is one name
    "words_with_a_space": ({**RETAIL_COLUMNS, "transacted_at": "Invoice Date"},
                           ["transacted_at maps to 'Invoice Date'", "did you mean 'InvoiceDate'"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", MISSPELLED)
def test_a_misspelled_column_is_one_line_naming_clv_columns(project, case):
    path = project.workdir / "online_retail.csv"
    _retail_frame().to_csv(path, index=False)
    columns, expected = MISSPELLED[case]

    result = project.build(vars={**VARS, "clv_transactions": str(path), "clv_columns": columns},
                           expect_success=False)

    failures = node_failures(result)
    assert list(failures) == ["stg_clv__transactions"], failures
    line = message_line(failures["stg_clv__transactions"], "Invalid value for var 'clv_columns'")
    source_columns = "its columns are: InvoiceNo, InvoiceDate, CustomerID, Quantity, UnitPrice"
    for text in [*expected, source_columns]:
        assert text in line, (text, line)
    assert "Binder Error" not in failures["stg_clv__transactions"]


def _only_failure(project, name: str, content: str, model: str, start: str) -> str:
    """Build on a transactions file ``name`` holding ``content``: ``model`` alone fails, and
    its message line that starts with ``start``."""
    path = project.workdir / name
    path.write_text(content)
    return _only_failure_at(project, path, model, start)


def _only_failure_at(project, path, model: str, start: str) -> str:
    result = project.build(vars={**VARS, "clv_transactions": str(path)},
                           expect_success=False)
    failures = node_failures(result)
    assert list(failures) == [model], failures
    return message_line(failures[model], start)


@pytest.mark.slow
def test_header_only_file_builds_clv_data_quality_and_stops_with_one_line(project):
    """A header-only CSV reads as text columns, to which `Quantity * UnitPrice` cannot bind:
    staging gives an empty relation, clv_data_quality shows 0 source rows, and the build stops
    at the cutoffs with one line."""
    line = _only_failure(project, "header_only.csv",
                         "InvoiceNo,InvoiceDate,CustomerID,Quantity,UnitPrice\n",
                         "int_clv__cutoffs", "No usable transactions")
    assert re.search(r"clv_transactions \('.*header_only\.csv'\) has no rows", line), line
    assert "clv_data_quality" in line
    quality = project.query("select reason, rows, source_rows from clv_data_quality")
    assert len(quality) == 5 and quality.rows.sum() == 0 and (quality.source_rows == 0).all()


@pytest.mark.slow
def test_an_empty_file_stops_with_one_line_naming_the_var(project):
    """A file of zero bytes has no header for the column checks to name: the build stops
    before any SQL runs, saying the file is empty."""
    line = _only_failure(project, "empty.csv", "", "stg_clv__transactions",
                         "Invalid value for var 'clv_transactions'")
    assert re.search(r"'.*empty\.csv' is empty: it has neither a header nor rows", line), line


@pytest.mark.slow
def test_a_parquet_directory_is_read_as_its_files(project):
    """A directory named like a Parquet file, as Spark writes one (orders.parquet/part-*),
    holding a partition folder: its files are the transactions, not "no file matches"."""
    directory = project.workdir / "orders.parquet"
    frame = _retail_frame()
    half = len(frame) // 2
    (directory / "part=1").mkdir(parents=True, exist_ok=True)
    frame.iloc[:half].to_parquet(directory / "part-00000.parquet", index=False)
    frame.iloc[half:].to_parquet(directory / "part=1" / "part-00001.parquet", index=False)
    project.build(vars={**VARS, "clv_transactions": str(directory)},
                  select="stg_clv__transactions")
    staged = project.query("select count(*) as n from stg_clv__transactions")
    assert staged.n.tolist() == [len(frame)]


@pytest.mark.slow
@pytest.mark.parametrize("var_name", ["clv_transactions", "clv_events"])
def test_a_missing_file_stops_with_one_line_naming_the_var(project, var_name):
    result = project.build(vars={**VARS, var_name: "no_such_dir/orders.csv"},
                           expect_success=False)

    failures = node_failures(result)
    assert failures, "the build stopped"
    # the staging model that reads the var (with clv_events missing, the sample's transactions
    # fail too, on VARS' retail column names: which of the two fails first is the threads')
    line = message_line(failures[f"stg_clv__{var_name.removeprefix('clv_')}"],
                        f"Invalid value for var '{var_name}'")
    assert ("no file matches 'no_such_dir/orders.csv' (a relative path is read from the "
            "directory dbt runs in)") in line, line


@pytest.mark.slow
@pytest.mark.parametrize(("var_name", "name"), [
    ("clv_transactions", "main.no_such_orders"), ("clv_transactions", "no_such_orders"),
    ("clv_transactions", "other_database.main.orders"), ("clv_customers", "crm.customer_table")])
def test_a_missing_relation_stops_with_one_line_naming_the_var(project, var_name, name):
    """A relation name the warehouse does not hold stops the build with one line naming the
    var, not DuckDB's "Table with name ... does not exist! Did you mean duckdb_tables?"."""
    path = project.workdir / "orders.csv"
    _retail_frame().to_csv(path, index=False)
    project.query(f"create or replace table orders as select * from read_csv('{path}')")
    result = project.build(vars={**VARS, "clv_transactions": "orders", var_name: name},
                           select="stg_clv__transactions stg_clv__customers",
                           expect_success=False)

    failures = node_failures(result)
    assert len(failures) == 1, failures
    line = message_line(next(iter(failures.values())), f"Invalid value for var '{var_name}'")
    assert f"no table or view '{name}' in the warehouse of target 'duckdb'" in line, line
    assert "(a file path must end in .csv, .tsv, .txt or .parquet)" in line, line


@pytest.mark.slow
def test_a_relation_named_in_another_case_reads(project):
    """DuckDB matches names without regard to case: the check before reading agrees."""
    path = project.workdir / "case.csv"
    _retail_frame().to_csv(path, index=False)
    project.query(f"create or replace table main.\"Retail Orders\" as "
                  f"select * from read_csv('{path}', all_varchar = true)")
    project.build(vars={**VARS, "clv_transactions": 'MAIN."retail orders"'},
                  select="stg_clv__transactions")
    assert project.query("select count(*) as n from stg_clv__transactions").n.tolist() == [11]


@pytest.mark.slow
def test_the_build_says_which_column_each_name_reads(project):
    """Ta-Feng's export has AMOUNT (a quantity) beside SALES_PRICE: a column named like a
    contract name is read as it without a mapping, and the build output says so."""
    path = project.workdir / "ta_feng.csv"
    pd.DataFrame({"TRANSACTION_DT": ["11/1/2000", "11/2/2000"], "CUSTOMER_ID": [1104905, 418683],
                  "AMOUNT": [1, 2], "SALES_PRICE": [35.0, 64.0]}).to_csv(path, index=False)
    project.build(vars={"clv_transactions": str(path), "clv_timestamp_format": "%m/%d/%Y",
                        "clv_columns": {"transacted_at": "TRANSACTION_DT"}},
                  select="stg_clv__transactions")
    log = (project.workdir / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert (f"clv: reading clv_transactions ('{path}'): transacted_at = \"TRANSACTION_DT\"; "
            "customer_id and amount from the columns of those names (map them in clv_columns if "
            "they hold something else)") in log


@pytest.mark.slow
def test_a_quoted_file_name_duckdb_reads_as_a_relation_is_not_stopped(project):
    """DuckDB reads a quoted file name as a table (`select * from "orders.json"`): the check
    for a missing relation leaves such a name to it."""
    path = project.workdir / "orders.json"
    _retail_frame().to_json(path, orient="records")
    project.build(vars={**VARS, "clv_transactions": f'"{path}"'}, select="stg_clv__transactions")
    assert project.query("select count(*) as n from stg_clv__transactions").n.tolist() == [11]


def _readme_export_recipes() -> dict[str, dict]:
    """The vars of each block under the README's "Common exports", by the export's name."""
    import yaml

    text = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    section = text.split("### Common exports\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^\*\*(.+?)\*\*.*?^```yaml\n(.*?)^```", section,
                        re.DOTALL | re.MULTILINE)
    return {name.split(" (")[0]: yaml.safe_load(block) for name, block in blocks}


# export -> (its header, rows in its shape, net spend per customer as read)
EXPORT_SHAPES = {
    "Stripe payments": (
        ["id", "Created date (UTC)", "Amount", "Amount Refunded", "Currency", "Status",
         "Customer ID", "Customer Email"],
        [["ch_1", "2024-01-02 10:00:00", "50.00", "0.00", "usd", "Paid", "cus_A", "a@x.com"],
         ["ch_2", "2024-01-05 11:00:00", "20.00", "0.00", "usd", "Failed", "cus_A", "a@x.com"],
         ["ch_3", "2024-01-06 12:00:00", "30.00", "30.00", "usd", "Refunded", "cus_B", "b@x.com"],
         ["ch_4", "2024-01-07 12:00:00", "40.00", "10.00", "usd", "Paid", "cus_B", "b@x.com"],
         ["ch_5", "2024-01-08 12:00:00", "15.00", "0.00", "usd", "Paid", "", "g@x.com"]],
        {"cus_A": 50.0, "cus_B": 30.0}),
    "Shopify orders": (
        ["Name", "Email", "Financial Status", "Created at", "Subtotal", "Total",
         "Refunded Amount", "Lineitem quantity", "Lineitem price"],
        [["#1001", "A@x.com", "paid", "2024-01-02 10:00:00 +0100", "90.00", "100.00", "0.00",
          "1", "60.00"],
         ["#1001", "A@x.com", "", "2024-01-02 10:00:00 +0100", "", "", "", "1", "30.00"],
         ["#1002", "a@x.com", "partially_refunded", "2024-02-01 09:00:00 +0100", "50.00",
          "55.00", "20.00", "2", "25.00"],
         ["#1003", "b@x.com", "voided", "2024-02-03 09:00:00 +0100", "70.00", "70.00", "0.00",
          "1", "70.00"],
         ["#1004", "", "paid", "2024-02-04 09:00:00 +0100", "25.00", "25.00", "0.00", "1",
          "25.00"]],
        {"a@x.com": 135.0, "b@x.com": 0.0}),
    "WooCommerce orders": (
        ["Order Number", "Order Date", "Order Status", "Customer User ID", "Order Total"],
        [["1001", "January 2, 2024", "completed", "7", "$1,234.50"],
         ["1002", "January 5, 2024", "cancelled", "7", "$20.00"],
         ["1003", "February 3, 2024", "processing", "0", "$99.00"],
         ["1004", "March 1, 2024", "completed", "9", "$45.10"]],
        {"7": 1234.5, "9": 45.1}),
    "dunnhumby \"The Complete Journey\"": (
        ["household_key", "BASKET_ID", "DAY", "PRODUCT_ID", "QUANTITY", "SALES_VALUE"],
        [["1", "26984851472", "1", "1004906", "1", "1.39"],
         ["1", "26984851472", "1", "1033142", "1", "1.39"],
         ["2", "26984851516", "15", "1004906", "2", "2.78"],
         ["1", "27000000000", "30", "1004906", "1", "1.00"]],
        {"1": 3.78, "2": 2.78}),
    "Ta-Feng grocery": (
        ["TRANSACTION_DT", "CUSTOMER_ID", "AGE_GROUP", "PIN_CODE", "PRODUCT_SUBCLASS",
         "PRODUCT_ID", "AMOUNT", "ASSET", "SALES_PRICE"],
        [["11/1/2000", "1104905", "45-49", "115", "110411", "4710199010372", "2", "24", "37"],
         ["11/1/2000", "418683", "45-49", "115", "120107", "4710857472535", "1", "48", "57"],
         ["11/2/2000", "1104905", "45-49", "115", "110411", "4710199010372", "1", "10", "17"]],
        {"1104905": 54.0, "418683": 57.0}),
}


def test_the_readme_has_a_recipe_for_each_export_shape():
    assert set(_readme_export_recipes()) == set(EXPORT_SHAPES)


@pytest.mark.slow
@pytest.mark.parametrize("export", EXPORT_SHAPES)
def test_a_readme_export_recipe_reads_each_customers_spend(project, export):
    """Each block of the README's "Common exports", as written, on rows in that export's shape:
    failed, voided and cancelled payments count nothing, refunds come off, guests are missing
    customers, and the spend of each customer is what the export says was paid."""
    import csv

    header, rows, spend = EXPORT_SHAPES[export]
    recipe = _readme_export_recipes()[export]
    path = project.workdir / Path(recipe["clv_transactions"]).name
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    project.build(vars={**recipe, "clv_transactions": str(path)},
                  select="stg_clv__transactions int_clv__transactions_checked")
    read = project.query("select customer_id, sum(amount) as spend "
                         "from int_clv__transactions_checked where row_problem is null "
                         "group by customer_id")
    assert dict(zip(read.customer_id, read.spend.round(6), strict=True)) == spend


def _build_with_events_and_signups(project, event_times: list[str],
                                   signups: list[str]) -> object:
    """The staging of the invoices with three customers' events at ``event_times`` and
    sign-ups on ``signups`` (customers 17850, 13047, 14527)."""
    transactions = project.workdir / "invoices.csv"
    _retail_frame().to_csv(transactions, index=False)
    ids = ["17850", "13047", "14527"]
    events, customers = project.workdir / "events.csv", project.workdir / "customers.csv"
    pd.DataFrame({"customer_id": ids, "event_at": event_times,
                  "event_type": ["page_view"] * 3}).to_csv(events, index=False)
    pd.DataFrame({"customer_id": ids, "signup_date": signups, "country": ["UK"] * 3,
                  "age_band": ["25-34"] * 3}).to_csv(customers, index=False)
    return project.build(vars={**VARS, "clv_transactions": str(transactions),
                               "clv_events": str(events), "clv_customers": str(customers)},
                         select="stg_clv__events stg_clv__customers")


@pytest.mark.slow
def test_events_and_signups_written_like_the_transactions_are_read(project):
    """An export writes its events and sign-up dates as it writes its transactions
    (M/D/YYYY H:MM): clv_timestamp_format reads them too, a bare date in the format's date
    part (M/D/YYYY) too, and ISO text is still read."""
    _build_with_events_and_signups(
        project, ["6/20/2011 9:05", "6/21/2011 18:30", "2011-06-22 10:00:00"],
        ["11/3/2010 12:00", "2010-11-04", "11/5/2010"])

    staged_events = project.query("select customer_id, cast(event_at as varchar) as at "
                                  "from stg_clv__events order by customer_id")
    assert staged_events.values.tolist() == [["13047", "2011-06-21 18:30:00"],
                                             ["14527", "2011-06-22 10:00:00"],
                                             ["17850", "2011-06-20 09:05:00"]]
    signups = project.query("select customer_id, cast(signup_date as varchar) as day "
                            "from stg_clv__customers order by customer_id")
    assert signups.values.tolist() == [["13047", "2010-11-04"], ["14527", "2010-11-05"],
                                       ["17850", "2010-11-03"]]


@pytest.mark.slow
def test_attributes_and_events_may_lack_their_optional_columns(project):
    """A customers file with ids, sign-up dates and an undeclared attribute, and events without
    a type: the missing columns are null (no country, no add_to_cart), instead of a stop, and the
    log names the attribute no var declares."""
    transactions = project.workdir / "invoices.csv"
    _retail_frame().to_csv(transactions, index=False)
    customers, events = project.workdir / "signups_only.csv", project.workdir / "untyped.csv"
    pd.DataFrame({"customer_id": ["17850", "13047"], "signup_date": ["2010-11-03", "2010-11-04"],
                  "Loyalty_Score": [3, 5]}).to_csv(customers, index=False)
    pd.DataFrame({"customer_id": ["17850"], "event_at": ["2011-06-20 09:05:00"]}).to_csv(
        events, index=False)
    project.build(vars={**VARS, "clv_transactions": str(transactions),
                        "clv_events": str(events), "clv_customers": str(customers)},
                  select="stg_clv__events stg_clv__customers")
    staged = project.query("select customer_id, cast(signup_date as varchar) as day, country, "
                           "age_band from stg_clv__customers order by customer_id")
    assert staged.astype(object).where(staged.notna(), None).values.tolist() == [
        ["13047", "2010-11-04", None, None], ["17850", "2010-11-03", None, None]]
    event = project.query("select customer_id, event_type from stg_clv__events")
    assert event.customer_id.tolist() == ["17850"] and event.event_type.isna().all()
    # and the build says which it read and which are null
    log = (project.workdir / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert (f"clv: reading clv_customers ('{customers}'): customer_id, signup_date; no column "
            "country or age_band, so they are null on every row (a model that renames a column "
            "can supply it); not read: Loyalty_Score (name a numeric one in clv_extra_features "
            "to make it a model input)") in log
    assert (f"clv: reading clv_events ('{events}'): customer_id, event_at; no column event_type, "
            "so it is null on every row") in log


@pytest.mark.slow
def test_an_input_without_its_required_columns_names_them_all(project):
    """Events exported with their own names for both required columns: one line names both
    (and the columns the file has), not one per build."""
    transactions = project.workdir / "invoices.csv"
    _retail_frame().to_csv(transactions, index=False)
    events = project.workdir / "clicks.csv"
    pd.DataFrame({"user": ["17850"], "ts": ["2011-06-20 09:05:00"]}).to_csv(events, index=False)
    result = project.build(vars={**VARS, "clv_transactions": str(transactions),
                                 "clv_events": str(events)},
                           select="stg_clv__events", expect_success=False)
    line = message_line(node_failures(result)["stg_clv__events"],
                        "Invalid value for var 'clv_events'")
    assert (f"'{events}' has no columns 'customer_id' and 'event_at' (expected customer_id, "
            "event_at; optional: event_type); its columns are: user, ts (clv_columns maps the "
            "transactions' columns only: name a view or model that renames these instead)"
            ) in line, line


@pytest.mark.slow
def test_attributes_without_their_id_and_an_extra_feature_name_both(project):
    """A customers file keyed otherwise and without a column clv_extra_features names: one line
    names both, not one per build."""
    transactions = project.workdir / "invoices.csv"
    _retail_frame().to_csv(transactions, index=False)
    customers = project.workdir / "crm.csv"
    pd.DataFrame({"id": ["17850"], "tier": [2]}).to_csv(customers, index=False)
    result = project.build(vars={**VARS, "clv_transactions": str(transactions),
                                 "clv_customers": str(customers),
                                 "clv_extra_features": ["points"]},
                           select="stg_clv__customers", expect_success=False)
    line = message_line(node_failures(result)["stg_clv__customers"],
                         "Invalid value for var 'clv_customers'")
    assert (f"'{customers}' has no column 'customer_id' (expected customer_id; optional: "
            "signup_date, country, age_band); clv_extra_features also names 'points', which it "
            "does not have; its columns are: id, tier (clv_columns maps the transactions' "
            "columns only: name a view or model that renames these instead)") in line, line


@pytest.mark.slow
def test_event_times_and_signups_no_format_reads_warn(project):
    """Events written another way than the transactions (12-hour clock) are read by no
    format: each such row warns, instead of the events counting in no feature without a word;
    a blank time and a blank sign-up are missing values, not unreadable ones."""
    result = _build_with_events_and_signups(
        project, ["06/20/2011 09:05 AM", "06/21/2011 06:30 PM", " "],
        ["Nov 3rd 2010", "2010-11-04", ""])
    warned = {r.node.name: (str(r.status), r.failures) for r in result.result
              if r.node.name.endswith("_are_read")}
    assert warned == {"clv_event_times_are_read": ("warn", 2),
                      "clv_signup_dates_are_read": ("warn", 1)}


@pytest.mark.slow
def test_an_as_of_date_further_past_the_data_than_it_was_ever_quiet_warns(project):
    """The invoices' longest quiet spell is 55 days (4 January to 28 February): an as-of date 55
    days after the last invoice passes, one 239 days after it warns (a source that stopped
    loading would read as every customer going quiet)."""
    path = project.workdir / "invoices_stale.csv"
    _retail_frame().to_csv(path, index=False)

    def status(as_of: str) -> str:
        result = project.build(vars={**VARS, "clv_transactions": str(path),
                                     "clv_as_of_date": as_of}, select="+int_clv__as_of_date")
        return {r.node.name: str(r.status) for r in result.result}[
            "clv_as_of_date_follows_the_data"]

    assert status("2011-06-30") == "pass"
    assert project.query("select days_since_last_transaction as d, longest_quiet_days as q "
                         "from int_clv__as_of_date").values.tolist() == [[55, 55]]
    assert status("2011-12-31") == "warn"


@pytest.mark.slow
def test_a_month_without_a_usable_row_warns_and_says_where_it_ends(project):
    """Invoices every ten days pass; with five weeks of them lost (a load that dropped a month,
    or a seasonal closure) the history holds 40 days without a usable row, and dbt warns."""
    path = project.workdir / "invoices_gap.csv"
    days = pd.date_range("2011-01-01", "2011-06-30", freq="10D")

    def status(kept) -> str:
        invoices = [(f"5{i:05d}", f"{day.month}/{day.day}/{day.year} 10:00", 17850 + i % 3, 1,
                     5.0) for i, day in enumerate(kept)]
        _retail_frame(invoices).to_csv(path, index=False)
        result = project.build(vars={**VARS, "clv_transactions": str(path),
                                     "clv_as_of_date": "2011-06-30"},
                               select="+int_clv__as_of_date")
        return {r.node.name: str(r.status) for r in result.result}[
            "clv_transactions_have_no_month_long_gap"]

    assert status(days) == "pass"
    assert status([day for day in days if not "2011-02-01" <= str(day.date()) <= "2011-03-05"]
                  ) == "warn"
    assert project.query("select longest_quiet_days as q, cast(longest_quiet_ends as varchar) "
                         "as ends from int_clv__as_of_date").values.tolist() == [
        [40, "2011-03-12"]]


@pytest.mark.slow
def test_a_last_day_apart_from_the_data_warns(project):
    """An invoice whose year is mistyped (2013 for 2011) is the last usable day before today,
    so with clv_as_of_date left out it is the as-of date, and every customer would read as
    quiet for two years: the spell before it is longer than a week and than any before it
    (55 days), and dbt warns. The invoices alone pass."""
    path = project.workdir / "invoices_typo.csv"

    def status(invoices) -> str:
        _retail_frame(invoices).to_csv(path, index=False)
        result = project.build(vars={**VARS, "clv_transactions": str(path),
                                     "clv_as_of_date": ""}, select="+int_clv__as_of_date")
        return {r.node.name: str(r.status) for r in result.result}[
            "clv_last_transaction_day_follows_the_data"]

    assert status(INVOICES) == "pass"
    assert status([*INVOICES, ("581999", "6/14/2013 9:00", 17850, 1, 2.0)]) == "warn"
    assert project.query("select cast(as_of_date as varchar) as day, longest_earlier_quiet_days "
                         "as q from int_clv__as_of_date").values.tolist() == [["2013-06-14", 55]]


@pytest.mark.slow
def test_the_as_of_date_is_the_last_day_with_a_purchase(project):
    """An export that lists orders cancelled weeks after the last sale (read as 0, as the
    README's recipes read a cancelled order) and a late refund: with clv_as_of_date left out,
    the as-of date is the last purchase day, not the last cancellation, so customers do not
    read as quiet for weeks the business did not sell in; the later rows count as dated
    after the as-of date. Without a single purchase every usable day counts."""
    path = project.workdir / "invoices_cancelled_tail.csv"
    tail = [("C560000", "5/20/2011 9:00", 13047, -1, 12.75),
            ("560001", "6/3/2011 9:00", 17850, 0, 4.25),
            ("560002", "6/24/2011 9:00", 14527, 5, 0.0)]

    def built(invoices) -> list:
        _retail_frame(invoices).to_csv(path, index=False)
        project.build(vars={**VARS, "clv_transactions": str(path), "clv_as_of_date": ""},
                      select="+int_clv__as_of_date +clv_data_quality")
        return project.query("select cast(as_of_date as varchar), cast(last_transaction_date "
                             "as varchar), cast(first_transaction_date as varchar) "
                             "from int_clv__as_of_date").values.tolist()[0]

    assert built([*INVOICES, *tail]) == ["2011-05-06", "2011-05-06", "2010-12-01"]
    later = project.query("select rows from clv_data_quality "
                          "where reason = 'after_as_of_date'").values.tolist()
    assert later == [[3]]
    refunds = [(f"C{i}", day, 17850, -1, 2.0) for i, day in enumerate(
        ["1/4/2011 10:00", "2/28/2011 15:15", "3/1/2011 9:00"])]
    assert built(refunds) == ["2011-03-01", "2011-03-01", "2011-01-04"]


@pytest.mark.slow
def test_sales_written_as_negative_amounts_warn(project):
    """An export with the opposite sign convention (sales negative, refunds positive) would be
    read with its refunds as the purchases: dbt warns when refunds outnumber purchases."""
    path = project.workdir / "invoices_negated.csv"

    def status(invoices) -> str:
        _retail_frame(invoices).to_csv(path, index=False)
        result = project.build(vars={**VARS, "clv_transactions": str(path)})
        return {r.node.name: str(r.status) for r in result.result}[
            "clv_amounts_are_mostly_purchases"]

    assert status(INVOICES) == "pass"
    assert status([(number, at, customer, -quantity, price)
                   for number, at, customer, quantity, price in INVOICES]) == "warn"


def _number_regex() -> str:
    """clv_number_regex (macros/clv_to_number.sql), the text PostgreSQL and Spark read as a
    number, rendered with plain Jinja (its ``return`` as the identity)."""
    import jinja2

    source = (PROJECT_DIR / "macros" / "clv_to_number.sql").read_text()
    template = jinja2.Environment().from_string(source + "{{ clv_number_regex() }}")
    return template.render(**{"return": lambda value: value}).strip()


@pytest.mark.slow
def test_duckdb_reads_as_a_number_exactly_the_text_the_other_engines_read(project):
    """An amount cell is a number on DuckDB exactly when it is one on PostgreSQL and Spark (the
    text matches clv_number_regex): DuckDB's own cast would also read '+-1' as -1."""
    cells = ["12.5", " -3 ", "+4", "+-1", "+-0", "+-1e3", "+-inf", "+-nan", "-+1", "--1", "1_000",
             "1__0", "_1", "1.", ".5", "-.5e-2", "1e", "e5", "0x10", "1,5", "1.5d", "nan",
             "-Infinity", "inf", "+ 1", "\t7\t", "", "-"]
    rows = [(f"t{i}", cell) for i, cell in enumerate(cells)]
    path = project.workdir / "amount_texts.csv"
    pd.DataFrame({"transaction_id": [r[0] for r in rows], "customer_id": "C1",
                  "transacted_at": "2024-03-01", "amount": [r[1] for r in rows]}
                 ).to_csv(path, index=False)
    project.build(vars={**VARS, "clv_columns": {}, "clv_transactions": str(path),
                        "clv_timestamp_format": "%Y-%m-%d"}, select="stg_clv__transactions")

    staged = project.query("select transaction_id, amount is not null as is_number "
                           "from stg_clv__transactions")
    read = dict(zip(staged.transaction_id, staged.is_number, strict=True))
    pattern = re.compile(_number_regex())
    expected = {i: bool(pattern.fullmatch(cell.strip(" \t"))) for i, cell in rows}
    assert read == expected
    assert not read["t3"] and read["t2"], "'+-1' is not a number, '+4' is"


@pytest.mark.slow
def test_a_format_reads_the_text_it_describes_and_nothing_else(project):
    """With clv_timestamp_format, DuckDB reads what PostgreSQL and Spark read: the trimmed text
    when it has the format's shape, runs of spaces as one; try_strptime alone would read
    `2024031` with %Y%m%d as March 1."""
    rows = [("t1", " 3/1/2024 8:26 "), ("t2", "3/1/2024   8:26"), ("t3", "3/1/2024 8:26 x"),
            ("t4", "3/1/2024T8:26"), ("t5", "03/01/2024 08:26"), ("t6", "2024-03-02T09:15:00Z"),
            ("t7", "2024-03-02"), ("t8", "3/3/2024")]
    path = project.workdir / "formats.csv"
    pd.DataFrame({"transaction_id": [r[0] for r in rows], "customer_id": "C1",
                  "transacted_at": [r[1] for r in rows], "amount": 10.0}).to_csv(path,
                                                                               index=False)
    project.build(vars={**VARS, "clv_columns": {}, "clv_transactions": str(path)},
                  select="stg_clv__transactions")
    def staged() -> list[list]:
        table = project.query("select transaction_id, cast(transacted_at as varchar) as at "
                              "from stg_clv__transactions order by transaction_id")
        return table.astype(object).where(table.notna(), None).values.tolist()

    # and, as for the events and sign-ups, the format's date part alone and ISO text (files of
    # an old export beside new ones)
    assert staged() == [["t1", "2024-03-01 08:26:00"], ["t2", "2024-03-01 08:26:00"],
                        ["t3", None], ["t4", None], ["t5", "2024-03-01 08:26:00"],
                        ["t6", "2024-03-02 09:15:00"], ["t7", "2024-03-02 00:00:00"],
                        ["t8", "2024-03-03 00:00:00"]]

    compact = project.workdir / "compact.csv"
    pd.DataFrame({"transaction_id": ["u1", "u2"], "customer_id": "C1",
                  "transacted_at": ["20240301", "2024031"], "amount": 10.0}).to_csv(
        compact, index=False)
    project.build(vars={**VARS, "clv_columns": {}, "clv_transactions": str(compact),
                        "clv_timestamp_format": "%Y%m%d"}, select="stg_clv__transactions")
    assert staged() == [["u1", "2024-03-01 00:00:00"], ["u2", None]]


@pytest.mark.slow
def test_a_text_operand_of_the_amount_expression_counts_bad_cells(project):
    """One `n/a` in Quantity makes a CSV reader type the column as text, to which
    `Quantity * UnitPrice` would not bind: the operand is read as a number, and the rows whose
    cell is not one are invalid_amount, counted with their raw text, not a failed build."""
    frame = _retail_frame().astype({"Quantity": object})
    frame.loc[[2, 6], "Quantity"] = ["n/a", "12 pcs"]
    path = project.workdir / "text_quantity.csv"
    frame.to_csv(path, index=False)

    project.build(vars={**VARS, "clv_transactions": str(path)}, select="+clv_data_quality")

    quality = project.query("select reason, rows, example_value from clv_data_quality "
                            "where reason = 'invalid_amount'")
    assert quality.rows[0] == 2 and quality.example_value[0] in {
        "Quantity=n/a UnitPrice=4.8533", "Quantity=12 pcs UnitPrice=2.5"}
    staged = project.query("select customer_id, sum(amount) as spend from stg_clv__transactions "
                           "where amount is not null and customer_id is not null group by 1")
    usable = [row for i, row in enumerate(INVOICES) if i not in (2, 6)]
    expected = _expected_net_spend(usable, "2099-01-01")
    assert dict(zip(staged.customer_id, staged.spend, strict=True)) == pytest.approx(expected)


@pytest.mark.slow
def test_an_amount_expression_with_a_literal_reads_its_arithmetic_operands_as_numbers(project):
    """Unsigned amounts with a Sale/Refund column: `case when Type = 'Refund' then -(Amount) else
    (Amount) end` over a text Amount (one `n/a`) reads Amount, an operand of the minus, as a
    number, and Type, compared with text, as text: the bad cell is an invalid_amount with the
    raw texts, not a failed build. A cleaning expression's example is the text the row held."""
    frame = pd.DataFrame({"InvoiceNo": ["1", "2", "3", "4"],
                          "InvoiceDate": ["1/4/2011 10:00"] * 4,
                          "CustomerID": ["17850", "13047", "17850", "13047"],
                          "Type": ["Sale", "Refund", "Sale", "Sale"],
                          "Amount": ["10.5", "4", "n/a", "1,038.75"]})
    path = project.workdir / "typed_amounts.csv"
    frame.to_csv(path, index=False)
    signed = {**RETAIL_COLUMNS,
              "amount": "case when Type = 'Refund' then -(Amount) else (Amount) end"}
    project.build(vars={**VARS, "clv_columns": signed, "clv_transactions": str(path)},
                  select="+clv_data_quality")
    staged = project.query("select transaction_id, amount from stg_clv__transactions "
                           "order by transaction_id")
    assert staged.amount.tolist()[:2] == [10.5, -4.0] and staged.amount[2:].isna().all()
    quality = project.query("select rows, example_value from clv_data_quality "
                            "where reason = 'invalid_amount'")
    assert quality.rows[0] == 2
    assert quality.example_value[0] in {"Type=Sale Amount=n/a", "Type=Sale Amount=1,038.75"}

    cleaned = {**RETAIL_COLUMNS, "amount": "replace(Amount, ',', '')"}
    project.build(vars={**VARS, "clv_columns": cleaned, "clv_transactions": str(path)},
                  select="+clv_data_quality")
    staged = project.query("select amount from stg_clv__transactions order by transaction_id")
    assert staged.amount[[0, 1, 3]].tolist() == [10.5, 4.0, 1038.75]
    quality = project.query("select rows, example_value from clv_data_quality "
                            "where reason = 'invalid_amount'")
    assert quality.values.tolist() == [[1, "Amount=n/a"]]


@pytest.mark.slow
def test_a_text_column_inside_a_function_of_the_amount_is_read_as_a_number(project):
    """`coalesce(Quantity, 0) * UnitPrice` over a text Quantity: the column is read as a number
    inside the function too, so the expression binds, and the user's coalesce decides what a
    cell that is not a number means (here a zero-amount row: activity, no spend)."""
    frame = _retail_frame().astype({"Quantity": object})
    frame.loc[[2, 6], "Quantity"] = ["n/a", "12 pcs"]
    path = project.workdir / "text_quantity_coalesce.csv"
    frame.to_csv(path, index=False)
    columns = {**RETAIL_COLUMNS, "amount": "coalesce(Quantity, 0) * UnitPrice"}

    project.build(vars={**VARS, "clv_columns": columns, "clv_transactions": str(path)},
                  select="+clv_data_quality")

    quality = project.query("select rows from clv_data_quality where reason = 'invalid_amount'")
    assert quality.rows[0] == 0
    staged = project.query("select customer_id, sum(amount) as spend from stg_clv__transactions "
                           "where customer_id is not null group by 1")
    usable = [row if i not in (2, 6) else (*row[:3], 0, row[4]) for i, row in enumerate(INVOICES)]
    expected = _expected_net_spend(usable, "2099-01-01")
    assert dict(zip(staged.customer_id, staged.spend, strict=True)) == pytest.approx(expected)


@pytest.mark.slow
def test_a_column_name_with_a_space_maps_as_written(project):
    """Online Retail II's header ("Customer ID", "Unit Price"): clv_columns names the columns as
    the file spells them, without SQL quoting, in a plain mapping and inside an expression."""
    frame = _retail_frame().rename(columns={"CustomerID": "Customer ID",
                                            "UnitPrice": "Unit Price"})
    path = project.workdir / "online_retail_ii.csv"
    frame.to_csv(path, index=False)
    columns = {**RETAIL_COLUMNS, "customer_id": "customer id",
               "amount": 'Quantity * "Unit Price"'}

    project.build(vars={**VARS, "clv_columns": columns, "clv_transactions": str(path)},
                  select="+clv_data_quality")

    staged = project.query("select customer_id, sum(amount) as spend from stg_clv__transactions "
                           "where customer_id is not null group by 1")
    expected = _expected_net_spend(INVOICES, "2099-01-01")
    assert dict(zip(staged.customer_id, staged.spend, strict=True)) == pytest.approx(expected)


@pytest.mark.slow
def test_day_and_month_swapped_in_the_format_stop_the_build_naming_the_format(project):
    """%d/%m on the invoices' month-first text reads 12/1/2010 as 12 January and leaves
    2/28/2011 unread: the build stops at the as-of date, naming the format that fits, rather
    than go on with dates read wrong."""
    path = project.workdir / "month_first.csv"
    _retail_frame().to_csv(path, index=False)
    result = project.build(vars={**VARS, "clv_transactions": str(path),
                                 "clv_timestamp_format": "%d/%m/%Y %H:%M"},
                           select="+int_clv__as_of_date", expect_success=False)
    failures = node_failures(result)
    assert list(failures) == ["int_clv__as_of_date"], failures
    line = message_line(failures["int_clv__as_of_date"],
                         "Invalid value for var 'clv_timestamp_format'")
    assert ("2 of the 2 rows (of 11) that clv_timestamp_format '%d/%m/%Y %H:%M' cannot read are "
            "read by '%m/%d/%Y %H:%M'") in line, line
    assert line.endswith("set clv_timestamp_format to '%m/%d/%Y %H:%M'."), line


@pytest.mark.slow
def test_a_few_day_first_rows_among_month_first_ones_warn(project):
    """One row of 12 written day first (28/2/2011) under the right format: excluded as
    invalid_timestamp, with a warning, and the build goes on."""
    invoices = [*INVOICES, ("545001", "28/2/2011 15:15", 17850, 1, 1.0)]
    path = project.workdir / "mixed_order.csv"
    _retail_frame(invoices).to_csv(path, index=False)
    project.build(vars={**VARS, "clv_transactions": str(path)}, select="+int_clv__as_of_date")
    log = (project.workdir / "logs" / "dbt.log").read_text()
    assert ("1 of the 1 rows (of 12) that clv_timestamp_format '%m/%d/%Y %H:%M' cannot read are "
            "read by '%d/%m/%Y %H:%M': the source may write dates in both orders") in log



def _spelled_frame() -> pd.DataFrame:
    """Invoices whose ids and categories have letters beyond ASCII, as a European shop's do."""
    ids = ["Müller-01", "Ørsted", "Ærø 7", "17850"]
    return pd.DataFrame({
        "InvoiceNo": [f"7{i:05d}" for i in range(8)],
        "InvoiceDate": [f"2/{i + 1}/2011 10:00" for i in range(8)],
        "CustomerID": ids * 2, "Quantity": 3, "UnitPrice": 2.5,
        "Category": ["Électronique", "Café", "Jouets", "Maison"] * 2,
    })


@pytest.mark.slow
@pytest.mark.parametrize(("encoding", "separator", "suffix"), [
    ("latin-1", ",", "csv"),     # older exports
    ("utf-16", "\t", "txt"),     # Excel's "Unicode text": little-endian with a byte-order mark
    ("utf-8-sig", ",", "csv"),   # UTF-8 with a byte-order mark
])
def test_a_csv_in_another_encoding_is_read_as_written(project, encoding, separator, suffix):
    """With clv_csv_encoding auto (the default) the file's bytes choose the encoding: ids and
    categories come out as written, not as a reader error or mojibake."""
    frame = _spelled_frame()
    path = project.workdir / f"spelled_{encoding}.{suffix}"
    frame.to_csv(path, index=False, sep=separator, encoding=encoding)

    project.build(vars={**VARS, "clv_transactions": str(path),
                        "clv_columns": {**RETAIL_COLUMNS, "product_category": "Category"}},
                  select="stg_clv__transactions")

    staged = project.query(
        "select customer_id, product_category, amount from stg_clv__transactions")
    assert sorted(staged.customer_id) == sorted(frame.CustomerID)
    assert sorted(staged.product_category) == sorted(frame.Category)
    assert staged.amount.tolist() == [7.5] * len(frame)


@pytest.mark.slow
def test_files_of_one_input_in_two_encodings_stop_with_one_line(project):
    """A glob over a Latin-1 file and a UTF-8 one with letters beyond ASCII cannot be read in one
    encoding: one line names both and the var that chooses; with the var set, it is read so."""
    directory = project.workdir / "two_encodings"
    directory.mkdir(exist_ok=True)
    frame = _spelled_frame()
    frame.iloc[:4].to_csv(directory / "a.csv", index=False, encoding="latin-1")
    frame.iloc[4:].to_csv(directory / "b.csv", index=False, encoding="utf-8")
    glob = str(directory / "*.csv")
    columns = {**RETAIL_COLUMNS, "product_category": "Category"}

    result = project.build(vars={**VARS, "clv_transactions": glob, "clv_columns": columns},
                           select="stg_clv__transactions", expect_success=False)
    line = message_line(node_failures(result)["stg_clv__transactions"],
                         "Invalid value for var 'clv_transactions'")
    assert re.search(r"differ in encoding: '.*a\.csv' is not UTF-8 and '.*b\.csv' is UTF-8", line)
    assert "set clv_csv_encoding" in line

    project.build(vars={**VARS, "clv_transactions": str(directory / "a.csv"),
                        "clv_columns": columns, "clv_csv_encoding": "ISO-8859-1"},
                  select="stg_clv__transactions")
    staged = project.query("select customer_id from stg_clv__transactions")
    assert sorted(staged.customer_id) == sorted(frame.CustomerID.iloc[:4])



@pytest.mark.slow
def test_a_windows_1252_file_stops_with_one_line_saying_how_to_convert_it(project):
    """Windows-1252 (a CSV saved by Excel on Windows) writes the euro sign and curly quotes as
    bytes 0x80-0x9F, which DuckDB's Latin-1 reader refuses: one line naming the var and the file
    says what it most likely is and how to convert it, instead of the reader's "File is not
    latin-1 encoded"."""
    frame = _spelled_frame().assign(Category="Manager\u2019s chair, 20 \u20ac")
    path = project.workdir / "windows_1252.csv"
    frame.to_csv(path, index=False, encoding="cp1252")
    assert b"\x92" in path.read_bytes() and b"\x80" in path.read_bytes()

    result = project.build(vars={**VARS, "clv_transactions": str(path)},
                           select="stg_clv__transactions", expect_success=False)
    line = message_line(node_failures(result)["stg_clv__transactions"],
                         "Invalid value for var 'clv_transactions'")
    assert "is neither UTF-8 nor Latin-1: its bytes 0x80-0x9F are most likely Windows-1252" in line
    assert f"iconv -f cp1252 -t utf-8 '{path}'" in line


@pytest.mark.slow
def test_attributes_whose_ids_match_no_scored_customer_warn(project):
    """Ids written one way in the transactions and another in the attributes (C-17850 against
    17850) would leave every attribute null without a word: the build warns, naming an
    unmatched id of each side; with the ids written alike it does not. Float ids with one
    `n/a` cell make a text column (17850.0), which reads as the attributes' 17850."""
    frame = _retail_frame().astype({"CustomerID": object})
    floats = frame.CustomerID.dropna()
    frame.loc[frame.CustomerID.isna(), "CustomerID"] = "n/a"
    transactions = project.workdir / "text_ids.csv"
    customers = project.workdir / "integer_ids.csv"

    def warned(ids: list[str], written: list[str]):
        frame.loc[floats.index, "CustomerID"] = written
        frame.to_csv(transactions, index=False)
        pd.DataFrame({"customer_id": ids, "country": "France"}).to_csv(customers, index=False)
        result = project.build(vars={**VARS, "clv_transactions": str(transactions),
                                     "clv_customers": str(customers)},
                               select=f"{FEATURE_MODELS} clv_customers_match_the_transactions")
        return {str(r.status) for r in result.result
                if r.node.name == "clv_customers_match_the_transactions"}

    integers = ["17850", "13047", "14527"]
    assert warned(integers, [f"{c:.1f}" for c in floats]) == {"pass"}
    assert warned(integers, [f"C-{c:.0f}" for c in floats]) == {"warn"}
    row = project.query("select * from (" + _compiled_test(project) + ")")
    assert row.to_dict("records") == [{
        "customers_scored": 3, "customers_with_attributes": 0, "attribute_customers": 3,
        "unmatched_scored_id": "C-13047", "unmatched_attribute_id": "13047"}]
    assert warned(["C-17850", "C-13047", "C-14527", "n/a"],
                  [f"C-{c:.0f}" for c in floats]) == {"pass"}


def _compiled_test(project) -> str:
    """The compiled SQL of the test clv_customers_match_the_transactions, as the last run wrote
    it."""
    compiled = next((project.workdir / "target" / "compiled").rglob(
        "clv_customers_match_the_transactions.sql"))
    return compiled.read_text()


def _column_map_failure(project, name: str, lines: list[str]) -> str:
    """Build on a file ``name`` of ``lines`` with the contract's column names: the line of the
    staging model's error about clv_columns."""
    path = project.workdir / name
    path.write_text("\n".join(lines) + "\n")
    result = project.build(vars={"clv_transactions": str(path), "clv_columns": {}},
                           expect_success=False)
    return message_line(node_failures(result)["stg_clv__transactions"],
                         "Invalid value for var 'clv_columns'")


@pytest.mark.slow
def test_a_file_separated_by_spaces_is_named_as_read_in_one_column(project):
    """CDNOW's master file aligns its fields with spaces, which DuckDB's reader does not take
    for a separator: the whole header line is one column. The line says so, instead of "did
    you mean" that line."""
    rows = ["customer_id  date      number_of_cds  dollar_value",
            "00001        19970101  1              11.77",
            "00002        19970112  1              12.00"]
    line = _column_map_failure(project, "cdnow_master.csv", rows)
    assert "it reads as one column, 'customer_id  date      number_of_cds  dollar_value'" in line
    assert "not separated by a comma, semicolon, tab or '|'" in line
    assert "did you mean" not in line


@pytest.mark.slow
def test_a_row_with_one_field_too_many_is_named_as_the_cause_of_one_column(project):
    """One line of 2,000 with an unquoted comma in its description: DuckDB's reader then takes
    every line whole, one column named by the header. The line says that rows do not line up
    with the header, not that the file has no separator."""
    rows = ["customer_id,transacted_at,amount,description",
            *(f"c{i % 50},2023-01-{i % 28 + 1:02d},{i % 90 + 1}.50,item {i}" for i in range(2000))]
    rows[1000] = "c7,2023-01-05,10.00,mug, blue"
    line = _column_map_failure(project, "one_field_too_many.csv", rows)
    assert ("it reads as one column, 'customer_id,transacted_at,amount,description'. Its header "
            "separates fields with ','") in line
    assert "some rows have more or fewer fields than the header" in line


@pytest.mark.slow
def test_a_decimal_comma_is_read_with_clv_decimal_separator(project):
    """A German export: `;` between fields, dots between thousands and a decimal comma, in the
    amount, in the operands of an expression and in an attribute of clv_extra_features. With
    clv_decimal_separator ',' each reads as written ('1.250' is 1250, which the reader's own
    typing would make 1.25); a cell that is no number stays an invalid_amount."""
    german = ["1.038,75", "12,50", "1.250", "-3,00", "n/a"]
    transactions = project.workdir / "umsatz.csv"
    pd.DataFrame({"Kunde": ["K1", "K2", "K1", "K3", "K2"],
                  "Datum": [f"2011-0{m}-15" for m in range(1, 6)],
                  "Umsatz": german, "Menge": ["2", "1", "3", "1", "1"],
                  "Preis": ["3,50", "1.250", "2", "n/a", "0,99"],
                  "Brutto": [f"\u20ac {amount}" for amount in german]}).to_csv(
        transactions, index=False, sep=";")
    customers = project.workdir / "kunden.csv"
    pd.DataFrame({"customer_id": ["K1", "K2", "K3"], "loyalty": ["3,5", "1.000,25", "x"]}).to_csv(
        customers, index=False, sep=";")
    columns = {"customer_id": "Kunde", "transacted_at": "Datum", "amount": "Umsatz"}
    base = {**VARS, "clv_transactions": str(transactions), "clv_timestamp_format": "",
            "clv_decimal_separator": ","}

    project.build(vars={**base, "clv_columns": columns, "clv_customers": str(customers),
                        "clv_extra_features": ["loyalty"]},
                  select="stg_clv__transactions stg_clv__customers")
    staged = project.query("select amount from stg_clv__transactions")
    assert staged.amount.tolist()[:4] == [1038.75, 12.5, 1250.0, -3.0]
    assert pd.isna(staged.amount.tolist()[4])
    loyalty = project.query("select customer_id, loyalty from stg_clv__customers "
                            "order by customer_id")
    assert loyalty.loyalty.tolist()[:2] == [3.5, 1000.25] and pd.isna(loyalty.loyalty[2])

    project.build(vars={**base, "clv_columns": {**columns, "amount": "Menge * Preis"}},
                  select="stg_clv__transactions")
    staged = project.query("select amount from stg_clv__transactions")
    assert staged.amount.tolist()[:3] == [7.0, 1250.0, 6.0]
    assert pd.isna(staged.amount[3])

    # an expression whose result is still text: read with the decimal comma too
    project.build(vars={**base, "clv_columns": {**columns,
                                                "amount": "replace(Brutto, '\u20ac', '')"}},
                  select="stg_clv__transactions")
    staged = project.query("select amount from stg_clv__transactions")
    assert staged.amount.tolist()[:4] == [1038.75, 12.5, 1250.0, -3.0]


@pytest.mark.slow
def test_a_quote_in_a_column_name_and_a_compressed_file_read_as_written(project):
    """The sniffer writes column names unescaped, so a name with a quote (Customer's note)
    would break the sniffed read; such a file, and a compressed one (which may be empty), are
    read as DuckDB's reader reads them."""
    frame = _retail_frame().assign(**{"Customer's note": "ok"})
    path = project.workdir / "quoted_name.csv"
    frame.to_csv(path, index=False)
    project.build(vars={**VARS, "clv_transactions": str(path)}, select="stg_clv__transactions")
    assert project.query("select count(*) as n from stg_clv__transactions").n.tolist() == [
        len(frame)]

    empty = project.workdir / "empty.csv.gz"
    with gzip.open(empty, "wb"):
        pass
    line = _only_failure_at(project, empty, "stg_clv__transactions",
                            "Invalid value for var 'clv_transactions'")
    assert "is empty: it has neither a header nor rows" in line


def _test_status(result, name: str) -> str:
    [status] = {str(r.status) for r in result.result if r.node.name == name}
    return status


@pytest.mark.slow
def test_ids_that_differ_only_in_leading_zeros_warn(project):
    """7255 in the old system's rows and 0007255 in the new one's are kept as written, so one
    customer is scored as two: the build warns with one row per such customer and two of its
    ids; ids written alike pass."""
    name = "clv_customer_ids_differ_in_more_than_leading_zeros"
    frame = _retail_frame().astype({"CustomerID": object})
    path = project.workdir / "padded_ids.csv"

    def status(ids: list[str | None]) -> str:
        frame["CustomerID"] = ids
        frame.to_csv(path, index=False)
        result = project.build(vars={**VARS, "clv_transactions": str(path)},
                               select=f"{FEATURE_MODELS} {name}")
        return _test_status(result, name)

    written = [None if row[2] is None else str(row[2]) for row in INVOICES]
    assert status(written) == "pass"
    # the rows from 2011 on write 17850 with leading zeros, as another system did
    padded = [f"00{c}" if c == "17850" and row[1].endswith("2011 15:15") else c
              for c, row in zip(written, INVOICES, strict=True)]
    assert padded.count("0017850") == 1
    assert status(padded) == "warn"
    rows = project.query("select * from (" + _compiled(project, name) + ")")
    assert rows.to_dict("records") == [{"unpadded_id": "17850", "customer_ids": 2,
                                        "one_id": "0017850", "another_id": "17850"}]


@pytest.mark.slow
def test_whole_amounts_with_dots_between_thousands_warn(project):
    """A German export of whole amounts (1.729 for 1,729, 524) is read by the CSV reader as
    decimals, a thousand times too small, without a row left out: the build warns; read with
    clv_decimal_separator ',', or with amounts in cents, it does not."""
    name = "clv_amount_dots_are_decimal_points"
    path = project.workdir / "whole_thousands.csv"
    rows = []
    for i in range(40):
        # three in four from 1,000 up; two of them end in 0 (1.110 reads 1.11)
        euros = 1000 + 37 * i if i % 4 else 100 + 11 * i
        rows.append((f"9{i:05d}", f"{1 + i % 6}/{1 + i % 27}/2011 10:00",
                     ["17850", "13047", "14527"][i % 3], euros))

    def status(amounts: list[str], extra: dict | None = None) -> str:
        frame = pd.DataFrame([(n, t, c, a) for (n, t, c, _), a in zip(rows, amounts, strict=True)],
                             columns=["InvoiceNo", "InvoiceDate", "CustomerID", "Betrag"])
        frame.to_csv(path, index=False)
        columns = {**RETAIL_COLUMNS, "amount": "Betrag"}
        result = project.build(vars={**VARS, "clv_transactions": str(path),
                                     "clv_columns": columns, **(extra or {})},
                               select=f"+int_clv__transactions_checked {name}")
        return _test_status(result, name)

    german = [f"{e // 1000}.{e % 1000:03d}" if e >= 1000 else str(e) for *_, e in rows]
    assert status(german) == "warn"
    found = project.query("select * from (" + _compiled(project, name) + ")")
    assert found.to_dict("records") == [{
        "amounts_with_a_fraction": 30, "amounts_with_three_decimals": 28,
        "whole_amounts_from_1000": 0, "smallest_three_decimal_amount": 1.037}]
    assert status(german, {"clv_decimal_separator": ","}) == "pass"
    assert status([f"{e / 100:.2f}" for *_, e in rows]) == "pass"


def _compiled(project, name: str) -> str:
    """The compiled SQL of the data test ``name``, as the last run wrote it."""
    return next((project.workdir / "target" / "compiled").rglob(f"{name}.sql")).read_text()
