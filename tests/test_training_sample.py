"""Training reads a uniform, repeatable sample of the example table from the warehouse, so its
memory depends on the sample caps rather than on the number of customers. The sample is the
md5 bucket rule of :mod:`clv.warehouse` (``bucket_of`` in Python), the same on every engine."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from clv import hybrid
from clv.artifacts import json_safe
from clv.config import CUTOFF_COLUMN, ID_COLUMN, LABEL_COLUMN, TrainSettings
from clv.data import SYNTHETIC_STATIC_FEATURES, feature_spec, stable_floats, synthetic_examples
from clv.level import LEVEL_CORRECTION_BOUNDS, btyd_level_correction
from clv.pipeline import scoring
from clv.pipeline.settings import RunSettings
from clv.pipeline.training import read_examples, sample_limits
from clv.warehouse import SAMPLE_BUCKETS, DuckDBWarehouse, bucket_of

CHANNELS = ("orders", "revenue", "active_days")
RUN = RunSettings(model_dir=Path("unused"), retrain="auto", horizon_days=365, period_days=30,
                  sequence_periods=12, seed=42, static_features=SYNTHETIC_STATIC_FEATURES,
                  channels=CHANNELS)
HORIZON = 90


def _stored(connection: duckdb.DuckDBPyConnection, name: str, table: pa.Table):
    connection.register(f"{name}_arrow", table)
    connection.execute(f"create table {name} as select * from {name}_arrow")
    connection.unregister(f"{name}_arrow")
    return connection.table(name)  # a DuckDB relation, as dbt.ref() hands a Python model


@pytest.fixture
def examples():
    connection = duckdb.connect()
    table = synthetic_examples(n_customers=4000, n_cutoffs=4, seed=1)
    warehouse = DuckDBWarehouse(connection)
    return warehouse, _stored(connection, "examples", table), table


def _per_cutoff(table: pa.Table) -> dict:
    counts = pc.value_counts(table.column(CUTOFF_COLUMN)).to_pylist()
    return {row["values"]: row["counts"] for row in counts}


def _keys(table: pa.Table) -> set:
    return set(zip(table.column(ID_COLUMN).to_pylist(), table.column(CUTOFF_COLUMN).to_pylist(),
                   strict=True))


def test_below_the_caps_every_row_is_read(examples):
    warehouse, relation, table = examples
    read = read_examples(warehouse, relation, RUN, TrainSettings())
    assert read.num_rows == table.num_rows
    assert read.column_names[:3] == ["customer_id", CUTOFF_COLUMN, LABEL_COLUMN]
    # only what training uses: no string columns, every feature column
    assert "country" not in read.column_names
    assert set(feature_spec(table.schema, SYNTHETIC_STATIC_FEATURES, CHANNELS).features) <= set(
        read.column_names)


def test_above_the_caps_a_repeatable_uniform_sample_is_read(examples):
    warehouse, relation, table = examples
    settings = TrainSettings(max_train_rows=3000, max_validation_rows=1000)
    first = read_examples(warehouse, relation, RUN, settings)
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
    again = read_examples(warehouse, relation, RUN, settings)
    assert again.equals(first)

    # exactly the rows whose md5 bucket of (customer_id, cutoff_date) is below their cutoff's
    # limit, as bucket_of computes it in Python
    limits = sample_limits(_per_cutoff(table), settings)
    assert limits is not None and set(limits) == {latest.isoformat(), ""}
    expected = {(customer, cutoff) for customer, cutoff in _keys(table)
                if bucket_of(customer, cutoff) < limits.get(cutoff.isoformat(), limits[""])}
    assert _keys(first) == expected

    # the same rows whatever order the table was written in
    shuffled = table.take(pa.array(np.random.default_rng(3).permutation(table.num_rows)))
    other = _stored(warehouse.connection, "examples_shuffled", shuffled)
    assert read_examples(warehouse, other, RUN, settings).equals(first)


def test_level_correction_is_bgnbd_bias_on_validation_and_bounded():
    def rows(actual, predicted):
        return [{"predictor": "network", "actual_total": actual, "predicted_total": 1.0},
                {"predictor": "bgnbd_gamma_gamma", "actual_total": actual,
                 "predicted_total": predicted}]

    assert LEVEL_CORRECTION_BOUNDS == (0.5, 2.0)
    assert btyd_level_correction(rows(90.0, 100.0)) == pytest.approx(0.9)
    assert btyd_level_correction(rows(1000.0, 100.0)) == 2.0
    assert btyd_level_correction(rows(1.0, 100.0)) == 0.5
    assert btyd_level_correction(rows(10.0, 0.0)) == 1.0


SCORING_SQL = """
    create table {name} as
    select 'c' || lpad(i::varchar, 6, '0') as customer_id, i % 4 as frequency,
           i % 50 as recency_days, 100 + i % 300 as t_days, 10.0 + i % 7 as monetary_value
    from range(16000) as numbers(i)
    order by {order}
"""


def _fit(table: pa.Table) -> dict:
    """BG/NBD + Gamma-Gamma on ``table`` as the scoring step fits it: rows in customer_id order,
    floats rounded; as a comparable dict (an unknown log-likelihood is NaN)."""
    return json_safe(hybrid.fit(stable_floats(table.sort_by(ID_COLUMN))).to_dict())


@pytest.mark.slow
def test_scoring_fits_btyd_on_a_repeatable_sample_of_large_tables(monkeypatch):
    connection = duckdb.connect()
    connection.execute(SCORING_SQL.format(name="scoring", order="customer_id"))
    warehouse = DuckDBWarehouse(connection)
    relation = connection.table("scoring")
    full = warehouse.read(relation, [ID_COLUMN, *hybrid.BTYD_INPUTS])

    fit, rows = scoring.fit_btyd(warehouse, relation, 16000)
    assert rows == 16000
    assert json_safe(fit.to_dict()) == _fit(full)

    monkeypatch.setattr(scoring, "BTYD_FIT_ROWS", 2000)
    sample_fit, sample_rows = scoring.fit_btyd(warehouse, relation, 16000)
    assert 1700 <= sample_rows <= 2300
    # the customers whose md5 bucket of customer_id is below the limit, and only their
    # BTYD summary columns
    limit = math.ceil(SAMPLE_BUCKETS * 2000 / 16000)
    keep = [bucket_of(customer) < limit for customer in full.column(ID_COLUMN).to_pylist()]
    expected = full.filter(pa.array(keep))
    assert sample_rows == expected.num_rows
    assert json_safe(sample_fit.to_dict()) == _fit(expected) != json_safe(fit.to_dict())
    # repeatable, and independent of the order the table was written in
    again = scoring.fit_btyd(warehouse, relation, 16000)
    assert again[1] == sample_rows and json_safe(again[0].to_dict()) == _fit(expected)
    connection.execute(SCORING_SQL.format(name="scoring_reversed", order="customer_id desc"))
    reversed_fit, reversed_rows = scoring.fit_btyd(
        warehouse, connection.table("scoring_reversed"), 16000)
    assert reversed_rows == sample_rows
    assert json_safe(reversed_fit.to_dict()) == _fit(expected)
