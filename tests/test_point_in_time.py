"""Point-in-time correctness: rows after a cutoff change nothing at that cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

VARS = {
    "clv_as_of_date": "2023-12-31",
    "clv_horizon_days": 60,
    "clv_training_cutoffs": 3,
    "clv_cutoff_spacing_days": 45,
    "clv_period_days": 15,
    "clv_sequence_periods": 8,
}
# Training cutoffs: 2023-11-01, 2023-09-17, 2023-08-03.
EARLIEST_CUTOFF = "2023-08-03"
FEATURE_TABLES = ["clv_customer_features", "clv_customer_sequences"]


def _random_transactions(rng: np.random.Generator, n_customers: int, start: str, end: str,
                         prefix: str = "T") -> pd.DataFrame:
    days = (pd.Timestamp(end) - pd.Timestamp(start)).days
    n = n_customers * 6
    frame = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in rng.integers(0, n_customers, n)],
        "transacted_at": pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days * 24, n), "h"),
        "amount": np.round(rng.lognormal(3, 1, n) * np.where(rng.random(n) < 0.1, -0.5, 1), 2),
    })
    frame.insert(0, "transaction_id", [f"{prefix}{i}" for i in range(n)])
    return frame


def _snapshot(project, table: str) -> pd.DataFrame:
    frame = project.query(
        f"select * from {table} where cutoff_date <= date '{EARLIEST_CUTOFF}' order by all"
    )
    return frame.reset_index(drop=True)


@pytest.mark.slow
def test_rows_after_a_cutoff_change_no_feature_at_it(dbt_project, write_csv):
    rng = np.random.default_rng(7)
    history = _random_transactions(rng, 60, "2023-01-01", "2023-08-03 23:59")
    dbt_project.build(vars={**VARS, "clv_transactions": write_csv(history, "before.csv")})
    before = {table: _snapshot(dbt_project, table) for table in FEATURE_TABLES}
    labels_sql = "select sum(label_revenue) as total from clv_training_examples"
    labels_before = dbt_project.query(labels_sql)

    # Later rows: existing customers buy again and refund, new customers arrive.
    later = _random_transactions(rng, 90, "2023-08-04", "2023-12-31", prefix="L")
    combined = pd.concat([history, later], ignore_index=True)
    dbt_project.build(vars={**VARS, "clv_transactions": write_csv(combined, "after.csv")})

    for table in FEATURE_TABLES:
        after = _snapshot(dbt_project, table)
        assert len(before[table]) > 0
        pd.testing.assert_frame_equal(before[table], after, check_dtype=False)
    labels_after = dbt_project.query(labels_sql)
    assert labels_after.total[0] > labels_before.total[0], "labels must see the later rows"
