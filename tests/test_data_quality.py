"""Data-quality accounting: generated data with a known number of bad rows of each kind, order
lines, customer ids that mean "no customer", and sources without a usable row."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reference import customer_features

from clv.synthetic import GeneratorSettings, generate

VARS = {
    "clv_as_of_date": "2023-12-31",
    "clv_horizon_days": 90,
    "clv_training_cutoffs": 2,
    "clv_cutoff_spacing_days": 90,
}
SETTINGS = GeneratorSettings(
    n_customers=300, start_date=pd.Timestamp("2022-01-01").date(),
    end_date=pd.Timestamp("2023-12-31").date(), seed=11, with_events=False,
    bad_row_fraction=0.03,
)


@pytest.mark.slow
def test_counts_are_exact_and_bad_rows_change_no_feature(dbt_project, write_csv):
    dirty = generate(SETTINGS)
    clean = generate(GeneratorSettings(**{**SETTINGS.__dict__, "bad_rows": False}))
    assert min(dirty.bad_row_counts.values()) > 0

    dbt_project.build(vars={**VARS, "clv_transactions": write_csv(clean.transactions, "clean.csv")})
    clean_features = dbt_project.query("select * from clv_customer_features order by all")
    clean_quality = dbt_project.query("select reason, rows from clv_data_quality")
    assert clean_quality.rows.sum() == 0

    dbt_project.build(vars={**VARS, "clv_transactions": write_csv(dirty.transactions, "dirty.csv")})
    quality = dbt_project.query("select reason, rows, as_of_date from clv_data_quality")
    assert dict(zip(quality.reason, quality.rows, strict=True)) == dirty.bad_row_counts
    # the date the rows were classified against, on every row
    assert {str(d)[:10] for d in quality.as_of_date} == {VARS["clv_as_of_date"]}
    dirty_features = dbt_project.query("select * from clv_customer_features order by all")
    pd.testing.assert_frame_equal(clean_features, dirty_features)


@pytest.mark.slow
def test_only_rows_dated_after_today_make_the_warning(dbt_project, write_csv):
    """Rows after the as-of date are counted; the warning reports those dated after today (a
    clock error), not those a daily load or a backtest's holdout holds."""
    frame = generate(GeneratorSettings(**{**SETTINGS.__dict__, "n_customers": 60,
                                          "bad_rows": False})).transactions
    future = frame.head(3).assign(transaction_id=["F1", "F2", "F3"],
                                  transacted_at="2099-01-01 10:00:00")
    source = write_csv(pd.concat([frame, future], ignore_index=True))
    result = dbt_project.build(vars={**VARS, "clv_as_of_date": "2023-09-30",
                                     "clv_transactions": source}, select="+clv_data_quality")
    after = (pd.to_datetime(frame.transacted_at).dt.date > pd.Timestamp("2023-09-30").date())
    quality = dbt_project.query("select reason, rows from clv_data_quality")
    counted = dict(zip(quality.reason, quality.rows, strict=True))
    assert counted["after_as_of_date"] == after.sum() + 3 and after.sum() > 3
    [warning] = [r for r in result.result if r.node.name == "clv_data_quality_excluded_rows"]
    assert (str(warning.status), warning.failures) == ("warn", 3)


# ---------------------------------------------------------------------------------------------
# Order lines: one row per line of an order, as most shops export. Lines that share an order id
# but differ are parts of the order and count; only a line identical in every mapped column to
# an earlier one is a duplicate.

LINE_SETTINGS = GeneratorSettings(**{**SETTINGS.__dict__, "n_customers": 150, "seed": 23,
                                     "bad_rows": False})


def _order_lines(orders: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """Each order split into one to three lines with distinct categories whose amounts add up
    to the order's (in cents); every fifth split order has a line a minute later, as an invoice
    split across a minute boundary."""
    rng = np.random.default_rng(seed)
    lines = []
    for number, order in enumerate(orders.itertuples(index=False)):
        cents = round(float(order.amount) * 100)
        parts = int(rng.integers(1, 4)) if abs(cents) >= 3 else 1
        cuts = (np.sort(rng.choice(np.arange(1, abs(cents)), size=parts - 1, replace=False))
                if parts > 1 else [])
        shares = np.diff([0, *cuts, abs(cents)]) * (1 if cents >= 0 else -1)
        at = pd.Timestamp(order.transacted_at)
        for line, share in enumerate(shares):
            later = line == parts - 1 and parts > 1 and number % 5 == 0
            lines.append({
                "transaction_id": order.transaction_id,
                "customer_id": order.customer_id,
                "transacted_at": str(at + pd.Timedelta(minutes=1) if later else at),
                "amount": f"{share / 100:.2f}",
                "product_category": f"{order.product_category}_{line}",
            })
    return pd.DataFrame(lines)


@pytest.mark.slow
def test_order_lines_count_and_only_identical_lines_are_duplicates(dbt_project, write_csv):
    orders = generate(LINE_SETTINGS).transactions
    lines = _order_lines(orders)
    assert lines.transaction_id.duplicated().sum() > 200  # many orders have several lines
    copies = lines.sample(n=25, random_state=4)  # exact copies of 25 lines: the duplicates
    dirty = pd.concat([lines, copies]).sample(frac=1.0, random_state=5)  # any row order

    dbt_project.build(vars={**VARS, "clv_transactions": write_csv(dirty, "lines.csv")})

    quality = dbt_project.query("select reason, rows from clv_data_quality")
    assert dict(zip(quality.reason, quality.rows, strict=True)) == {
        "missing_customer_id": 0, "invalid_timestamp": 0, "invalid_amount": 0,
        "duplicate_transaction": 25, "after_as_of_date": 0}
    usable = [(row.customer_id, pd.Timestamp(row.transacted_at).date(), float(row.amount))
              for row in lines.itertuples(index=False)]
    features = dbt_project.query("select * from clv_customer_features")
    features["cutoff_date"] = pd.to_datetime(features["cutoff_date"]).dt.date
    assert len(features) > 0
    for row in features.itertuples(index=False):
        expected = customer_features(usable, row.customer_id, row.cutoff_date,
                                     VARS["clv_horizon_days"])
        for column in ("revenue_total", "orders_total", "frequency", "recency_days",
                       "monetary_value", "revenue_last_90d", "refund_amount_total"):
            assert getattr(row, column) == pytest.approx(expected[column], rel=1e-9, abs=1e-6), (
                row.customer_id, row.cutoff_date, column)


# ---------------------------------------------------------------------------------------------
# Customer ids that mean "no customer" (var clv_missing_customer_ids)

SENTINEL_IDS = ["(blank)", " (BLANK) ", "null", "None", "NaN", "n/a", "-", "   ", "\t"]


def _sentinel_rows() -> pd.DataFrame:
    real = [("t1", "C1", "2023-01-05 10:00:00", "20"), ("t2", "C2", "2023-02-05 10:00:00", "30"),
            ("t3", "guest", "2023-03-05 10:00:00", "15"), ("t4", "C1", "2023-04-05 10:00:00", "25")]
    missing = [(f"s{i}", value, "2023-05-01 10:00:00", "10")
               for i, value in enumerate(SENTINEL_IDS)]
    return pd.DataFrame(real + missing,
                        columns=["transaction_id", "customer_id", "transacted_at", "amount"])


@pytest.mark.slow
def test_sentinel_customer_ids_count_as_missing(dbt_project, write_csv):
    path = write_csv(_sentinel_rows(), "sentinels.csv")

    dbt_project.build(vars={**VARS, "clv_transactions": path})
    quality = dbt_project.query("select reason, rows from clv_data_quality")
    counts = dict(zip(quality.reason, quality.rows, strict=True))
    assert counts["missing_customer_id"] == len(SENTINEL_IDS)
    customers = dbt_project.query("select distinct customer_id from clv_customer_features")
    assert set(customers.customer_id) == {"C1", "C2", "guest"}

    # the var replaces the list: `guest` is now missing, `(blank)` and the others are ids
    dbt_project.build(vars={**VARS, "clv_transactions": path,
                            "clv_missing_customer_ids": ["Guest"]},
                      select="+clv_data_quality")
    quality = dbt_project.query("select reason, rows from clv_data_quality")
    # the whitespace-only ids stay missing whatever the list says
    assert dict(zip(quality.reason, quality.rows, strict=True))["missing_customer_id"] == 3
    staged = dbt_project.query("select distinct customer_id from stg_clv__transactions")
    assert {"(blank)", "(BLANK)", "null", "None", "NaN", "n/a", "-"} <= set(
        staged.customer_id.dropna())


# ---------------------------------------------------------------------------------------------
# No usable row: clv_data_quality is built anyway and the build stops with one line

NO_USABLE = {
    "every_row_bad": (
        [("t1", "", "2023-01-01", "5"), ("t2", "A", "not a date", "5"),
         ("t3", "B", "2023-01-01", "abc"), ("t4", "(blank)", "2023-01-02", "7")],
        {},
        {"missing_customer_id": 2, "invalid_timestamp": 1, "invalid_amount": 1},
        ["all 4 rows of clv_transactions",
         ("(missing_customer_id 2, e.g. the row of 't1'; invalid_timestamp 1, e.g. 'not a "
          "date'; invalid_amount 1, e.g. 'abc')"),
         "clv_columns (customer_id, transacted_at, amount)", "clv_missing_customer_ids",
         "clv_timestamp_format"],
    ),
    # dunnhumby's DAY counts days from an unnamed start: the message says how to map it
    "day_numbers": (
        [("t1", "A", "1", "5"), ("t2", "B", "15", "5"), ("t3", "A", "711", "5")],
        {},
        {"invalid_timestamp": 3},
        ["invalid_timestamp 3, e.g. '1'", "The times are whole numbers ('1')",
         "DATE '2020-01-01' + cast(DAY as integer)"],
    ),
    "unix_seconds": (
        [("t1", "A", "1700000000", "5"), ("t2", "B", "1700086400", "5")],
        {},
        {"invalid_timestamp": 2},
        [("most likely Unix seconds: map transacted_at to "
         "to_timestamp(cast(your_column as double precision))")],
    ),
    # a date format the default (ISO) does not read: the line names the format that does
    "day_first_dates": (
        [("t1", "A", "13/01/2024", "5"), ("t2", "B", "20/02/2024", "5")],
        {},
        {"invalid_timestamp": 2},
        ["The times look like '13/01/2024': set clv_timestamp_format to '%d/%m/%Y'."],
    ),
    "month_first_or_day_first": (
        [("t1", "A", "12/1/2010 8:26", "5"), ("t2", "B", "12/2/2010 9:45", "5")],
        {},
        {"invalid_timestamp": 2},
        [("set clv_timestamp_format to '%m/%d/%Y %H:%M' if the month comes first, "
         "'%d/%m/%Y %H:%M' if the day does.")],
    ),
    # the first in text order cannot tell day and month apart, the last can: it decides
    "day_first_dates_with_a_time": (
        [("t1", "A", "01.01.2014 21:10", "5"), ("t2", "B", "02.01.2014 9:45", "5"),
         ("t3", "A", "25.01.2014 10:00", "5")],
        {},
        {"invalid_timestamp": 3},
        [("The times look like '25.01.2014 10:00': set clv_timestamp_format to "
          "'%d.%m.%Y %H:%M'.")],
    ),
    "month_names": (
        [("t1", "A", "January 2, 2024", "5")],
        {},
        {"invalid_timestamp": 1},
        ["set clv_timestamp_format to '%B %d, %Y'."],
    ),
    "amounts_with_a_currency_sign_and_thousands": (
        [("t1", "A", "2024-01-02", "$1,234.50"), ("t2", "B", "2024-01-03", "$2,000.00")],
        {},
        {"invalid_amount": 2},
        [("The amounts look like '$1,234.50': map amount to "
         "replace(replace(amount, ',', ''), '$', '').")],
    ),
    "amounts_with_a_decimal_comma": (
        [("t1", "A", "2024-01-02", "12,50 €"), ("t2", "B", "2024-01-03", "1.038,75 €")],
        {},
        {"invalid_amount": 2},
        [("The amounts look like '1.038,75 €', written with a decimal comma: set "
         "clv_decimal_separator to ',' and drop the '€' with replace().")],
    ),
    "every_row_after_the_as_of_date": (
        [("t1", "A", "2024-01-05", "5"), ("t2", "B", "2024-02-01", "5")],
        {"clv_as_of_date": "2023-12-31"},
        {"after_as_of_date": 2},
        ["all 2 rows of clv_transactions", "after_as_of_date 2",
         "clv_as_of_date (2023-12-31 is before every usable row)"],
    ),
    # today (UTC, the default clv_time_zone) is not over: the default as-of date is the last
    # usable day before it, and there is none
    # (the rows are written as the test runs, not when it is collected)
    "every_row_from_today": (
        lambda today: [("t1", "A", f"{today:%Y-%m-%d} 00:00:01", "5"),
                       ("t2", "B", f"{today + timedelta(days=400):%Y-%m-%d}", "5")],
        {"clv_as_of_date": ""},
        {"after_as_of_date": 2},
        ["all 2 rows of clv_transactions", "after_as_of_date 2",
         "clv_as_of_date (every usable row is from today or later)"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", NO_USABLE)
def test_no_usable_row_builds_clv_data_quality_and_stops_with_one_line(dbt_project, write_csv,
                                                                       case):
    make_rows, extra_vars, counts, expected = NO_USABLE[case]
    for _ in range(2):  # a build that runs past midnight (UTC) reads another today: once more
        today = datetime.now(UTC).date()
        rows = make_rows(today) if callable(make_rows) else make_rows
        frame = pd.DataFrame(rows,
                             columns=["transaction_id", "customer_id", "transacted_at", "amount"])
        result = dbt_project.build(vars={**VARS, **extra_vars,
                                         "clv_transactions": write_csv(frame, "bad.csv")},
                                   expect_success=False)
        if datetime.now(UTC).date() == today:
            break

    failures = {r.node.name: str(r.message) for r in result.result
                if str(r.status) in ("error", "fail", "runtime error")}
    assert list(failures) == ["int_clv__cutoffs"], failures
    lines = [line.strip() for line in failures["int_clv__cutoffs"].splitlines()
             if line.strip().startswith("No usable transactions")]
    assert len(lines) == 1, failures
    for text in [*expected, "see clv_data_quality"]:
        assert text in lines[0], (text, lines[0])
    quality = dbt_project.query("select reason, rows, source_rows from clv_data_quality")
    assert dict(zip(quality.reason, quality.rows, strict=True)) == {
        reason: counts.get(reason, 0) for reason in quality.reason}
    assert (quality.source_rows == len(rows)).all()


# case -> (rows, the var the message names, how to read its value from the message)
HINTED = {
    "day_first": ([("t1", "A", "13/01/2023", "5"), ("t2", "B", "20/02/2023", "7")],
                  "clv_timestamp_format", r"set clv_timestamp_format to '([^']+)'"),
    "month_names": ([("t1", "A", "January 2, 2023", "5"), ("t2", "B", "September 12, 2023", "7")],
                    "clv_timestamp_format", r"set clv_timestamp_format to '([^']+)'"),
    "short_month_names": ([("t1", "A", "2-Jan-2023", "5"), ("t2", "B", "12-Sep-2023", "7")],
                          "clv_timestamp_format", r"set clv_timestamp_format to '([^']+)'"),
    "unix_seconds": ([("t1", "A", "1673000000", "5"), ("t2", "B", "1690000000", "7")],
                     "transacted_at", r"map transacted_at to (.+?)\.$"),
    "currency_and_thousands": ([("t1", "A", "2023-01-02", "$1,234.50"),
                                ("t2", "B", "2023-02-03", "$12.50")],
                               "amount", r"map amount to (.+?)\.$"),
    "currency_on_both_sides": ([("t1", "A", "2023-01-02", "$ 12.50 USD"),
                                ("t2", "B", "2023-02-03", "$ 7.00 USD")],
                               "amount", r"map amount to (.+?)\.$"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", HINTED)
def test_the_hint_of_a_no_usable_rows_stop_reads_the_rows(dbt_project, write_csv, case):
    """What the "No usable transactions" line suggests, applied as written, reads every row."""
    rows, key, pattern = HINTED[case]
    path = write_csv(pd.DataFrame(rows, columns=["transaction_id", "customer_id", "transacted_at",
                                                 "amount"]), "hinted.csv")
    result = dbt_project.build(vars={**VARS, "clv_transactions": path}, expect_success=False)
    message = next(str(r.message) for r in result.result if r.node.name == "int_clv__cutoffs")
    line = next(line.strip() for line in message.splitlines()
                if line.strip().startswith("No usable transactions"))
    # the first suggestion of the line's last sentence
    suggested = re.search(pattern, line.rsplit(". ", 1)[-1] if key == "amount" else line)
    assert suggested, line
    value = suggested.group(1)
    if key == "clv_timestamp_format":
        hinted = {"clv_timestamp_format": value}
    else:
        column = "transacted_at" if key == "transacted_at" else "amount"
        hinted = {"clv_columns": {key: value.replace("your_column", column)}}
    dbt_project.build(vars={**VARS, "clv_transactions": path, **hinted},
                      select="stg_clv__transactions int_clv__transactions_checked")
    checked = dbt_project.query("select count(*) as n from int_clv__transactions_checked "
                                "where row_problem is null")
    assert checked.n.tolist() == [len(rows)], (hinted, line)


@pytest.mark.slow
@pytest.mark.parametrize("value", [{"a": "b"}, ["it's"], [["nested"]], True])
def test_bad_missing_customer_ids_is_rejected_before_sql_runs(dbt_project, value):
    from dbt.exceptions import CompilationError

    with pytest.raises(CompilationError, match="Invalid value for var 'clv_missing_customer_ids'"):
        dbt_project.run("parse", vars={"clv_missing_customer_ids": value})
    assert not dbt_project.database.exists()


def test_missing_customer_ids_default_is_the_documented_one():
    """dbt_project.yml, the macro's fallback (used when the var is unset, as in a package) and
    the README list the same values."""
    import yaml

    root = Path(__file__).resolve().parent.parent
    project = yaml.safe_load((root / "dbt_project.yml").read_text(encoding="utf-8"))
    listed = project["vars"]["clv_missing_customer_ids"]
    macro = (root / "macros" / "clv_missing_customer_ids.sql").read_text(encoding="utf-8")
    fallback = re.search(r"return\(\[([^]]*)\]\)", macro).group(1)
    assert re.findall(r"'([^']*)'", fallback) == listed
    readme = (root / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines()
               if line.startswith("| `clv_missing_customer_ids`"))
    assert all(f"`{value}`" in row for value in listed), row
