"""The feature SQL against the plain-Python reference on small hand-made data."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest
from reference import customer_features, customer_label, customer_sequence

VARS = {
    "clv_as_of_date": "2023-06-30",
    "clv_horizon_days": 30,
    "clv_training_cutoffs": 3,
    "clv_cutoff_spacing_days": 20,
    "clv_period_days": 10,
    "clv_sequence_periods": 6,
}
CUTOFFS = [date(2023, 6, 30), date(2023, 5, 31), date(2023, 5, 11), date(2023, 4, 21)]

# (transaction_id, customer_id, transacted_at, amount): the usable rows.
GOOD_ROWS = [
    ("a1", "A", "2023-03-01 10:00:00", "50"),  # a single purchase
    ("b1", "B", "2023-04-01 10:00:00", "20"),  # two purchases on one day
    ("b2", "B", "2023-04-01 15:30:00", "30"),
    ("b3", "B", "2023-04-21 23:59:00", "40"),  # on a cutoff day: belongs to that cutoff
    ("b4", "B", "2023-05-20 08:00:00", "10"),
    ("b5", "B", "2023-06-05 08:00:00", "25"),
    ("c1", "C", "2023-02-01 09:00:00", "100"),  # refund larger than the purchase
    ("c2", "C", "2023-03-01 09:00:00", "-150"),
    ("c3", "C", "2023-05-15 09:00:00", "30"),
    ("d1", "D", "2023-05-11 12:00:00", "60"),  # first purchase on a cutoff day
    ("d2", "D", "2023-06-20 12:00:00", "-10"),
    ("f1", "F", "2023-01-05 12:00:00", "5"),  # activity spread over many periods
    ("f2", "F", "2023-02-10 12:00:00", "15"),
    ("f3", "F", "2023-04-20 12:00:00", "25"),
    ("f4", "F", "2023-05-31 12:00:00", "35"),
    ("f5", "F", "2023-06-30 12:00:00", "45"),
    ("g1", "G", "2023-03-03 12:00:00", "0"),  # a zero-amount order, then a purchase
    ("g2", "G", "2023-03-10 12:00:00", "12.5"),
    ("h1", "H", "2023-03-05 12:00:00", "-20"),  # only a refund
    ("i1", " I ", "2023-05-01 12:00:00", "8"),  # id with spaces around it
    ("k1", "K", "2023-06-01 10:00:00", "0.1"),  # refunds cancel the purchases: the net sum
    ("k2", "K", "2023-06-02 10:00:00", "0.2"),  # is 0 only up to float noise
    ("k3", "K", "2023-06-03 10:00:00", "-0.3"),
    ("N/A", "L", "2023-04-04", "9"),  # two equal purchases of a day, a placeholder for their
    ("N/A", "L", "2023-04-04", "9"),  # transaction id: no id, so not duplicates
    # amounts of 1e10 (a currency such as IDR): sums that cancel are off by 1e-6, not 1e-17
    ("m0", "M", "2023-01-02 10:00:00", "100"),  # purchases refunded in the label window:
    ("m1", "M", "2023-06-05 10:00:00", "7667299286.63"),  # the label is 0, not a buyer's
    ("m2", "M", "2023-06-06 10:00:00", "12116408040.70"),
    ("m3", "M", "2023-06-10 10:00:00", "-12116408040.70"),
    ("m4", "M", "2023-06-11 10:00:00", "-7667299286.63"),
    ("r1", "R", "2023-01-10 10:00:00", "7667299286.63"),  # a year's net revenue of 0: no
    ("r2", "R", "2023-01-11 10:00:00", "12116408040.70"),  # ratio of 1e16
    ("r3", "R", "2023-06-01 10:00:00", "-12116408040.70"),
    ("r4", "R", "2023-06-02 10:00:00", "-7667299286.63"),
    ("w1", "W", "2023-05-01 10:00:00", "12345678901.23"),  # one day's sums of large amounts
    ("w2", "W", "2023-05-01 11:00:00", "-0.07"),  # round differently (the customer-day test)
    ("w3", "W", "2023-05-01 12:00:00", "98765432109.87"),
    ("w4", "W", "2023-05-01 13:00:00", "-1234.56"),
    ("w5", "W", "2023-05-01 14:00:00", "0.01"),
]
BAD_ROWS = [
    ("x1", "", "2023-03-01 10:00:00", "10"),  # missing_customer_id
    ("e1", "E", "not a date", "10"),  # invalid_timestamp
    ("e2", "E", "2023-03-01 10:00:00", "abc"),  # invalid_amount
    ("e3", "E", "2023-03-02 10:00:00", "NaN"),  # invalid_amount
    ("b2", "B", "2023-04-01 15:30:00", "30"),  # duplicate_transaction
    ("f6", "F", "2023-07-05 12:00:00", "55"),  # after_as_of_date
]
EXPECTED_QUALITY = {
    "missing_customer_id": 1,
    "invalid_timestamp": 1,
    "invalid_amount": 2,
    "duplicate_transaction": 1,
    "after_as_of_date": 1,
}


def _usable() -> list[tuple[str, date, float]]:
    return [
        (customer.strip(), datetime.fromisoformat(at).date(), float(amount))
        for _, customer, at, amount in GOOD_ROWS
    ]


def _tolerance(usable, customer: str) -> float:
    """1e-9, or 1e-12 of the customer's amounts when they are large: sums of doubles in
    another order round differently."""
    return max(1e-9, 1e-12 * sum(abs(amount) for c, _, amount in usable if c == customer))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from conftest import DbtProject

    workdir = tmp_path_factory.mktemp("features")
    frame = pd.DataFrame(
        GOOD_ROWS + BAD_ROWS, columns=["transaction_id", "customer_id", "transacted_at", "amount"]
    )
    path = workdir / "transactions.csv"
    frame.to_csv(path, index=False)
    project = DbtProject(workdir)
    project.build(vars={**VARS, "clv_transactions": str(path)})
    return project


@pytest.mark.slow
def test_data_quality_counts_every_bad_row(built):
    quality = built.query("select reason, rows from clv_data_quality")
    assert dict(zip(quality.reason, quality.rows, strict=True)) == EXPECTED_QUALITY


@pytest.mark.slow
def test_cutoffs(built):
    cutoffs = built.query(
        "select cutoff_date, cutoff_role from int_clv__cutoffs order by cutoff_date desc"
    )
    assert [c.date() if hasattr(c, "date") else c for c in cutoffs.cutoff_date] == CUTOFFS
    assert list(cutoffs.cutoff_role) == ["scoring", "validation", "training", "training"]


@pytest.mark.slow
def test_features_match_reference(built):
    usable = _usable()
    customers = sorted({customer for customer, _, _ in usable})
    features = built.query("select * from clv_customer_features")
    features["cutoff_date"] = pd.to_datetime(features["cutoff_date"]).dt.date
    actual = features.set_index(["customer_id", "cutoff_date"])
    expected_keys = set()
    for cutoff in CUTOFFS:
        for customer in customers:
            reference = customer_features(usable, customer, cutoff, horizon_days=30)
            if reference is None:
                continue
            expected_keys.add((customer, cutoff))
            row = actual.loc[(customer, cutoff)]
            for column, value in reference.items():
                assert row[column] == pytest.approx(value, abs=_tolerance(usable, customer)), (
                    customer, cutoff, column)
    assert set(actual.index) == expected_keys
    assert "E" not in set(features.customer_id), "a customer with only bad rows has no features"


@pytest.mark.slow
def test_sequences_and_labels_match_reference(built):
    usable = _usable()
    examples = built.query("select * from clv_training_examples")
    examples["cutoff_date"] = pd.to_datetime(examples["cutoff_date"]).dt.date
    assert len(examples) > 0
    for record in examples.itertuples(index=False):
        row = record._asdict()
        sequence = customer_sequence(usable, row["customer_id"], row["cutoff_date"], 10, 6)
        tolerance = _tolerance(usable, row["customer_id"])
        for column, value in sequence.items():
            assert row[column] == pytest.approx(value, abs=tolerance), (row["customer_id"], column)
        label = customer_label(usable, row["customer_id"], row["cutoff_date"], 30)
        assert row["label_revenue"] == pytest.approx(label, abs=tolerance), row["customer_id"]
    labels = examples.set_index(["customer_id", "cutoff_date"]).label_revenue
    assert labels[("M", date(2023, 5, 31))] == 0  # refunded in full: not a buyer
    scoring = built.query("select customer_id from clv_scoring_examples")
    assert sorted(scoring.customer_id) == sorted({c for c, _, _ in usable})


@pytest.mark.slow
def test_a_net_revenue_of_float_noise_gives_no_huge_ratio(built):
    features = built.query("""
        select customer_id, revenue_last_365d, revenue_ratio_90d_365d, orders_ratio_90d_365d
        from clv_customer_features where cutoff_date = date '2023-06-30'
    """).set_index("customer_id")
    assert features.loc["K", "revenue_last_365d"] == pytest.approx(0, abs=1e-9)
    assert features.loc["K", "revenue_ratio_90d_365d"] == 0
    assert features.loc["R", "revenue_ratio_90d_365d"] == 0
    assert features.revenue_ratio_90d_365d.abs().max() < 10
    assert features.orders_ratio_90d_365d.between(0, 1).all()
