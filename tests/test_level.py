"""The spend level (clv.level) at a scoring run: exact totals, the factor, the correction's
bounds. The rules that estimate the coefficients are tested in test_level_rules.py."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pytest

from clv import level


def test_micro_units_round_like_a_decimal_cast():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.gamma(0.5, 200.0, 5000),
                             rng.gamma(0.5, 200.0, 2000).astype(np.float32).astype(np.float64),
                             -rng.gamma(0.5, 20.0, 500), [0.0000005, 2.5e-7, 1e9]])
    expected = duckdb.sql("select sum(cast(v as decimal(38, 6))) from "
                          "(select unnest($values) as v)", params={"values": values.tolist()}
                          ).fetchall()[0][0]
    assert Decimal(level.micro_units(values)) / 1_000_000 == expected


def test_totals_do_not_depend_on_batching_or_order():
    rng = np.random.default_rng(1)
    btyd, network = rng.gamma(0.4, 300.0, 10_000), rng.gamma(0.4, 250.0, 10_000)
    whole = level.LevelAccumulator()
    whole.add(btyd, network)
    pieces = level.LevelAccumulator()
    order = rng.permutation(10_000)
    for chunk in np.array_split(order, 7):
        pieces.add(btyd[chunk], network[chunk])
    assert whole.level(0.9) == pieces.level(0.9)


def test_spend_factor_makes_the_total_btyd_times_the_correction():
    rng = np.random.default_rng(2)
    btyd, network = rng.gamma(0.4, 300.0, 1000), rng.gamma(0.4, 250.0, 1000)
    totals = level.LevelAccumulator()
    totals.add(btyd, network)
    spend = totals.level(0.8)
    assert level.apply(network, spend).sum() == pytest.approx(0.8 * btyd.sum(), rel=1e-9)
    assert level.SpendLevel.from_dict(spend.to_dict()) == spend
    assert level.SpendLevel(10.0, 0.0, 1.0).spend_factor == 1.0  # nothing to scale


def test_spend_factor_adds_the_networks_own_total_at_its_weight():
    rng = np.random.default_rng(3)
    btyd, network = rng.gamma(0.4, 300.0, 1000), rng.gamma(0.4, 250.0, 1000)
    totals = level.LevelAccumulator()
    totals.add(btyd, network)
    spend = totals.level(0.3, 0.6)
    assert level.apply(network, spend).sum() == pytest.approx(
        0.3 * btyd.sum() + 0.6 * network.sum(), rel=1e-9)
    assert level.SpendLevel.from_dict(spend.to_dict()) == spend
    # a scoring run saved before the network's weight existed
    saved = {k: v for k, v in spend.to_dict().items() if k != "network_level_weight"}
    assert level.SpendLevel.from_dict(saved).network_level_weight == 0.0


@pytest.mark.parametrize(("actual", "predicted", "expected"), [
    (120.0, 100.0, 1.2), (1000.0, 100.0, 2.0), (10.0, 100.0, 0.5), (0.0, 100.0, 1.0),
    (100.0, 0.0, 1.0)])
def test_level_correction_is_bounded_actual_over_btyd(actual, predicted, expected):
    evaluation = [{"predictor": "network", "actual_total": actual, "predicted_total": 1.0},
                  {"predictor": "bgnbd_gamma_gamma", "actual_total": actual,
                   "predicted_total": predicted}]
    assert level.btyd_level_correction(evaluation) == pytest.approx(expected)
    assert level.btyd_level_correction(evaluation[:1]) == 1.0


@pytest.mark.parametrize(("correction", "weight"), [(0.8, 0.0), (0.35, 0.55)])
def test_the_scoring_query_computes_the_same_spend_factor(correction, weight):
    """clv.sql_scoring mirrors the factor in SQL: the same value from the same rows."""
    from clv.sql_scoring.dialects import dialect
    from clv.sql_scoring.query import _Query, _spend_level

    rng = np.random.default_rng(4)
    btyd, network = rng.gamma(0.4, 300.0, 3000), rng.gamma(0.4, 250.0, 3000)
    totals = level.LevelAccumulator()
    totals.add(btyd, network)
    expected = totals.level(correction, weight).spend_factor
    query = _Query(dialect("duckdb"))
    query.add("scores", ["btyd_expected_spend", "network_clv"], source="scored")
    _spend_level(query, correction, weight)
    with duckdb.connect() as connection:
        connection.register("scored", {"btyd_expected_spend": btyd, "network_clv": network})
        factors = connection.sql(query.text()).df().spend_factor.unique()
    assert len(factors) == 1 and factors[0] == pytest.approx(expected, rel=1e-12)
