"""The training step's checks on the examples it is given: each says which var to change."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from clv.config import TrainSettings
from clv.pipeline.settings import RunSettings
from clv.pipeline.training import trainable_examples

RUN = RunSettings(model_dir=Path("unused"), retrain="auto", horizon_days=365, period_days=30,
                  sequence_periods=12, seed=42, static_features=("frequency",),
                  channels=("orders",))


def examples(history_days: dict[date, int], customers: int = 200) -> pa.Table:
    """``customers`` per cutoff, the oldest ``history_days[cutoff]`` days old, every other one a
    repeat buyer."""
    rows = [(f"C{i}", cutoff, i % 2, 10.0 * (i % 2), history * i // (customers - 1))
            for cutoff, history in history_days.items() for i in range(customers)]
    names = ("customer_id", "cutoff_date", "frequency", "monetary_value", "t_days")
    return pa.table({name: [row[k] for row in rows] for k, name in enumerate(names)})


def test_a_latest_training_cutoff_with_a_period_of_history_trains():
    """The latest cutoff validates; the one before it is the latest the network learns from."""
    table = examples({date(2011, 1, 31): 60, date(2011, 1, 1): 30, date(2010, 12, 1): 0})
    assert trainable_examples(table, RUN, TrainSettings()).num_rows == table.num_rows


def test_a_training_cutoff_younger_than_one_period_stops_though_the_validation_one_is_not():
    """Four months of data and a horizon of 90 days: the validation cutoff has 30 days of
    history, the training cutoff before it 8, and a network trained there learned nothing of
    how long a customer has been silent."""
    table = examples({date(2011, 1, 31): 30, date(2011, 1, 9): 8})
    with pytest.raises(ValueError, match=r"2011-01-09, has 8 days of history.*clv_period_days"):
        trainable_examples(table, RUN, TrainSettings())


def test_a_latest_cutoff_younger_than_one_period_stops_naming_the_horizon():
    """One year of history and a horizon of a year leave a training cutoff eight days after
    the first order: a network trained there scored real customers at many times their spend."""
    table = examples({date(2010, 12, 9): 8})
    with pytest.raises(ValueError, match=r"2010-12-09, has 8 days of history.*clv_period_days, "
                                         r"30.*Lower clv_horizon_days"):
        trainable_examples(table, RUN, TrainSettings())


def test_too_few_rows_at_the_datas_start_name_the_horizon():
    """Six months of data and a horizon of 180 days: the one cutoff is the day after the first
    order, with ten customers. More cutoffs would fall before the data; a shorter horizon moves
    them into it. With a long history before the cutoffs, the shop is what is small."""
    young = examples({date(2024, 1, 2): 1}, customers=10)
    with pytest.raises(ValueError, match=r"only 10 rows \(10 customer\(s\) at 1 training "
                                         r"cutoffs\).*latest cutoff, 2024-01-02, has 1 days of "
                                         r"history.*Lower clv_horizon_days") as info:
        trainable_examples(young, dataclasses.replace(RUN, horizon_days=180), TrainSettings())
    assert "clv_training_cutoffs" not in str(info.value)
    small = examples({date(2024, 1, 2): 400}, customers=10)
    with pytest.raises(ValueError, match=r"only 10 rows .*more customers.*"
                                         r"raise clv_training_cutoffs"):
        trainable_examples(small, dataclasses.replace(RUN, horizon_days=180), TrainSettings())


def test_single_purchases_at_the_first_day_name_the_horizon():
    """90 days of data and a horizon of 90: the only training cutoff is the data's first day,
    where nobody has bought twice; lowering the horizon is the fix nearest to hand."""
    table = examples({date(2011, 1, 1): 0}).set_column(2, "frequency", pa.array([0] * 200))
    with pytest.raises(ValueError, match=r"latest cutoff, 2011-01-01, has 0 days of history "
                                         r"before it: lower clv_horizon_days"):
        trainable_examples(table, RUN, TrainSettings())


def test_an_extra_feature_without_a_numeric_value_stops_naming_the_var():
    """A customer attribute added as a model input with no value in any training row (every
    cell 'n/a', or '52,9' without clv_decimal_separator) would be a constant the network
    learns nothing of (an infinity is no value either); the sign-up date, null without a
    sign-up column, is no such input."""
    table = examples({date(2011, 1, 31): 60, date(2011, 1, 1): 30})
    run = dataclasses.replace(RUN, feature_groups={
        "attributes": ("days_since_signup", "loyalty_score", "is_vip")})
    nulls = [None] * (table.num_rows - 1)
    table = (table.append_column("days_since_signup", pa.nulls(table.num_rows, pa.float64()))
             .append_column("loyalty_score", pa.array([float("inf"), *nulls]))
             .append_column("is_vip", pa.array([1.0, *nulls])))
    with pytest.raises(ValueError, match=r"^clv_extra_features: loyalty_score has no numeric "
                                         r"value among the 400 training rows .*decimal comma"):
        trainable_examples(table, run, TrainSettings())
    given = table.set_column(table.schema.get_field_index("loyalty_score"), "loyalty_score",
                             pa.array([55.0] * table.num_rows))
    assert trainable_examples(given, run, TrainSettings()).num_rows == table.num_rows
