"""The BTYD columns equal lifetimes' summary_data_from_transaction_data (freq "D")."""

from __future__ import annotations

import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data

from clv.synthetic import GeneratorSettings, generate

AS_OF = "2023-06-30"


@pytest.mark.slow
def test_btyd_columns_match_lifetimes(dbt_project, write_csv):
    data = generate(GeneratorSettings(
        n_customers=400, start_date=pd.Timestamp("2022-01-01").date(),
        end_date=pd.Timestamp("2023-12-31").date(), seed=5, bad_rows=False, with_events=False,
    ))
    dbt_project.build(vars={
        "clv_transactions": write_csv(data.transactions),
        "clv_as_of_date": AS_OF, "clv_horizon_days": 60, "clv_training_cutoffs": 1,
    })
    ours = dbt_project.query(
        "select customer_id, frequency, recency_days, t_days, monetary_value "
        f"from clv_customer_features where cutoff_date = date '{AS_OF}' "
        "and first_purchase_date is not null"
    ).set_index("customer_id").sort_index()

    transactions = data.transactions.assign(
        transacted_at=pd.to_datetime(data.transactions.transacted_at),
        amount=data.transactions.amount.astype(float),
    )
    end_of_as_of_day = pd.Timestamp(AS_OF) + pd.Timedelta(days=1)
    purchases = transactions[
        (transactions.amount > 0) & (transactions.transacted_at < end_of_as_of_day)
    ]
    expected = summary_data_from_transaction_data(
        purchases, "customer_id", "transacted_at", monetary_value_col="amount",
        observation_period_end=AS_OF, freq="D",
    ).sort_index()

    assert len(expected) > 100
    assert list(ours.index) == list(expected.index)
    for ours_column, theirs in [("frequency", "frequency"), ("recency_days", "recency"),
                                ("t_days", "T"), ("monetary_value", "monetary_value")]:
        assert ours[ours_column].to_numpy() == pytest.approx(
            expected[theirs].to_numpy(), rel=1e-9, abs=1e-9
        ), ours_column
