"""Training reads a uniform, repeatable sample of the examples, so its memory depends on the
sample caps rather than on the number of customers: the example table itself holds only that
sample (int_clv__training_sample), by the md5 bucket rule of :mod:`clv.warehouse` (``bucket_of``
in Python), the same on every engine."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from conftest import DbtProject

from clv import hybrid
from clv.artifacts import json_safe
from clv.config import CUTOFF_COLUMN, ID_COLUMN, LABEL_COLUMN
from clv.data import SYNTHETIC_STATIC_FEATURES, feature_spec, stable_floats, synthetic_examples
from clv.pipeline import scoring
from clv.pipeline.settings import RunSettings
from clv.pipeline.training import read_examples
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


def test_training_reads_every_row_of_the_examples_and_only_its_inputs(examples):
    warehouse, relation, table = examples
    read = read_examples(warehouse, relation, RUN)
    assert read.num_rows == table.num_rows
    assert read.column_names[:3] == ["customer_id", CUTOFF_COLUMN, LABEL_COLUMN]
    # only what training uses: no string columns, every feature column
    assert "country" not in read.column_names
    assert set(feature_spec(table.schema, SYNTHETIC_STATIC_FEATURES, CHANNELS).features) <= set(
        read.column_names)


def _limit(wanted: int, available: int) -> int:
    """The documented rule of int_clv__training_sample: ceil(1e6 * wanted / available), capped."""
    return min(SAMPLE_BUCKETS, math.ceil(SAMPLE_BUCKETS * wanted / max(available, 1)))


def _examples(project: DbtProject) -> pd.DataFrame:
    rows = project.query("select * from clv_training_examples order by customer_id, cutoff_date")
    rows["cutoff_date"] = rows["cutoff_date"].dt.date  # bucket_of reads its ISO text
    return rows


CAPS = {"clv_max_train_rows": 1000, "clv_max_validation_rows": 500}


@pytest.mark.slow
def test_above_the_caps_the_examples_hold_a_uniform_md5_sample_of_unchanged_rows(tmp_path):
    full_project, capped_project = DbtProject(tmp_path / "full"), DbtProject(tmp_path / "capped")
    full_project.build()
    capped_project.build(vars=CAPS)
    full, capped = _examples(full_project), _examples(capped_project)

    counts = full.groupby("cutoff_date").size()
    validation = counts.index.max()
    assert counts.sum() - counts[validation] > 1050 and counts[validation] > 500  # caps bind
    limits = {cutoff: _limit(500, n) if cutoff == validation
              else _limit(1050, counts.sum() - counts[validation])
              for cutoff, n in counts.items()}
    keep = [bucket_of(customer, cutoff) < limits[cutoff]
            for customer, cutoff in zip(full["customer_id"], full["cutoff_date"], strict=True)]
    expected = full[keep].reset_index(drop=True)
    # exactly the rows whose md5 bucket of (customer_id, cutoff_date) is below their cutoff's
    # limit, as bucket_of computes it in Python, each row as the full table has it
    pd.testing.assert_frame_equal(capped, expected)
    sampled = capped.groupby("cutoff_date").size()
    assert 400 <= sampled[validation] <= 600
    assert 900 <= sampled.sum() - sampled[validation] <= 1200
    # uniform: the sample's mean label is close to the full table's
    assert capped["label_revenue"].mean() == pytest.approx(full["label_revenue"].mean(), rel=0.2)

    # with a single training cutoff (training holds out customers itself) one limit covers
    # both caps
    single = DbtProject(tmp_path / "single")
    single.build(vars={**CAPS, "clv_training_cutoffs": 1})
    rows = _examples(single)
    starts = single.query("select customer_id, min(activity_date) as first_day "
                          "from int_clv__customer_days group by customer_id")
    cutoff = rows["cutoff_date"].iloc[0]
    eligible = starts[starts["first_day"].dt.date <= cutoff]["customer_id"]
    limit = _limit(1575, len(eligible))
    assert limit < SAMPLE_BUCKETS
    assert sorted(rows["customer_id"]) == sorted(c for c in eligible
                                                 if bucket_of(c, cutoff) < limit)


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
