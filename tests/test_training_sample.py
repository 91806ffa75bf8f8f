"""Training reads a uniform, repeatable sample of the example table from the warehouse, so its
memory depends on the sample caps rather than on the number of customers."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from clv.config import CUTOFF_COLUMN, LABEL_COLUMN, TrainSettings
from clv.data import feature_spec, synthetic_examples
from clv.pipeline import btyd_level_correction, read_examples


@pytest.fixture
def examples():
    connection = duckdb.connect()
    table = synthetic_examples(n_customers=4000, n_cutoffs=4, seed=1)
    connection.register("examples_arrow", table)
    connection.execute("create table examples as select * from examples_arrow")
    return connection.table("examples"), table


def _per_cutoff(table: pa.Table) -> dict:
    counts = pc.value_counts(table.column(CUTOFF_COLUMN)).to_pylist()
    return {row["values"]: row["counts"] for row in counts}


def test_below_the_caps_every_row_is_read(examples):
    relation, table = examples
    read = read_examples(relation, TrainSettings())
    assert read.num_rows == table.num_rows
    assert read.column_names[:3] == ["customer_id", CUTOFF_COLUMN, LABEL_COLUMN]
    # only what training uses: no string columns, every feature column
    assert "country" not in read.column_names
    assert set(feature_spec(table.schema).features) <= set(read.column_names)


def test_above_the_caps_a_repeatable_uniform_sample_is_read(examples):
    relation, table = examples
    settings = TrainSettings(max_train_rows=3000, max_validation_rows=1000)
    first = read_examples(relation, settings)
    counts = _per_cutoff(first)
    latest = max(counts)
    train_rows = sum(n for cutoff, n in counts.items() if cutoff != latest)
    # 12,000 training rows sampled to ~3,000 * 1.05 and 4,000 validation rows to ~1,000
    assert 2800 <= train_rows <= 3500
    assert 850 <= counts[latest] <= 1150
    # every training cutoff is sampled at about the same rate
    assert all(900 <= n <= 1200 for cutoff, n in counts.items() if cutoff != latest)
    # uniform: the sample's mean label is close to the full table's
    full_mean = np.mean(table.column(LABEL_COLUMN).to_numpy())
    assert np.mean(first.column(LABEL_COLUMN).to_numpy()) == pytest.approx(full_mean, rel=0.15)
    again = read_examples(relation, settings)
    assert again.equals(first)


def test_level_correction_is_bgnbd_bias_on_validation_and_bounded():
    def rows(actual, predicted):
        return [{"predictor": "network", "actual_total": actual, "predicted_total": 1.0},
                {"predictor": "bgnbd_gamma_gamma", "actual_total": actual,
                 "predicted_total": predicted}]

    assert btyd_level_correction(rows(90.0, 100.0)) == pytest.approx(0.9)
    assert btyd_level_correction(rows(1000.0, 100.0)) == 2.0
    assert btyd_level_correction(rows(1.0, 100.0)) == 0.5
    assert btyd_level_correction(rows(10.0, 0.0)) == 1.0


def test_scoring_fits_btyd_on_a_repeatable_sample_of_large_tables(monkeypatch):
    from clv import pipeline

    connection = duckdb.connect()
    connection.execute("""
        create table scoring as
        select 'c' || lpad(i::varchar, 6, '0') as customer_id, i % 4 as frequency,
               i % 50 as recency_days, 100 + i % 300 as t_days, 10.0 + i % 7 as monetary_value
        from range(16000) as numbers(i)
        order by customer_id
    """)
    relation = connection.table("scoring")
    assert pipeline._btyd_fit_rows(relation).num_rows == 16000
    monkeypatch.setattr(pipeline, "BTYD_FIT_ROWS", 2000)
    sample = pipeline._btyd_fit_rows(relation)
    assert 1700 <= sample.num_rows <= 2300
    assert sample.column_names == ["frequency", "recency_days", "t_days", "monetary_value"]
    assert pipeline._btyd_fit_rows(relation).equals(sample)
