"""Tests of the synthetic data generator and its oracle."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clv.synthetic import (
    BAD_ROW_KINDS,
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    ORACLE_COLUMNS,
    PEAK_SEASON_MONTH_FACTORS,
    TRANSACTION_COLUMNS,
    GeneratedData,
    GeneratorSettings,
    daily_seasonality,
    format_cents,
    generate,
    month_profile,
    oracle,
)
from clv.synthetic.cli import main
from clv.synthetic.simulate import _hours_at, _time_scale

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def data() -> GeneratedData:
    return generate(GeneratorSettings(n_customers=3_000, seed=7))


@pytest.fixture(scope="module")
def clean() -> GeneratedData:
    return generate(GeneratorSettings(n_customers=3_000, seed=11, bad_rows=False))


def parsed(transactions: pd.DataFrame) -> pd.DataFrame:
    """Transactions with parsed timestamp and amount (NaT / NaN when unparseable)."""
    return transactions.assign(
        at=pd.to_datetime(transactions["transacted_at"], format=TIMESTAMP_FORMAT, errors="coerce"),
        value=pd.to_numeric(transactions["amount"], errors="coerce"),
    )


def classify(transactions: pd.DataFrame, as_of: date) -> pd.Series:
    """Problem of each row, first match wins (None for usable rows)."""
    frame = parsed(transactions)
    customer = frame["customer_id"].fillna("").str.strip()
    problem = pd.Series(None, index=frame.index, dtype=object)
    problem[customer == ""] = "missing_customer_id"
    problem[problem.isna() & frame["at"].isna()] = "invalid_timestamp"
    finite = np.isfinite(frame["value"].to_numpy(dtype=float, na_value=np.nan))
    problem[problem.isna() & ~finite] = "invalid_amount"
    repeated = frame["transaction_id"].where(problem.isna()).duplicated() & problem.isna()
    problem[repeated] = "duplicate_transaction"
    late = frame["at"].dt.date > as_of
    problem[problem.isna() & late] = "after_as_of_date"
    return problem


def usable(data: GeneratedData) -> pd.DataFrame:
    """Parsed rows without any problem."""
    problem = classify(data.transactions, data.settings.end_date)
    return parsed(data.transactions[problem.isna()])


def test_same_seed_gives_identical_frames() -> None:
    settings = GeneratorSettings(n_customers=400, seed=3)
    first, second = generate(settings), generate(settings)
    for name in ("transactions", "customers", "events", "latent"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    assert first.bad_row_counts == second.bad_row_counts
    other = generate(GeneratorSettings(n_customers=400, seed=4))
    assert not first.transactions.equals(other.transactions)


def test_frames_have_the_documented_columns(data: GeneratedData) -> None:
    assert tuple(data.transactions.columns) == TRANSACTION_COLUMNS
    assert all(pd.api.types.is_string_dtype(dtype) for dtype in data.transactions.dtypes)
    assert tuple(data.customers.columns) == CUSTOMER_COLUMNS
    assert tuple(data.events.columns) == EVENT_COLUMNS
    assert len(data.customers) == len(data.latent) == data.settings.n_customers
    assert data.customers["customer_id"].is_unique
    assert data.customers["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert set(data.customers["age_band"]) <= set(data.settings.age_bands)
    assert set(data.customers["country"]) <= set(data.settings.countries)


def test_bad_row_counts_match_an_independent_recount(data: GeneratedData) -> None:
    problem = classify(data.transactions, data.settings.end_date)
    recount = problem.value_counts().to_dict()
    assert {kind: recount.get(kind, 0) for kind in BAD_ROW_KINDS} == data.bad_row_counts
    assert all(count >= 1 for count in data.bad_row_counts.values())
    share = sum(data.bad_row_counts.values()) / len(data.transactions)
    assert 0.002 < share < 0.01
    duplicates = data.transactions.duplicated(keep="first")
    assert duplicates.sum() == data.bad_row_counts["duplicate_transaction"]


def test_every_bad_kind_present_for_tiny_populations() -> None:
    tiny = generate(GeneratorSettings(n_customers=3, seed=5))
    problem = classify(tiny.transactions, tiny.settings.end_date)
    assert tiny.bad_row_counts == dict.fromkeys(BAD_ROW_KINDS, 1)
    assert problem.value_counts().to_dict() == tiny.bad_row_counts


def test_no_bad_rows_when_disabled(clean: GeneratedData) -> None:
    assert set(clean.bad_row_counts.values()) == {0}
    assert classify(clean.transactions, clean.settings.end_date).isna().all()


def test_usable_rows_are_well_formed(data: GeneratedData) -> None:
    rows = usable(data)
    assert rows["transaction_id"].is_unique
    assert rows["transaction_id"].str.fullmatch(r"T\d{9}").all()
    assert rows["amount"].str.fullmatch(r"-?\d+\.\d{2}").all()
    assert (rows["value"] != 0).all()
    assert set(rows["product_category"]) <= set(data.settings.categories)
    start = pd.Timestamp(data.settings.start_date)
    assert rows["at"].min() >= start
    assert (rows["at"].dt.date <= data.settings.end_date).all()
    assert rows["at"].is_monotonic_increasing


def test_refunds_are_negative_and_follow_a_matching_order(clean: GeneratedData) -> None:
    rows = usable(clean).reset_index(drop=True)
    refunds = rows[rows["value"] < 0]
    orders = rows[rows["value"] > 0]
    share = len(refunds) / len(orders)
    assert 0.03 < share < 0.07
    pairs = refunds.reset_index().merge(
        orders, on=["customer_id", "product_category"], suffixes=("", "_order")
    )
    delay = pairs["at"] - pairs["at_order"]
    matching = pairs[
        (delay >= pd.Timedelta(days=1))
        & (delay <= pd.Timedelta(days=30))
        & (pairs["value_order"] >= -pairs["value"] - 0.005)
    ]
    assert set(matching["index"]) == set(refunds.index)


def test_purchases_fall_within_the_customer_life(clean: GeneratedData) -> None:
    rows = usable(clean)
    orders = rows[rows["value"] > 0].merge(clean.latent, on="customer_id")
    assert (orders["at"] >= orders["acquired_at"]).all()
    assert (orders["at"] <= orders["death_at"]).all()
    first = orders.groupby("customer_id")["at"].min()
    acquired = clean.latent.set_index("customer_id")["acquired_at"]
    pd.testing.assert_series_equal(
        first, acquired.loc[first.index], check_names=False, check_dtype=False
    )
    assert first.size == clean.settings.n_customers


def test_default_volume_and_spend_are_plausible(clean: GeneratedData) -> None:
    rows = usable(clean)
    per_customer = len(rows) / clean.settings.n_customers
    assert 7 < per_customer < 12
    orders = rows.loc[rows["value"] > 0, "value"]
    assert 20 < orders.median() < 100
    assert orders.quantile(0.9) < 250


def test_customers_and_events_are_consistent(data: GeneratedData) -> None:
    customers = data.customers.merge(data.latent, on="customer_id")
    assert (customers["signup_date"] <= customers["acquired_at"]).all()
    assert (customers["signup_date"] >= pd.Timestamp(data.settings.start_date)).all()
    events = data.events.merge(data.customers, on="customer_id")
    assert len(events) == len(data.events)
    assert set(events["event_type"]) == set(EVENT_TYPES)
    assert (events["event_at"] >= events["signup_date"]).all()
    assert (events["event_at"].dt.date <= data.settings.end_date).all()
    per_order = len(data.events) / len(data.transactions)
    assert 1.5 < per_order < 3.5


def test_events_can_be_disabled_without_changing_transactions() -> None:
    quiet = generate(GeneratorSettings(n_customers=50, with_events=False))
    assert quiet.events.empty
    assert tuple(quiet.events.columns) == EVENT_COLUMNS
    busy = generate(GeneratorSettings(n_customers=50, with_events=True))
    pd.testing.assert_frame_equal(quiet.transactions, busy.transactions)


def test_closed_cohort_is_acquired_early() -> None:
    settings = GeneratorSettings(n_customers=500, closed_cohort=True, closed_cohort_days=60)
    latent = generate(settings).latent
    limit = pd.Timestamp(settings.start_date + timedelta(days=60))
    assert (latent["acquired_at"] < limit).all()


def test_seasonality_is_normalised_with_a_year_end_peak() -> None:
    settings = GeneratorSettings(weekday_effect=False)
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    profile = month_profile(settings)
    assert np.average(profile, weights=days_in_month) == pytest.approx(1.0)
    assert profile[11] > 1.5 and profile[10] > 1.3 and profile[6] < 0.9
    year = np.datetime64("2023-01-01") + np.arange(365)
    assert daily_seasonality(year, settings).mean() == pytest.approx(1.0)


def test_seasonal_peak_case_has_a_strong_year_end_peak() -> None:
    settings = GeneratorSettings.seasonal_peak(n_customers=2000, seed=5, with_events=False,
                                               bad_rows=False)
    assert settings.month_factors == PEAK_SEASON_MONTH_FACTORS and settings.n_customers == 2000
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    profile = month_profile(settings)
    assert np.average(profile, weights=days_in_month) == pytest.approx(1.0)
    # October-December against July-September: stronger than the default profile's peak
    def peak(values: np.ndarray) -> float:
        return float(np.average(values[9:], weights=days_in_month[9:])
                     / np.average(values[6:9], weights=days_in_month[6:9]))

    assert peak(profile) > 2.2 > 1.7 > peak(month_profile(GeneratorSettings()))
    # and the orders follow it: in 2022 the last quarter holds over twice the third's orders,
    # clearly more than with the default profile
    def quarter_ratio(data: GeneratedData) -> float:
        stamps = pd.to_datetime(data.transactions.transacted_at)
        orders = stamps[(pd.to_numeric(data.transactions.amount) > 0) & (stamps.dt.year == 2022)]
        return float((orders.dt.quarter == 4).sum() / (orders.dt.quarter == 3).sum())

    default = dataclasses.replace(settings, month_factors=GeneratorSettings().month_factors)
    assert quarter_ratio(generate(settings)) > max(2.0, 1.3 * quarter_ratio(generate(default)))


def test_time_scale_inverse_matches_interpolation() -> None:
    scale = _time_scale(GeneratorSettings(end_date=date(2021, 6, 30)))
    values = np.random.default_rng(0).random(5_000) * scale.knots[-1]
    expected = np.interp(values, scale.knots, np.arange(scale.knots.size, dtype=float))
    np.testing.assert_allclose(_hours_at(scale, values), expected, atol=1e-9)


def test_format_cents() -> None:
    cents = np.array([0, 5, 100, 4510, -305, -99, 123456789])
    expected = ["0.00", "0.05", "1.00", "45.10", "-3.05", "-0.99", "1234567.89"]
    assert format_cents(cents).to_pylist() == expected


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_customers must be at least 1"):
        GeneratorSettings(n_customers=0)
    with pytest.raises(ValueError, match="end_date must not be before start_date"):
        GeneratorSettings(start_date=date(2022, 1, 1), end_date=date(2021, 1, 1))
    with pytest.raises(ValueError, match="month_factors needs 12 values"):
        GeneratorSettings(month_factors=(1.0,) * 11)


def test_oracle_knows_who_is_alive(data: GeneratedData) -> None:
    as_of = date(2022, 6, 30)
    truth = oracle(data, as_of, 90)
    assert tuple(truth.columns) == ORACLE_COLUMNS
    cutoff = pd.Timestamp(as_of + timedelta(days=1))
    latent = data.latent.set_index("customer_id").loc[truth["customer_id"]]
    assert (latent["acquired_at"] < cutoff).all()
    assert len(truth) == (data.latent["acquired_at"] < cutoff).sum()
    np.testing.assert_array_equal(truth["is_alive_at_as_of"], latent["death_at"] > cutoff)
    dead = truth[~truth["is_alive_at_as_of"]]
    assert len(dead) > 0 and (dead["expected_spend"] == 0).all()
    alive = truth[truth["is_alive_at_as_of"]]
    assert (alive["expected_spend"] > 0).all()
    from_latent = oracle(data.latent, as_of, 90, settings=data.settings)
    pd.testing.assert_frame_equal(truth, from_latent)


def test_oracle_mean_matches_realised_future_spend() -> None:
    settings = GeneratorSettings(
        n_customers=30_000,
        seed=21,
        end_date=date(2022, 12, 31),
        bad_rows=False,
        with_events=False,
    )
    simulated = generate(settings)
    as_of, horizon = date(2022, 6, 30), 120
    truth = oracle(simulated, as_of, horizon).set_index("customer_id")
    rows = usable(simulated)
    start = pd.Timestamp(as_of + timedelta(days=1))
    window = rows[(rows["at"] >= start) & (rows["at"] < start + pd.Timedelta(days=horizon))]
    realised = window.groupby("customer_id")["value"].sum().reindex(truth.index, fill_value=0)
    orders = window[window["value"] > 0].groupby("customer_id").size()
    orders = orders.reindex(truth.index, fill_value=0)
    alive = truth["is_alive_at_as_of"]
    assert alive.sum() > 5_000
    expected_spend = truth.loc[alive, "expected_spend"].mean()
    expected_orders = truth.loc[alive, "expected_orders"].mean()
    assert realised[alive].mean() == pytest.approx(expected_spend, rel=0.08)
    assert orders[alive].mean() == pytest.approx(expected_orders, rel=0.05)
    assert orders[~alive].sum() == 0


def read_strings(path: Path) -> pd.DataFrame:
    """A CSV file read without type or missing-value inference."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_cli_writes_csv_and_parquet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--customers", "150", "--seed", "9", "--start", "2021-01-01", "--end", "2022-12-31"]
    code = main(
        [
            *common,
            "--out", str(tmp_path / "transactions.csv"),
            "--customers-out", str(tmp_path / "customers.parquet"),
            "--events-out", str(tmp_path / "events.csv"),
            "--oracle-out", str(tmp_path / "oracle.csv"),
            "--as-of", "2022-06-30",
            "--horizon-days", "60",
        ]
    )
    assert code == 0
    summary = capsys.readouterr().out.strip()
    assert len(summary.splitlines()) == 1 and "150 customers" in summary
    expected = generate(
        GeneratorSettings(n_customers=150, seed=9, end_date=date(2022, 12, 31))
    )
    transactions = read_strings(tmp_path / "transactions.csv")
    assert tuple(transactions.columns) == TRANSACTION_COLUMNS
    pd.testing.assert_frame_equal(
        transactions, expected.transactions.fillna("").astype(object), check_dtype=False
    )
    customers = pq.read_table(tmp_path / "customers.parquet")
    assert tuple(customers.column_names) == CUSTOMER_COLUMNS
    assert customers.schema.field("signup_date").type == pa.date32()
    assert tuple(read_strings(tmp_path / "events.csv").columns) == EVENT_COLUMNS
    assert tuple(read_strings(tmp_path / "oracle.csv").columns) == ORACLE_COLUMNS

    parquet_out = str(tmp_path / "t.parquet")
    assert main([*common, "--no-bad-rows", "--no-events", "--out", parquet_out]) == 0
    table = pq.read_table(tmp_path / "t.parquet")
    assert tuple(table.column_names) == TRANSACTION_COLUMNS
    assert all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in table.schema.types)
    assert table.num_rows == len(
        generate(
            GeneratorSettings(
                n_customers=150, seed=9, end_date=date(2022, 12, 31), bad_rows=False
            )
        ).transactions
    )


def test_cli_seasonal_peak_flag(tmp_path: Path) -> None:
    common = ["--customers", "120", "--seed", "4", "--end", "2022-12-31", "--no-events"]
    assert main([*common, "--seasonal-peak", "--out", str(tmp_path / "peak.csv")]) == 0
    expected = generate(GeneratorSettings.seasonal_peak(
        n_customers=120, seed=4, end_date=date(2022, 12, 31), with_events=False))
    pd.testing.assert_frame_equal(read_strings(tmp_path / "peak.csv"),
                                  expected.transactions.fillna("").astype(object),
                                  check_dtype=False)


def test_cli_shapes_the_business(tmp_path: Path) -> None:
    """The business options set the generator's scales: customers who leave soon after they
    arrive buy once, far more of them than by default; refunds and order values follow."""
    common = ["--customers", "400", "--seed", "3", "--end", "2022-12-31", "--no-events",
              "--no-bad-rows"]
    assert main([*common, "--out", str(tmp_path / "default.csv")]) == 0
    assert main([*common, "--lifetime-days", "15", "--refund-share", "0.3", "--order-value",
                 "120", "--days-between-orders", "30", "--out", str(tmp_path / "once.csv")]) == 0
    expected = generate(GeneratorSettings(
        n_customers=400, seed=3, end_date=date(2022, 12, 31), with_events=False, bad_rows=False,
        purchase_rate=0.75 * 30, dropout_rate=0.6 * 15, refund_probability=0.3,
        order_value_median=120.0))
    once = read_strings(tmp_path / "once.csv")
    pd.testing.assert_frame_equal(once, expected.transactions.fillna("").astype(object),
                                  check_dtype=False)

    def shares(frame: pd.DataFrame) -> tuple[float, float]:
        amounts = frame.amount.astype(float)
        orders = frame[amounts > 0].groupby("customer_id").size()
        return float((orders == 1).mean()), float((amounts < 0).sum() / (amounts > 0).sum())

    (single, refunds), (default_single, default_refunds) = (
        shares(once), shares(read_strings(tmp_path / "default.csv")))
    assert single > default_single + 0.2 and refunds > 4 * default_refunds


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    for options in (
        ["--customers", "0", "--out", str(tmp_path / "t.csv")],
        ["--lifetime-days", "0", "--out", str(tmp_path / "t.csv")],
        ["--refund-share", "1", "--out", str(tmp_path / "t.csv")],
        ["--out", str(tmp_path / "t.json")],
        ["--no-events", "--events-out", str(tmp_path / "e.csv"), "--out", str(tmp_path / "t.csv")],
    ):
        with pytest.raises(SystemExit) as raised:
            main(options)
        assert raised.value.code == 2
    assert not any(tmp_path.iterdir())


def test_module_entry_point_prints_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clv.synthetic.cli", "--help"], capture_output=True, text=True,
        check=False,
    )
    assert result.returncode == 0
    assert re.search(r"--closed-cohort", result.stdout)


def test_sample_seeds_are_reproducible(tmp_path: Path) -> None:
    names = ("transactions", "customers", "events")
    main(
        [
            "--customers", "3000", "--seed", "42", "--start", "2021-01-01", "--end", "2023-12-31",
            "--out", str(tmp_path / "clv_sample_transactions.csv"),
            "--customers-out", str(tmp_path / "clv_sample_customers.csv"),
            "--events-out", str(tmp_path / "clv_sample_events.csv"),
        ]
    )
    for name in names:
        file_name = f"clv_sample_{name}.csv"
        assert (tmp_path / file_name).read_bytes() == (SEEDS / file_name).read_bytes(), file_name
