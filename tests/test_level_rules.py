"""The rules behind the spend level (clv.level): windows, sources, backtests, shrinkage, the
network's share and the seasonal reference, each against a plain recomputation on hand-made
windows."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, timedelta

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from clv import level
from clv.level import Window

AS_OF = date(2023, 12, 31)


def _windows(horizon: int, spacing: int, count: int, btyd_ratios, network_ratios,
             first: date = date(2021, 1, 1), as_of: date = AS_OF) -> list[Window]:
    """Windows as_of - horizon - k * spacing (k = 0 the latest) with actual/predicted ratios
    given latest first; 1000 customers and an actual total of 1000 each."""
    windows = []
    for k in range(count):
        cutoff = as_of - timedelta(days=horizon + k * spacing)
        windows.append(Window(cutoff=cutoff, customers=1000,
                              history_days=(cutoff - first).days, actual_total=1000.0,
                              btyd_total=1000.0 / btyd_ratios[k],
                              network_total=1000.0 / network_ratios[k]))
    return windows


def _ridge_share(targets, sources, weights, prior) -> float:
    """lambda by numerical minimisation of the ridge objective, clipped to [0, 1]."""
    def objective(share: float) -> float:
        residual = np.asarray(targets) - share * np.asarray(sources)
        return float(np.sum(np.asarray(weights) * residual**2)
                     + level.SHRINK_RIDGE * (share - prior) ** 2)

    return float(np.clip(minimize_scalar(objective, bounds=(-5, 5), method="bounded",
                                         options={"xatol": 1e-10}).x, 0.0, 1.0))


def test_carried_share_is_the_ridge_least_squares_fit():
    rng = np.random.default_rng(0)
    for prior in (0.0, 1.0):
        sources = rng.normal(0, 0.3, 6)
        targets = 0.6 * sources + rng.normal(0, 0.05, 6)
        weights = rng.uniform(0.2, 1.0, 6)
        assert level.carried_share(targets, sources, weights, prior) == pytest.approx(
            _ridge_share(targets, sources, weights, prior), abs=1e-6)
    # no backtest: the prior decides
    empty = np.array([])
    assert level.carried_share(empty, empty, empty, 0.0) == 0.0
    assert level.carried_share(empty, empty, empty, 1.0) == 1.0
    # a bias that flips sign from window to window is not carried
    flips = np.array([0.3, -0.3, 0.3, -0.3])
    assert level.carried_share(flips, -flips, np.ones(4), 0.0) == 0.0


def test_source_is_the_window_one_lag_back_and_fully_observed():
    windows = _windows(91, 23, 8, [1.0] * 8, [1.0] * 8, first=date(2023, 1, 1))
    latest = windows[0]
    assert level.source_window(windows, AS_OF, 91, 91) is latest
    # for the latest window itself: the cutoff 91 days earlier is k = 4 (92 days): closest
    assert level.source_window(windows, latest.cutoff, 91, 91) is windows[4]
    # nothing within half a spacing of a year back
    assert level.source_window(windows, AS_OF, 365, 91) is None
    # a window whose label window has not ended by the target date is never a source
    assert level.source_window(windows, windows[1].cutoff, 0, 91) is None


def test_stable_bias_is_carried_and_unstable_bias_is_shrunk_away():
    horizon, spacing = 365, 91
    stable = _windows(horizon, spacing, 8, [0.8] * 8, [1.0] * 8)
    estimate = level.estimate_level(stable, horizon, AS_OF)
    pairs = estimate.btyd.pairs
    assert len(pairs) == 4 and all(p["source_log_ratio"] == pytest.approx(math.log(0.8))
                                   for p in pairs)
    # the same recomputed by hand: maturity = history / horizon, pair weight = the smaller
    weights = [min(1.0, (date.fromisoformat(p["source"]) - date(2021, 1, 1)).days / horizon)
               for p in pairs]
    share = _ridge_share([math.log(0.8)] * 4, [math.log(0.8)] * 4, weights, 1.0)
    assert estimate.btyd.carried_share == pytest.approx(share, abs=1e-6)
    assert estimate.btyd.correction == pytest.approx(0.8 ** share)
    unstable = _windows(horizon, spacing, 8, [0.7, 1.3, 1.3, 1.3, 1.3, 0.7, 0.7, 0.7],
                        [1.0] * 8)
    flipped = level.estimate_level(unstable, horizon, AS_OF)
    assert flipped.btyd.carried_share < 0.1
    assert abs(math.log(flipped.btyd.correction)) < 0.05


def test_network_share_grows_with_evidence_and_accuracy():
    def backtest(mse: float, evidence: float) -> level.Backtest:
        return level.Backtest("x", [], 1.0, mse, evidence, None, 0.0, 1.0)

    assert level.network_share(backtest(0.01, 3.0), backtest(float("inf"), 0.0)) == 0.0
    assert level.network_share(backtest(0.01, 3.0), backtest(0.01, 3.0)) == pytest.approx(
        3 / 4 * 0.5)
    assert level.network_share(backtest(0.04, 3.0), backtest(0.01, 3.0)) == pytest.approx(
        3 / 4 * 0.8)
    # BG/NBD without a usable backtest error: the network's share is its trust alone
    assert level.network_share(backtest(float("inf"), 0.0), backtest(0.01, 1.0)) == 0.5


def test_the_network_is_backtested_only_on_windows_it_was_not_trained_on():
    # the network fits its training windows' totals (ratio 1) and misses the validation
    # window by 5%; BG/NBD's bias swings from window to window
    windows = _windows(365, 91, 8, [1.1, 0.9, 1.12, 0.92, 0.9, 1.1, 0.88, 1.1],
                       [1.05] + [1.0] * 7)
    windows = [dataclasses.replace(w, network_trained_on=k > 0) for k, w in enumerate(windows)]
    estimate = level.estimate_level(windows, 365, AS_OF)
    validation = windows[0]
    assert [p["target"] for p in estimate.network.pairs] == [validation.cutoff.isoformat()]
    assert len(estimate.btyd.pairs) == 4  # BG/NBD is fitted at each cutoff, trained on none
    source = level.source_window(windows, validation.cutoff, 365, 365)
    assert estimate.network.evidence == pytest.approx(
        min(validation.maturity(365), source.maturity(365)))
    assert estimate.network.mean_squared_error == pytest.approx(math.log(1.05) ** 2, rel=1e-6)
    # counting its training windows, where its error is 0 whatever it does on new data, the
    # network would take most of the total
    seen = level.estimate_level([dataclasses.replace(w, network_trained_on=False)
                                 for w in windows], 365, AS_OF)
    assert len(seen.network.pairs) == 4
    assert estimate.network_share < 0.5 < seen.network_share


def test_estimate_combines_the_two_totals_as_the_spend_factor_applies_them():
    # BG/NBD 25% too high on every window, the network right on every window
    windows = _windows(365, 91, 8, [0.8] * 8, [1.0] * 8)
    estimate = level.estimate_level(windows, 365, AS_OF, calibration_scale=1.25)
    share = estimate.network_share
    assert 0 < share < 1
    assert estimate.btyd_level_correction == pytest.approx(
        (1 - share) * estimate.btyd.correction)
    # network_clv is the calibrated network (1.25 x raw): its coefficient undoes that
    assert estimate.network_level_weight == pytest.approx(
        share * estimate.network.correction / 1.25)
    btyd_total, raw_network_total = 5000.0, 4000.0
    spend = level.SpendLevel(btyd_total, 1.25 * raw_network_total,
                             estimate.btyd_level_correction, estimate.network_level_weight)
    total = spend.spend_factor * 1.25 * raw_network_total
    assert total == pytest.approx((1 - share) * estimate.btyd.correction * btyd_total
                                  + share * estimate.network.correction * raw_network_total)
    saved = estimate.to_metadata()
    assert saved["btyd_level_correction"] == estimate.btyd_level_correction
    assert len(saved["windows"]) == 8 and saved["reason"]


def test_no_backtest_means_btyd_alone_and_no_correction_across_seasons():
    # four windows 23 days apart over a short history: none has a window a horizon before it
    windows = _windows(91, 23, 4, [1.14] * 4, [0.7] * 4, first=date(2023, 5, 1))
    estimate = level.estimate_level(windows, 91, AS_OF)
    assert estimate.network_share == 0.0 and estimate.network_level_weight == 0.0
    assert estimate.btyd.pairs == [] and estimate.btyd_level_correction == 1.0
    assert not estimate.reference.seasonal and "two full years" in estimate.reference.reason


def test_a_total_that_is_not_a_finite_number_is_no_backtest():
    """A network's expected spend can overflow to infinity on a window: that window gives it no
    backtest (BG/NBD alone then), not a failed training step."""
    start = date(2023, 1, 1)
    windows = [Window(start + timedelta(days=30 * i), 100, 400, 10.0, 5.0, math.inf)
               for i in range(4)]
    assert windows[0].log_ratio("network") is None
    assert windows[0].log_ratio("btyd") == pytest.approx(math.log(2))
    estimate = level.estimate_level(windows, 90, start + timedelta(days=200),
                                    calibration_scale=math.nan)
    assert estimate.network_level_weight == 0.0
    assert math.isfinite(estimate.btyd_level_correction)


def test_a_backtest_window_leaves_out_a_customer_above_a_tenth_of_any_total():
    """Rule 7 in the backtests: a wholesaler above a tenth of a window's actual, BG/NBD or
    network total is left out of all three, so the bias carried to everyone is the others'.
    Left out of the actual total alone (where he spent most), the others' ratio would read
    as a bias."""
    import pyarrow as pa

    from clv.pipeline.training import RawOutputs, level_windows

    shoppers = np.ones(90)
    assert level.others(np.append(shoppers, 1000.0)).tolist() == [True] * 90 + [False]
    # above a tenth of one column only: out of every column
    kept = level.others(np.append(shoppers, 20.0), np.append(shoppers, 5.0))
    assert kept.tolist() == [True] * 90 + [False]
    assert level.others(np.ones(100)).all()  # nobody above a tenth
    assert level.others(np.array([0.0, 5.0])).all()  # the one customer with a value: kept
    assert level.others(np.array([1.0, math.inf])).all()  # a total that is not a number
    # ... leaves no one out, but the other columns still do: BG/NBD's backtest stays the others'
    kept = level.others(np.append(shoppers, 24.0), np.append(shoppers, 8.0),
                        np.append(shoppers, math.inf))
    assert kept.tolist() == [True] * 90 + [False]
    # one window of 90 shoppers who spent as predicted and a wholesaler who spent 3 times
    # his BG/NBD prediction (a tenth of the actual total, not of the predicted one): the
    # window's bias is the shoppers' (none)
    predicted = np.array([1.0] * 90 + [8.0])
    actual = np.array([1.0] * 90 + [24.0])
    table = pa.table({"cutoff_date": [date(2023, 6, 30)] * 91, "t_days": [400.0] * 91,
                      "btyd_expected_spend": predicted})
    outputs = RawOutputs(spend=predicted, logit=np.zeros(91), sigma=np.ones(91), actual=actual)
    [window] = level_windows(table, outputs, np.zeros(91, dtype=bool))
    assert window.log_ratio("btyd") == pytest.approx(0.0)
    assert window.log_ratio("network") == pytest.approx(0.0)


def test_level_windows_mark_the_windows_the_network_was_trained_on():
    """Rule 3 reads ``network_trained_on`` from the training step's windows: a cutoff with a
    validation row is one the network did not train on, every other cutoff one it did."""
    import pyarrow as pa

    from clv.pipeline.training import RawOutputs, level_windows

    cutoffs = [date(2023, 3, 31)] * 3 + [date(2023, 6, 30)] * 3
    spend = np.ones(6)
    table = pa.table({"cutoff_date": cutoffs, "t_days": [400.0] * 6,
                      "btyd_expected_spend": spend})
    outputs = RawOutputs(spend=spend, logit=np.zeros(6), sigma=np.ones(6), actual=spend)
    validation = np.array([False] * 3 + [False, True, False])
    windows = level_windows(table, outputs, validation)
    assert [(w.cutoff, w.network_trained_on) for w in windows] == [
        (date(2023, 3, 31), True), (date(2023, 6, 30), False)]


def test_a_backtest_is_predicted_with_the_share_fitted_on_the_others():
    """Rule 8: each backtest's error comes from the ridge share fitted without it (the prior
    alone for a single backtest), not from the share it was fitted into."""
    targets = np.array([-0.12, -0.05, 0.08, -0.2])
    sources = np.array([-1.4, -0.1, 0.1, -0.15])
    weights = np.array([0.03, 1.0, 0.6, 0.9])
    for prior in (0.0, 1.0):
        errors = level.held_out_errors(targets, sources, weights, prior)
        for i in range(4):
            keep = [j for j in range(4) if j != i]
            share = _ridge_share(targets[keep], sources[keep], weights[keep], prior)
            expected = float(np.clip(targets[i] - share * sources[i], math.log(0.5),
                                     math.log(2.0)))
            assert errors[i] == pytest.approx(expected, abs=1e-6)
    # one backtest: the prior's share, whatever the backtest says
    assert level.held_out_errors(targets[:1], sources[:1], weights[:1], 0.0) == pytest.approx(
        [-0.12])
    # a miss beyond the correction bounds counts as the bound: the window a few days into the
    # data, BG/NBD eightfold too low there, carried with the others' share of 0.8 or so
    young = level.held_out_errors(np.array([-0.33, -0.1, 0.05]), np.array([2.1, -0.12, 0.06]),
                                  np.array([0.07, 1.0, 1.0]), 1.0)
    assert young[0] == pytest.approx(math.log(0.5))


def test_one_backtest_does_not_make_the_level_look_certain():
    """A young shop: a 90-day horizon on six months of history has one backtest, the validation
    window (BG/NBD 11% high there) carried from a window of two days' history (BG/NBD four
    times too high).
    Fitted on that one pair, the carried share predicts it almost exactly; predicted without
    it, the level misses it by its whole bias, and level_log_sd says so."""
    as_of, first = date(2024, 6, 30), date(2024, 1, 1)
    ratios = {date(2024, 4, 1): 1 / 1.115, date(2024, 3, 10): 0.95, date(2024, 2, 17): 0.9,
              date(2024, 1, 26): 0.7, date(2024, 1, 3): 0.25}
    windows = [Window(cutoff=cutoff, customers=3000 if cutoff.month > 1 else 30,
                      history_days=(cutoff - first).days, actual_total=1000.0,
                      btyd_total=1000.0 / ratio, network_total=1000.0)
               for cutoff, ratio in ratios.items()]
    estimate = level.estimate_level(windows, 90, as_of)
    assert [(p["target"], p["source"]) for p in estimate.btyd.pairs] == [
        ("2024-04-01", "2024-01-03")]
    assert estimate.btyd.mean_squared_error < 0.001  # the pair's own fit
    assert estimate.btyd.out_of_sample_error == pytest.approx(math.log(1 / 1.115) ** 2)
    # the network, exact on every window here, keeps its small share at the floor's error
    share = estimate.network_share
    metadata = {"spend_level": estimate.to_metadata()}
    assert level.level_log_sd(metadata) == pytest.approx(math.sqrt(
        (1 - share) * math.log(1.115) ** 2 + share * level._MSE_FLOOR), rel=1e-6)
    assert level.level_log_sd(metadata) > 0.1


def test_the_level_error_weighs_each_backtest_predicted_without_it():
    """Several backtests of unequal maturity: the out-of-sample error is the pair-weighted mean
    of each backtest's squared error, its share fitted on the other pairs."""
    horizon, spacing = 365, 91
    windows = _windows(horizon, spacing, 8, [0.8, 1.1, 0.9, 0.75, 0.85, 1.05, 0.95, 0.7],
                       [1.0] * 8, first=date(2020, 6, 1))
    estimate = level.estimate_level(windows, horizon, AS_OF)
    pairs = estimate.btyd.pairs
    assert len(pairs) == 4 and len({p["weight"] for p in pairs}) > 1
    t = np.array([p["target_log_ratio"] for p in pairs])
    s = np.array([p["source_log_ratio"] for p in pairs])
    w = np.array([p["weight"] for p in pairs])
    errors = []
    for i in range(len(pairs)):
        keep = [j for j in range(len(pairs)) if j != i]
        errors.append(t[i] - _ridge_share(t[keep], s[keep], w[keep], 1.0) * s[i])
    expected = float(np.sum(w * np.array(errors) ** 2) / w.sum())
    assert estimate.btyd.out_of_sample_error == pytest.approx(expected, rel=1e-5)
    assert estimate.btyd.out_of_sample_error > estimate.btyd.mean_squared_error


def test_a_whole_year_without_backtests_is_not_certain_by_chance():
    """A 365-day horizon on under two years: the level carries the whole bias of the window a
    year back (a prior of 1) with no backtest; that window's bias happened to be 0, the other
    windows' were not, and stand in, each within the correction bounds (a young window four
    times off counts as twice, one three times too low as twice)."""
    first = date(2021, 9, 1)
    windows = _windows(365, 91, 4, [1.0, 0.8, 3.0, 0.25], [1.0] * 4, first=first)
    estimate = level.estimate_level(windows, 365, AS_OF)
    assert estimate.btyd.pairs == [] and estimate.reference.same_season
    maturity = [min(1.0, (w.cutoff - first).days / 365) for w in windows]
    logs = [0.0, math.log(0.8), math.log(2.0), math.log(0.5)]  # 3 and 0.25 cut to 2 and 0.5
    expected = sum(m * r**2 for m, r in zip(maturity, logs, strict=True)) / sum(maturity)
    assert estimate.btyd.stand_in_error == pytest.approx(expected)
    assert level.level_log_sd({"spend_level": estimate.to_metadata()}) > 0.1


def test_without_a_backtest_every_windows_bias_stands_in():
    """No backtest and no correction carried: the level misses by the as-of window's own bias,
    for which the biases of the windows the predictor is measured on stand in, weighted by
    maturity (the network only on the windows it was not trained on)."""
    first = date(2023, 5, 1)
    windows = _windows(91, 23, 4, [1.14, 0.8, 1.3, 0.5], [0.7, 1.0, 1.0, 1.0], first=first)
    windows = [dataclasses.replace(w, network_trained_on=k > 0) for k, w in enumerate(windows)]
    estimate = level.estimate_level(windows, 91, AS_OF)
    assert estimate.btyd.pairs == []
    maturity = [min(1.0, (w.cutoff - first).days / 91) for w in windows]
    expected = sum(m * math.log(r) ** 2 for m, r in zip(maturity, [1.14, 0.8, 1.3, 0.5],
                                                         strict=True)) / sum(maturity)
    assert estimate.btyd.stand_in_error == pytest.approx(expected)
    assert estimate.btyd.stand_in_windows == 4
    assert estimate.network.stand_in_error == pytest.approx(math.log(0.7) ** 2)
    assert estimate.network.stand_in_windows == 1
    assert level.level_log_sd({"spend_level": estimate.to_metadata()}) == pytest.approx(
        math.sqrt(expected))
    note = level.level_log_sd_note({"spend_level": estimate.to_metadata()})
    assert ("BG/NBD's biases on the 4 training windows (on the one it is carried from, "
            f"{windows[0].cutoff}: +14%) stand in, so every p10-p90 range is about as wide as "
            "those biases") in note


def test_level_log_sd_weighs_each_predictors_backtest_error_by_its_share():
    """Rule 8: the variance is each predictor's out-of-sample squared log error weighted by its
    share of the total (each error at least the floor; a model saved before that error was kept
    counts its in-sample one); without backtests, the stand-in, or for a model saved before it
    was kept the square of the bias on the window the level is carried from; None when there is
    neither."""
    def spend_level(share, btyd, network):
        return {"spend_level": {"network_share": share, "btyd": btyd, "network": network}}

    tested = spend_level(0.25, {"mean_squared_error": 0.04}, {"mean_squared_error": 0.01})
    assert level.level_log_sd(tested) == pytest.approx(math.sqrt(0.75 * 0.04 + 0.25 * 0.01))
    held_out = spend_level(0.25, {"mean_squared_error": 0.001, "out_of_sample_error": 0.04},
                           {"mean_squared_error": 0.001, "out_of_sample_error": 0.01})
    assert level.level_log_sd(held_out) == pytest.approx(math.sqrt(0.75 * 0.04 + 0.25 * 0.01))
    stood_in = spend_level(0.0, {"mean_squared_error": math.inf, "out_of_sample_error": math.inf,
                                 "stand_in_error": 0.09, "source": "2023-06-30",
                                 "source_log_ratio": 0.01}, {})
    assert level.level_log_sd(stood_in) == pytest.approx(0.3)
    nothing = spend_level(0.0, {"mean_squared_error": math.inf, "out_of_sample_error": math.inf,
                                "stand_in_error": math.inf, "source": "2023-06-30",
                                "source_log_ratio": 0.01}, {})
    assert level.level_log_sd(nothing) is None
    # BG/NBD alone: the network's error does not count
    alone = spend_level(0.0, {"mean_squared_error": 0.09}, {"mean_squared_error": 4.0})
    assert level.level_log_sd(alone) == pytest.approx(0.3)
    # an error below the floor counts as the floor
    exact = spend_level(0.5, {"mean_squared_error": 0.0}, {"mean_squared_error": 0.0})
    assert level.level_log_sd(exact) == pytest.approx(math.sqrt(level._MSE_FLOOR))
    # no backtest: the bias seen on the source window, squared
    untested = spend_level(0.0, {"source": "2023-06-30", "source_log_ratio": -0.2}, {})
    assert level.level_log_sd(untested) == pytest.approx(0.2)
    assert level.level_log_sd(spend_level(0.0, {}, {})) is None
    assert level.level_log_sd({}) is None


def test_the_registry_says_when_a_carried_correction_is_cut_to_its_bounds():
    """A bias larger than the bounds let through is carried only that far, and level_note says
    so: BG/NBD's exp(lambda * bias), the network's over the calibration's scale, each only with
    a share."""
    def spend_level(share, btyd, network, scale=1.0):
        return {"spend_level": {"network_share": share, "btyd": btyd, "network": network,
                                "calibration_scale": scale}}

    big = {"source": "2022-09-30", "carried_share": 1.0, "source_log_ratio": math.log(2.42)}
    small = {"source": "2022-09-30", "carried_share": 0.5, "source_log_ratio": math.log(2.42)}
    assert level.capped_correction_note(spend_level(0.0, big, {})) == (
        "BG/NBD's carried correction of 2.42 is cut to 2.00 (a correction lies within 0.5 and "
        "2: the level follows the bias it carries only that far)")
    assert level.capped_correction_note(spend_level(0.0, small, {})) is None  # 1.56
    # the network's over its calibration's scale: 2.42 / 2.4 is about 1, not cut
    assert level.capped_correction_note(spend_level(0.5, small, big, scale=2.4)) is None
    assert level.capped_correction_note(spend_level(0.5, small, big, scale=1.0)).startswith(
        "the network's carried correction of 2.42 is cut to 2.00")
    # without a share, a predictor's correction does not count; nor does one below the bound
    assert level.capped_correction_note(spend_level(0.0, small, big)) is None
    low = {"source": "2022-09-30", "carried_share": 1.0, "source_log_ratio": math.log(0.3)}
    assert level.capped_correction_note(spend_level(0.0, low, {})).startswith(
        "BG/NBD's carried correction of 0.30 is cut to 0.50")
    assert level.capped_correction_note({}) is None


def test_the_registry_says_what_level_log_sd_rests_on():
    """Backtests counted (the network's only when it has a share); without any, the bias
    that stands in, and what would give backtests."""
    def spend_level(share, btyd, network, lag=365, seasonal=True):
        return {"spend_level": {"network_share": share, "btyd": btyd, "network": network,
                                "lag_days": lag, "seasonal": seasonal}}

    pair = {"target": "2023-06-30", "source": "2022-06-30"}
    earlier = {"target": "2023-03-31", "source": "2022-03-31"}
    tested = spend_level(0.25, {"mean_squared_error": 0.04, "pairs": [pair, earlier]},
                         {"mean_squared_error": 0.01, "pairs": [pair]})
    # a window both predictors were backtested on counts once; a model saved before the
    # out-of-sample error was kept counts its in-sample one
    assert level.level_log_sd_note(tested) == "level_log_sd from 2 backtests of the level"
    held_out = spend_level(0.25, {"out_of_sample_error": 0.04, "pairs": [pair, earlier]},
                           {"out_of_sample_error": 0.01, "pairs": [pair]})
    assert level.level_log_sd_note(held_out) == (
        "level_log_sd from 2 backtests of the level, each predicted without its own fit")
    # a pair of no weight (no history at one end) counts for nothing
    weighed = spend_level(0.0, {"out_of_sample_error": 0.04,
                                "pairs": [{**pair, "weight": 0.5}, {**earlier, "weight": 0.0}]},
                          {})
    assert level.level_log_sd_note(weighed).startswith("level_log_sd from 1 backtest of")
    alone = spend_level(0.0, {"out_of_sample_error": 0.04, "pairs": [pair]},
                        {"out_of_sample_error": 0.01, "pairs": [pair]})
    assert level.level_log_sd_note(alone) == (
        "level_log_sd from 1 backtest of the level, predicted without its own fit (with the "
        "prior's share)")
    untested = spend_level(0.0, {"source": "2022-12-30", "source_log_ratio": math.log(0.69),
                                 "pairs": []}, {"pairs": []})
    note = level.level_log_sd_note(untested)
    assert note.startswith("level_log_sd: no backtest of the level (no two training windows "
                           "with history lie the 365-day lag apart): BG/NBD's bias on the "
                           "window it is carried from (2022-12-30: -31%) stands in")
    # what gives backtests: for a seasonal level the windows a year back, else more cutoffs
    assert note.endswith("training cutoffs a year before the latest training windows give "
                         "backtests (clv_seasonal_backtests, by default 3)")
    latest = spend_level(0.0, {"source": "2023-09-30", "source_log_ratio": 0.1, "pairs": []},
                         {}, lag=91, seasonal=False)
    assert level.level_log_sd_note(latest).endswith(
        "(no two training windows with history lie the 91-day lag apart): BG/NBD's bias on the "
        "window it is carried from (2023-09-30: +11%) stands in, so every p10-p90 range is "
        "about as wide as that bias; training cutoffs that span more than the lag, where the "
        "history holds them, give backtests")
    # decided as level_log_sd decides: pairs of no weight give no backtest error
    weightless = spend_level(0.0, {"source": "2022-12-30", "source_log_ratio": 0.1,
                                   "pairs": [pair, pair], "mean_squared_error": math.inf}, {})
    assert "no backtest" in level.level_log_sd_note(weightless)
    # a source window whose bias was undefined is not read as a bias of 0
    unmeasured = spend_level(0.0, {"source": "2022-12-30", "source_log_ratio": 0.0}, {})
    assert "(2022-12-30: not measurable)" in level.level_log_sd_note(unmeasured)
    assert level.level_log_sd_note(spend_level(0.0, {}, {})) is None
    # a bias beyond the correction bounds is counted as the bound, and the note says so
    beyond = spend_level(0.0, {"stand_in_error": math.log(2.0) ** 2, "stand_in_windows": 1,
                               "source": "2023-10-02", "source_log_ratio": math.log(4.0)}, {})
    assert ("BG/NBD's bias on the window it is carried from (2023-10-02: +300%, counted as "
            "+100%) stands in") in level.level_log_sd_note(beyond)
    assert level.level_log_sd(beyond) == pytest.approx(math.log(2.0))
    several = spend_level(0.0, {"stand_in_error": 0.04, "stand_in_windows": 3,
                                "source": "2022-12-30", "source_log_ratio": 0.1}, {})
    assert ("BG/NBD's biases on the 3 training windows (on the one it is carried from, "
            "2022-12-30: +11%) stand in, so every p10-p90 range is about as wide as those "
            "biases") in level.level_log_sd_note(several)


def test_a_stray_row_years_back_makes_no_history():
    """A customer whose one row is mistyped years before the rest (2002 in data from 2022)
    would make two years of history, and a seasonal level, out of a few months: the history
    runs from the tenth oldest customer's first purchase, the oldest's with fewer customers."""
    ages = np.array([7700.0] + [400.0 - k for k in range(30)] + [np.nan])
    assert level.history_days(ages) == 392  # the tenth oldest: 7700, then 400 down to 392
    assert level.history_days(np.array([900.0, 20.0, 10.0])) == 900
    assert level.history_days(np.array([np.nan])) == 0
    # over windows: an early window that holds a stray customer alone does not count
    full = _windows(91, 23, 3, [1.0] * 3, [1.0] * 3, first=date(2023, 1, 1))
    stray = dataclasses.replace(full[-1], cutoff=date(2021, 6, 1), customers=1,
                                history_days=800)
    reference = level.seasonal_reference([*full, stray], 91, AS_OF,
                                         level._history_days([*full, stray], AS_OF))
    assert not reference.seasonal and "history of" in reference.reason
    assert level._history_days([*full, stray], AS_OF) == level._history_days(full, AS_OF)
    assert level._history_days([stray], AS_OF) == 800 + (AS_OF - date(2021, 6, 1)).days


def test_seasonal_reference_needs_two_years_and_a_window_a_year_back():
    short = _windows(91, 23, 8, [1.0] * 8, [1.0] * 8, first=date(2022, 6, 1))
    reference = level.seasonal_reference(short, 91, AS_OF, (AS_OF - date(2022, 6, 1)).days)
    assert not reference.seasonal and reference.lag_days == 91
    long_but_near = _windows(91, 23, 8, [1.0] * 8, [1.0] * 8)
    reference = level.seasonal_reference(long_but_near, 91, AS_OF, 1095)
    assert not reference.seasonal
    assert "clv_seasonal_backtests above 0" in reference.reason
    assert "clv_training_cutoffs of at least 13 at a cutoff spacing of 23 days" in reference.reason
    # one training cutoff: no spacing to count with, and no cutoff a year back is added to it
    single = _windows(91, 23, 1, [1.0], [1.0])
    reference = level.seasonal_reference(single, 91, AS_OF, 1095)
    assert not reference.seasonal
    assert reference.reason.endswith("no seasonal adjustment; the cutoffs a year back are added "
                                     "with more than one training cutoff: clv_training_cutoffs "
                                     "of at least 2, with clv_seasonal_backtests above 0")
    reaching = _windows(91, 23, 13, [1.0] * 13, [1.0] * 13)
    reference = level.seasonal_reference(reaching, 91, AS_OF, 1095)
    assert reference.seasonal and reference.same_season and reference.lag_days == 365
    yearly = level.seasonal_reference(_windows(365, 91, 8, [1.0] * 8, [1.0] * 8), 365, AS_OF,
                                      1095)
    assert yearly.lag_days == 365 and yearly.same_season and not yearly.seasonal


def test_seasonal_level_is_carried_from_the_same_window_a_year_back():
    # the window a year back (k = 12) saw actual spend 1.9x BG/NBD's; the latest ones 0.75x
    ratios = [0.75] * 12 + [1.9]
    windows = _windows(91, 23, 13, ratios, [1.0] * 13)
    source = level.level_source(windows, 91, AS_OF)
    assert source is windows[12]
    estimate = level.estimate_level(windows, 91, AS_OF)
    assert estimate.reference.seasonal and estimate.btyd.source == windows[12].cutoff.isoformat()
    # no backtest a year back exists with 13 cutoffs: the seasonal prior carries it all
    assert estimate.btyd.carried_share == 1.0
    assert estimate.btyd.correction == pytest.approx(1.9)


def test_corrections_are_bounded():
    windows = _windows(365, 91, 8, [5.0] * 8, [1.0] * 8)
    assert level.estimate_level(windows, 365, AS_OF).btyd.correction <= (
        level.LEVEL_CORRECTION_BOUNDS[1])
    assert level.bounded(0.1) == level.LEVEL_CORRECTION_BOUNDS[0]
    assert level.bounded(float("nan")) == 1.0


def test_the_calibrated_networks_correction_is_bounded_too():
    """The network's coefficient applies to its calibrated total: a raw network K times too
    high on every window has a calibration that scales it by 1 / K, and with its bias carried
    whole its correction on the calibrated total is 1, whatever K (the raw correction, bounded
    first and then divided by the scale, gave 2 for K = 10 and 584,000 for K = e^15). A carried
    share below 1 leaves part of the raw bias, within the bounds."""
    low, high = level.LEVEL_CORRECTION_BOUNDS
    for k in (3.0, 10.0, math.exp(15)):
        windows = _windows(365, 91, 8, [1.0] * 8, [1 / k] * 8)
        estimate = level.estimate_level(windows, 365, AS_OF, calibration_scale=1 / k)
        network = estimate.network
        assert estimate.network_share > 0
        expected = min(max(math.exp(network.carried_share * network.source_log_ratio) * k, low),
                       high)
        assert estimate.network_level_weight == pytest.approx(estimate.network_share * expected)
        if network.carried_share == pytest.approx(1.0):
            assert expected == pytest.approx(1.0)
    # a calibration that left the level where it was: the raw correction, as before
    windows = _windows(365, 91, 8, [1.0] * 8, [0.8] * 8)
    estimate = level.estimate_level(windows, 365, AS_OF)
    assert estimate.network_level_weight == pytest.approx(
        estimate.network_share * estimate.network.correction)


def test_coefficients_of_old_and_new_models():
    assert level.level_coefficients({}) == (1.0, 0.0)
    assert level.level_coefficients({"btyd_level_correction": 0.9}) == (0.9, 0.0)
    assert level.level_coefficients({"btyd_level_correction": 0.4,
                                     "network_level_weight": 0.5}) == (0.4, 0.5)


def _monthly_revenue(cutoff: date, periods: int, intensity, growth_per_year: float
                     ) -> level.RevenuePeriods:
    """30-day periods before ``cutoff`` with revenue = intensity(day of year at the period's
    middle) x exp(growth x years since the cutoff)."""
    values = []
    for j in range(1, periods + 1):
        middle = cutoff - timedelta(days=30 * j - 15)
        years = (middle - cutoff).days / 365
        values.append(1000.0 * intensity(middle) * math.exp(growth_per_year * years))
    return level.RevenuePeriods(cutoff, 30, tuple(values))


def test_revenue_periods_spread_a_period_evenly_over_its_days():
    periods = level.RevenuePeriods(date(2023, 6, 30), 30, (300.0, 600.0, 900.0))
    # the last 30 days hold 300; 15 days straddling the first two periods hold 150 + 300
    assert periods.between(date(2023, 5, 31), date(2023, 6, 30)) == pytest.approx(300.0)
    assert periods.between(date(2023, 5, 16), date(2023, 6, 15)) == pytest.approx(450.0)
    assert periods.covers(date(2023, 4, 1), date(2023, 6, 30))
    assert not periods.covers(date(2023, 3, 31), date(2023, 6, 30))


def test_growth_per_day_from_trailing_years():
    growth = level.growth_per_day([(date(2023, 1, 1), 1000.0), (date(2023, 7, 2), 1200.0),
                                   (date(2023, 4, 2), 0.0)])
    assert growth == pytest.approx(math.log(1.2) / 182)
    assert level.growth_per_day([(date(2023, 1, 1), 1000.0)]) is None


def test_two_calendar_years_of_history_are_two_full_years():
    """Data from 2022-01-01 to an as-of date of 2023-12-31 holds two full years (730 days with
    the first counted), though its oldest customers' t_days read 729."""
    first, as_of = date(2022, 1, 1), date(2023, 12, 31)
    t_days = (as_of - first).days
    assert t_days == 729 and level.holds_two_years(t_days)
    assert not level.holds_two_years(t_days - 1)
    short = level.seasonal_reference([], 91, as_of, t_days - 1)
    assert not short.seasonal and "history of 728 days" in short.reason


def test_seasonal_factor_from_revenue_removes_growth():
    intensity = _yearly_wave
    as_of, horizon = date(2023, 9, 30), 91
    growth = 0.4  # a year
    periods = [_monthly_revenue(as_of - timedelta(days=horizon + 23 * k), 12, intensity, growth)
               for k in range(8)]
    windows = _windows(horizon, 23, 8, [1.0] * 8, [1.0] * 8, as_of=as_of)
    reference, history = level.reference_for(windows, horizon, as_of)
    assert not reference.seasonal and history >= level.SEASONAL_MIN_HISTORY_DAYS
    factor = level.revenue_seasonal_factor(periods, horizon, as_of, history, reference,
                                           growth / 365)
    assert factor.applied and "seasonal from revenue" in factor.reason
    # last year's October-December over July-September, day by day, once growth is removed
    def days(start: date) -> list[date]:
        return [start + timedelta(days=d) for d in range(1, horizon + 1)]

    expected = (sum(map(intensity, days(date(2022, 9, 30))))
                / sum(map(intensity, days(date(2022, 7, 1)))))
    assert expected > 1.5
    assert factor.factor == pytest.approx(expected, rel=0.03)
    estimate = level.estimate_level(windows, horizon, as_of, seasonal_factor=factor)
    plain = level.estimate_level(windows, horizon, as_of)
    assert estimate.btyd_level_correction == pytest.approx(
        plain.btyd_level_correction * factor.factor)
    assert estimate.to_metadata()["seasonal"] and estimate.reason == factor.reason


def test_seasonal_factor_from_revenue_only_when_it_applies():
    as_of, horizon = date(2023, 9, 30), 91
    periods = [_monthly_revenue(as_of - timedelta(days=horizon + 23 * k), 12, lambda d: 1.0,
                                0.0) for k in range(8)]
    windows = _windows(horizon, 23, 8, [1.0] * 8, [1.0] * 8, as_of=as_of)
    reference, _ = level.reference_for(windows, horizon, as_of)
    short = level.revenue_seasonal_factor(periods, horizon, as_of, 500, reference, 0.0)
    assert not short.applied and short.factor == 1.0 and "two full years" in short.reason
    # sequences of four periods do not reach a year back
    brief = [level.RevenuePeriods(p.cutoff, 30, p.revenue[:4]) for p in periods]
    missing = level.revenue_seasonal_factor(brief, horizon, as_of, 1000, reference, 0.0)
    assert not missing.applied and "do not reach back" in missing.reason
    yearly = level.revenue_seasonal_factor(periods, 365, as_of, 1000, reference, 0.0)
    assert not yearly.applied
    flat = level.revenue_seasonal_factor(periods, horizon, as_of, 1000, reference, 0.0)
    assert flat.applied and flat.factor == pytest.approx(1.0)


def _yearly_wave(day: date) -> float:  # a smooth yearly wave peaking on the 1st of December
    return 1.0 + 0.6 * math.cos(2 * math.pi * ((day - date(2000, 12, 1)).days % 365) / 365)


def _seasonal_model(as_of: date, horizon: int, intensity, growth: float) -> dict:
    """A saved model's level metadata with a seasonal level and the revenue behind it."""
    periods = [_monthly_revenue(as_of - timedelta(days=horizon + 23 * k), 12, intensity, growth)
               for k in range(8)]
    return {"horizon_days": horizon, "btyd_level_correction": 0.8, "network_level_weight": 0.3,
            "spend_level": {"seasonal": True,
                            "season_revenue": level.season_revenue(periods, growth / 365,
                                                                   as_of)}}


def test_a_seasonal_level_follows_the_scoring_date():
    """Rule 9: a model trained at the end of September for the peak window (October-
    December), scored at the end of December (never, a backfill), carries last year's
    January-March over October-December, the business's growth left out; scored at its own
    date, nothing moves."""
    trained, horizon, growth = date(2023, 9, 30), 91, 0.4
    model = _seasonal_model(trained, horizon, _yearly_wave, growth)
    assert level.season_shift(model, trained) == level.SeasonShift(1.0)
    assert level.level_coefficients(model, trained) == (0.8, 0.3)
    assert level.level_coefficients(model) == (0.8, 0.3)

    def window(start: date) -> float:
        return sum(_yearly_wave(start + timedelta(days=d)) for d in range(1, horizon + 1))

    for scored in (date(2023, 12, 31), date(2023, 6, 30)):
        expected = window(scored - timedelta(days=365)) / window(date(2022, 9, 30))
        moved = level.season_shift(model, scored)
        assert moved.factor == pytest.approx(expected, rel=0.03), scored
        assert "rule 9" in moved.note
        assert level.level_coefficients(model, scored) == pytest.approx(
            (0.8 * moved.factor, 0.3 * moved.factor), rel=1e-12)
    assert level.season_shift(model, date(2023, 12, 31)).factor < 0.8


def test_a_seasonal_level_stays_where_the_revenue_does_not_reach():
    trained, horizon = date(2023, 9, 30), 91
    model = _seasonal_model(trained, horizon, _yearly_wave, 0.0)
    later = level.season_shift(model, date(2024, 9, 30))  # last year's window not kept
    assert later.factor == 1.0 and "retrain" in later.note
    flat = _seasonal_model(trained, horizon, lambda d: 1.0, 0.0)
    assert level.season_shift(flat, date(2023, 12, 31)).factor == pytest.approx(1.0)
    plain = {**model, "spend_level": {**model["spend_level"], "seasonal": False}}
    assert level.season_shift(plain, date(2023, 12, 31)) == level.SeasonShift(1.0)
    yearly = {**model, "horizon_days": 365}
    assert level.season_shift(yearly, date(2023, 12, 31)) == level.SeasonShift(1.0)
    assert level.season_shift({"btyd_level_correction": 0.8}, date(2023, 12, 31)).factor == 1.0


# Rule 6: the distribution follows the level. Every check against plain numpy (log1p/expm1),
# not the series and floors the rule evaluates.

def _spend(factor: float, model_rate_factor: float | None = 1.0) -> level.SpendLevel:
    """A spend level whose spend factor is ``factor`` (BG/NBD's total alone, no correction)."""
    return level.SpendLevel(btyd_total=factor * 1000.0, network_total=1000.0,
                            btyd_level_correction=1.0, model_rate_factor=model_rate_factor)


P = np.array([0.0, 1e-12, 3e-7, 9.9e-5, 1e-4, 1.01e-4, 0.003, 0.2, 0.5, 0.9, 0.999999, 1.0])
MU = np.linspace(-2.0, 4.0, P.size)
SIGMA = np.linspace(0.3, 1.5, P.size)


@pytest.mark.parametrize("factor", [0.3, 0.695, 1.4, 2.5])
def test_the_purchase_rate_follows_the_spend_factor(factor):
    leveled, mu = level.leveled_distribution(P, MU, _spend(factor))
    expected = -np.expm1(factor * np.log1p(-np.minimum(P, 1.0 - 1e-16)))
    expected[P == 1.0] = 1.0
    np.testing.assert_allclose(leveled, expected, rtol=1e-12, atol=0.0)
    # fewer buyers when the level is below 1, more above, and the order of customers kept
    inside = (P > 0) & (P < 1)
    assert np.all((leveled[inside] < P[inside]) if factor < 1 else (leveled[inside] > P[inside]))
    assert np.all(np.diff(leveled) >= 0)
    # the expected value is network_clv x spend factor: the level moves the location
    network_clv = P * np.exp(MU + SIGMA ** 2 / 2)
    positive = P > 0
    np.testing.assert_allclose(leveled[positive] * np.exp(mu[positive] + SIGMA[positive] ** 2 / 2),
                               factor * network_clv[positive], rtol=1e-12)


def test_what_the_model_already_holds_is_not_applied_twice():
    # a model whose probability holds a season of 2.3 (rule 5), at a spend factor of 2.3
    leveled, mu = level.leveled_distribution(P, MU, _spend(2.3, model_rate_factor=2.3))
    np.testing.assert_array_equal(leveled, P)
    np.testing.assert_allclose(mu, MU + math.log(2.3), rtol=1e-13)
    assert _spend(2.3, 2.0).purchase_rate_factor == pytest.approx(1.15)


def test_a_run_saved_before_the_rule_keeps_the_network_probability():
    old = level.SpendLevel.from_dict({"btyd_total": 700.0, "network_total": 1000.0,
                                      "btyd_level_correction": 1.0})
    assert old.model_rate_factor is None and old.purchase_rate_factor == 1.0
    leveled, _ = level.leveled_distribution(P, MU, old)
    np.testing.assert_array_equal(leveled, P)
    new = _spend(0.7, 1.25)
    assert level.SpendLevel.from_dict(new.to_dict()) == new
    assert new.to_dict()["purchase_rate_factor"] == pytest.approx(0.7 / 1.25)
    assert level.model_rate_factor({}) == 1.0
    assert level.model_rate_factor({"distribution_calibration": {
        "production": {"purchase_rate_factor": 2.5}}}) == 2.5


def test_customers_who_stopped_buying_do_not_follow_the_level():
    alive = np.array([1.0, 0.5, 0.5, 0.2, 0.0, np.nan])
    p = np.array([0.4, 0.4, 0.1, 0.3, 0.0, 0.4])  # 0.3 > 0.2: alive is floored at p
    mu = np.zeros(6)
    for factor in (0.6, 2.5):
        leveled, _ = level.leveled_distribution(p, mu, _spend(factor), alive)
        active = np.array([1.0, 0.5, 0.5, 0.3, 0.0, 1.0])
        expected = np.zeros(6)
        buying = active > 0
        with np.errstate(divide="ignore"):  # p equal to active: log1p(-1) = -inf, as meant
            expected[buying] = active[buying] * -np.expm1(
                factor * np.log1p(-p[buying] / active[buying]))
        np.testing.assert_allclose(leveled, expected, rtol=1e-12, atol=1e-300)
        # never above the share still active, and the same as without alive when all are
        assert np.all(leveled <= active + 1e-15)
        np.testing.assert_array_equal(
            level.leveled_distribution(p[:1], mu[:1], _spend(factor), alive[:1])[0],
            level.leveled_distribution(p[:1], mu[:1], _spend(factor))[0])


def test_a_purchase_rounded_to_certain_follows_the_level_from_its_logit():
    """onnxruntime's float32 probability is 1 above a logit of about 17; the graph's
    log_no_purchase, -softplus(logit), still says how likely not buying is, so the leveled
    probability is the exact one, not 1. Where alive is below 1, p above it makes q = 1
    whatever the rounding, and the output is not used."""
    logit = np.array([0.5, 9.0, 18.0, 25.0, 40.0, 18.0])
    log_no = -np.logaddexp(0.0, logit)
    p32 = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32).astype(np.float64)
    no32 = log_no.astype(np.float32).astype(np.float64)
    alive = np.array([1.0, np.nan, 1.0, 1.0, 1.0, 0.9])
    assert (p32[2:] == 1.0).all()
    for factor in (0.25, 2.5):
        leveled, _ = level.leveled_distribution(p32, np.zeros(6), _spend(factor), alive,
                                                log_no_purchase=no32)
        exact = -np.expm1(factor * log_no)  # 1 - (1 - p)^factor in float64
        exact[5] = 1.0 / (1.0 + np.exp(-logit[5]))  # q = 1: the share still active
        np.testing.assert_allclose(leveled, exact, rtol=1e-6)
        old, _ = level.leveled_distribution(p32, np.zeros(6), _spend(factor), alive)
        assert (old[2:] == 1.0).all(), "from the rounded probability alone: no chance of not"
    # a model without the output (NaN, as scoring fills it) levels as before
    np.testing.assert_array_equal(
        level.leveled_distribution(p32, np.zeros(6), _spend(0.25), alive,
                                   log_no_purchase=np.full(6, np.nan))[0],
        level.leveled_distribution(p32, np.zeros(6), _spend(0.25), alive)[0])


def test_a_probability_near_the_share_still_active_follows_the_level_from_its_logit():
    """Where p nears alive < 1, q = p / alive nears 1 and 1 - q cancels the digits a float32
    p keeps; read through the graph's log_no_purchase, the leveled probability is several
    times closer to the one the float64 probability gives (the compiled query's), within the
    SQL engine's 1e-5 where the level is not far below the network's."""
    alive = np.array([0.98872, 0.9, 0.95, 0.999999])
    p64 = alive - np.array([1e-5, 3e-6, 1e-4, 5e-7])
    log_no = np.log1p(-p64)
    p32 = p64.astype(np.float32).astype(np.float64)
    no32 = log_no.astype(np.float32).astype(np.float64)
    for factor in (0.05, 0.3, 2.5):
        truth, _ = level.leveled_distribution(p64, np.zeros(4), _spend(factor), alive,
                                              log_no_purchase=log_no)
        leveled, _ = level.leveled_distribution(p32, np.zeros(4), _spend(factor), alive,
                                                log_no_purchase=no32)
        before, _ = level.leveled_distribution(p32, np.zeros(4), _spend(factor), alive)
        error, error_before = np.abs(leveled / truth - 1), np.abs(before / truth - 1)
        assert (error <= error_before / 3 + 1e-12).all(), (factor, error, error_before)
        if factor >= 0.3:
            assert error.max() < 1e-5, (factor, error)
    # a share still active too small for 1 - a: q = 1/2 as exactly as from p itself
    tiny_alive = np.array([1e-6, 1e-12, 1e-15])
    half = tiny_alive / 2
    from_log, _ = level.leveled_distribution(half, np.zeros(3), _spend(0.3), tiny_alive,
                                             log_no_purchase=np.log1p(-half))
    from_p, _ = level.leveled_distribution(half, np.zeros(3), _spend(0.3), tiny_alive)
    np.testing.assert_allclose(from_log, from_p, rtol=1e-9)


@pytest.mark.parametrize("factor", [1.00001, 1.01, 0.5, 3.0])
def test_a_small_btyd_shape_keeps_the_probability_of_likely_buyers(factor):
    """BG/NBD's r near 0 (a data set of one-time buyers: 0.001) makes (1 - q)^(-1/k) overflow
    for a likely buyer; q' is still the formula's, computed here with 50 digits, not ~0 (a
    factor of 1.00001 took p = 0.9 to 0.45, r = 1e-5 took p = 0.5 to 0.006)."""
    from decimal import Decimal, localcontext

    p = np.array([0.5, 0.9, 0.99, 0.3, 0.5])
    shape = np.array([1e-3, 1e-3, 4e-3, 1e-5, 1e-5])
    expected = []
    with localcontext() as context:
        context.prec = 50
        for probability, r in zip(p, shape, strict=True):
            q, k, f = Decimal(probability), Decimal(r), Decimal(factor)
            growth = f * ((-(1 - q).ln() / k).exp() - 1)
            expected.append(float(1 - (-k * (1 + growth).ln()).exp()))
    for index, r in enumerate(shape):
        leveled, mu = level.leveled_distribution(p[index:index + 1], np.zeros(1),
                                                 _spend(factor), None, np.zeros(1), r)
        np.testing.assert_allclose(leveled, expected[index], rtol=1e-9)
        # the expected value holds: p' exp(mu') = factor p
        np.testing.assert_allclose(leveled * np.exp(mu), factor * p[index], rtol=1e-9)


@pytest.mark.parametrize("factor", [0.6, 2.3])
def test_the_rate_scales_over_btyd_posterior_of_each_rate(factor):
    # q' = 1 - (1 + f ((1 - q)^(-1/k) - 1))^(-k): the chance of a purchase when each rate of a
    # gamma posterior with shape k is multiplied by f
    p = np.array([1e-9, 2e-5, 0.05, 0.3, 0.7, 0.95])
    frequency = np.array([0.0, 1.0, 0.0, 3.0, 12.0, np.nan])
    shape = 0.7
    leveled, _ = level.leveled_distribution(p, np.zeros(6), _spend(factor), None, frequency,
                                            shape)
    k = shape + np.nan_to_num(frequency)
    expected = 1.0 - (1.0 + factor * ((1.0 - p) ** (-1.0 / k) - 1.0)) ** (-k)
    np.testing.assert_allclose(leveled[2:], expected[2:], rtol=1e-12)
    # the same with log1p and expm1, which keep the digits of tiny probabilities
    exact = -np.expm1(-k * np.log1p(factor * np.expm1(-np.log1p(-p) / k)))
    np.testing.assert_allclose(leveled, exact, rtol=1e-12)
    # between no change and a rate known exactly: uncertainty damps the factor's effect
    poisson, _ = level.leveled_distribution(p, np.zeros(6), _spend(factor))
    assert np.all(np.abs(leveled - p) <= np.abs(poisson - p) + 1e-15)
    # a customer seen buying often has a rate known nearly exactly
    many, _ = level.leveled_distribution(p[3:4], np.zeros(1), _spend(factor), None,
                                         np.array([1e7]), shape)
    np.testing.assert_allclose(many, poisson[3:4], rtol=1e-6)
