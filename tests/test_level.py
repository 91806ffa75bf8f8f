"""The spend level (clv.level) at a scoring run: exact totals, the factor, the correction's
bounds. The rules that estimate the coefficients are tested in test_level_rules.py."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clv import level
from clv.sql_scoring.query import micro_total_sql


def test_micro_units_round_like_a_decimal_cast():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.gamma(0.5, 200.0, 5000),
                             rng.gamma(0.5, 200.0, 2000).astype(np.float32).astype(np.float64),
                             -rng.gamma(0.5, 20.0, 500), [0.0000005, 2.5e-7, 1e9]])
    expected = duckdb.sql("select sum(cast(v as decimal(38, 6))) from "
                          "(select unnest($values) as v)", params={"values": values.tolist()}
                          ).fetchall()[0][0]
    assert Decimal(level.micro_units(values)) / 1_000_000 == expected


def test_micro_totals_do_not_overflow_and_skip_values_beyond_the_bound():
    """A total past 2**63 micro-units (spend in a currency of small units) stays exact, and a
    value that is not finite or beyond MICRO_BOUND counts as 0, as in the compiled SQL."""
    big = np.full(3000, 9.1e12)
    assert level.micro_units(big) == 3000 * 9_100_000_000_000_000_000
    odd = np.array([np.inf, -np.inf, np.nan, 1e13, -9.3e12, 2.5, -1.25])
    assert level.micro_units(odd) == 1_250_000
    total = level.MicroTotal()
    for part in np.array_split(np.concatenate([big, odd]), 7):
        total.add(part)
    assert total.result().total == level.micro_units(big) + 1_250_000
    sql = micro_total_sql("v", "duckdb")
    frame = pd.DataFrame({"v": np.concatenate([big, odd])})  # noqa: F841 (read by DuckDB)
    assert int(duckdb.sql(f"select {sql} from frame").fetchall()[0][0]) == total.result().total


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


def _with_a_wholesaler(seed: int, customers: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Shoppers' values, and one customer whose network value is far above a tenth of the
    total (BG/NBD's half of it)."""
    rng = np.random.default_rng(seed)
    btyd, network = rng.gamma(0.4, 300.0, customers), rng.gamma(0.4, 250.0, customers)
    network[7] = 2.0 * network.sum()
    btyd[7] = network[7] / 2.0
    return btyd, network


def test_a_customer_above_a_tenth_of_a_total_counts_as_a_tenth():
    """Rule 7: 100 shoppers of 1.0 and one wholesaler, 1,000 by the network and 50 by BG/NBD:
    each total counts the wholesaler as a tenth of the capped total (the shoppers' 100 over
    0.9), so the factor is 1, as without the wholesaler, instead of 150 / 1,100: the shoppers'
    values do not move with the network's error on it."""
    btyd, network = np.append(np.ones(100), 50.0), np.append(np.ones(100), 1000.0)
    totals = level.LevelAccumulator()
    totals.add(btyd, network)
    spend = totals.level(1.0)
    assert spend.btyd_total == spend.network_total == pytest.approx(1000.0 / 9.0, rel=1e-15)
    assert (spend.btyd_dominant, spend.network_dominant) == (1, 1)
    assert spend.spend_factor == 1.0
    assert "1 of the network's, 1 of BG/NBD's" in spend.dominance_note()
    assert level.SpendLevel.from_dict(spend.to_dict()) == spend


def test_how_far_a_dominant_customer_lies_does_not_move_the_level():
    """One freak customer that BG/NBD extrapolates (two orders of billions) and the network
    does not: the factor is the same whether its BG/NBD value is a thousand or ten million
    times the others' total; counted as a tenth of the plain total, it scaled every
    customer's value with its size."""
    rng = np.random.default_rng(3)
    shoppers_btyd, shoppers_network = rng.gamma(0.4, 300.0, 300), rng.gamma(0.4, 250.0, 300)
    factors = []
    for freak in (1e3, 1e5, 1e7):
        totals = level.LevelAccumulator()
        totals.add(np.append(shoppers_btyd, freak * shoppers_btyd.sum()),
                   np.append(shoppers_network, 2.0))
        spend = totals.level(1.0)
        assert (spend.btyd_dominant, spend.network_dominant) == (1, 0)
        factors.append(spend.spend_factor)
    assert factors[0] == pytest.approx(factors[2], rel=1e-9)
    plain = (shoppers_btyd.sum() / 0.9) / (shoppers_network.sum() + 2.0)
    assert factors[0] == pytest.approx(plain, rel=1e-6)


def test_customers_holding_the_whole_total_leave_it_in_full():
    """Ten customers or fewer with a value are each above a tenth: there is no rest to scale,
    so the plain totals decide."""
    totals = level.LevelAccumulator()
    totals.add(np.array([3.0, 5.0, 0.0]), np.array([2.0, 2.0, 4.0]))
    spend = totals.level(1.0)
    assert (spend.btyd_total, spend.network_total) == (8.0, 8.0)
    assert spend.spend_factor == 1.0


    # no customer above a tenth: the plain totals, and no note
    even = level.LevelAccumulator()
    even.add(np.ones(100), np.full(100, 2.0))
    assert even.level(1.0).spend_factor == 0.5 and even.level(1.0).dominance_note() == ""


def test_capped_totals_do_not_depend_on_batching_or_order():
    """The largest values are kept across batches: the wholesaler counts as a tenth wherever
    its batch falls, and the spooled totals of a warehouse are the same."""
    from clv.warehouse.duckdb import DuckDBWarehouse

    btyd, network = _with_a_wholesaler(5)
    whole = level.LevelAccumulator()
    whole.add(btyd, network)
    rng = np.random.default_rng(6)
    pieces = level.LevelAccumulator()
    for chunk in np.array_split(rng.permutation(len(btyd)), 9):
        pieces.add(btyd[chunk], network[chunk])
    assert whole.level(0.9) == pieces.level(0.9) and whole.level(0.9).network_dominant == 1
    table = pa.table({"btyd_expected_spend": btyd, "network_clv": network})
    with duckdb.connect() as connection:
        spool, totals = DuckDBWarehouse(connection).totals(
            pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=500)),
            ["btyd_expected_spend", "network_clv"])
        spool.close()
    assert level.from_totals(totals["btyd_expected_spend"], totals["network_clv"], 0.9) == (
        whole.level(0.9))


@pytest.mark.parametrize(("correction", "weight", "wholesaler"),
                         [(0.8, 0.0, False), (0.35, 0.55, False), (0.8, 0.0, True),
                          (0.35, 0.55, True)])
@pytest.mark.parametrize("dialect_name", ["duckdb", "spark"])
def test_the_scoring_query_computes_the_same_spend_factor(correction, weight, wholesaler,
                                                          dialect_name):
    """clv.sql_scoring mirrors the factor in SQL: the same value from the same rows, with a
    customer above a tenth of the totals as well (rule 7), in the query's form with a
    materialized total (DuckDB's) and with window totals (Spark's, run here by DuckDB)."""
    from clv.sql_scoring.dialects import dialect
    from clv.sql_scoring.query import _Query, _spend_level, dominant_sql

    if wholesaler:
        btyd, network = _with_a_wholesaler(4)
    else:
        rng = np.random.default_rng(4)
        btyd, network = rng.gamma(0.4, 300.0, 3000), rng.gamma(0.4, 250.0, 3000)
    totals = level.LevelAccumulator()
    totals.add(btyd, network)
    expected = totals.level(correction, weight)
    assert expected.network_dominant == int(wholesaler)
    query = _Query(dialect(dialect_name))
    query.add("scores", ["btyd_expected_spend", "network_clv"], source="scored")
    _spend_level(query, correction, weight)
    with duckdb.connect() as connection:
        connection.register("scored", {"btyd_expected_spend": btyd, "network_clv": network})
        factors = connection.sql(query.text()).df().spend_factor.unique()
        # the query the SQL scoring step reads the totals' dominant part with
        network_total = totals.network.result().total
        btyd_total = totals.btyd.result().total
        counted = connection.sql(dominant_sql(
            {"btyd_expected_spend": btyd_total, "network_clv": network_total}, "duckdb",
        ).format(relation="scored")).fetchall()[0]
    assert len(factors) == 1 and factors[0] == expected.spend_factor
    assert (int(counted[0] or 0), counted[1]) == (totals.btyd.result().dominant_sum,
                                                  totals.btyd.result().dominant)
    assert (int(counted[2] or 0), counted[3]) == (totals.network.result().dominant_sum,
                                                  totals.network.result().dominant)
