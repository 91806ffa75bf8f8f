"""Data-quality accounting on generated data with a known number of bad rows of each kind."""

from __future__ import annotations

import pandas as pd
import pytest

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
    quality = dbt_project.query("select reason, rows from clv_data_quality")
    assert dict(zip(quality.reason, quality.rows, strict=True)) == dirty.bad_row_counts
    dirty_features = dbt_project.query("select * from clv_customer_features order by all")
    pd.testing.assert_frame_equal(clean_features, dirty_features)
