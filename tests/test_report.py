"""The HTML report: the SVG chart primitives against hand-computed positions, the page from
hand-made tables, and (slow) the report of a real build opened in headless Chromium, where every
chart must draw and the page must log no script error.

No fixture of tests/conftest.py builds the whole project once per session, so the slow tests
share one module-scoped build (a small generated data set, two as-of dates so that the history
charts draw; the second date re-scores with the saved model).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from clv.report import DEFAULT_PATH, screenshot, svg, write_report
from clv.report.data import (
    ATTENTION_ROWS,
    TABLES,
    ReportData,
    bin_sql,
    latest_run_per_date,
    other_horizon_dates,
    read_report_data,
)
from clv.report.render import (
    GROUP_MEANINGS,
    SEGMENT_ACTIONS,
    SEGMENTS,
    calibration_figure,
    gain_curve_figure,
    history_figures,
    render_report,
    segment_table,
)
from clv.report.write import report_path
from clv.warehouse import DuckDBWarehouse

CHARTS = ("gain_curve", "decile_calibration", "value_distribution", "segments",
          "feature_importance", "data_quality", "history_value", "history_segments")
FIRST_AS_OF, SECOND_AS_OF = "2023-10-31", "2023-11-30"


def _marks(chart: str) -> list[ET.Element]:
    return [e for e in ET.fromstring(chart).iter() if "mark" in e.get("class", "").split()]


def _texts(chart: str) -> list[str]:
    return [e.text or "" for e in ET.fromstring(chart).iter() if e.tag.endswith("text")]


def _numbers(element: ET.Element, *names: str) -> list[float]:
    return [float(element.get(name)) for name in names]


# -- numbers, ticks and scales ----------------------------------------------------------------


@pytest.mark.parametrize(("low", "high"), [(0, 87), (-3.2, 7.9), (0.0012, 0.0049), (5, 5),
                                           (0, 0), (-4, -4), (1e6, 3.4e6), (12.5, 12.75)])
def test_nice_ticks_cover_the_range_in_round_equal_steps(low, high):
    ticks = svg.nice_ticks(low, high)
    steps = np.diff(ticks)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 12
    assert np.allclose(steps, steps[0], rtol=1e-9) and steps[0] > 0
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5))
    if low != high:
        assert ticks[-1] - ticks[0] < 3 * (high - low)  # the range is not lost in padding


@pytest.mark.parametrize(("low", "high", "ticks"), [
    (0, 2, [0, 1, 2]), (0, 12, [0, 5, 10, 15]), (0, 0, [0, 1]), (0, 140, [0, 50, 100, 150]),
])
def test_integer_ticks_are_whole_numbers(low, high, ticks):
    assert svg.nice_ticks(low, high, integer=True) == ticks


def test_count_axes_tick_whole_numbers_and_all_zero_bars_get_a_unit_range():
    def labels(chart: str) -> list[str]:
        return [t.text for t in ET.fromstring(chart).iter("text")]

    counts = svg.bar_chart(["a", "b"], [svg.Bars("n", [2, 1])], title="t", value_label="v")
    assert {"0", "1", "2"} <= set(labels(counts)) and "0.5" not in labels(counts)
    zeros = svg.bar_chart(["a"], [svg.Bars("n", [0])], title="t", value_label="v",
                          horizontal=True)
    assert "-1" not in labels(zeros) and {"0", "1"} <= set(labels(zeros))


def test_nice_ticks_of_bad_bounds_fall_back_to_the_unit_interval():
    assert svg.nice_ticks(math.nan, 3) == svg.nice_ticks(0, 1)
    assert svg.nice_ticks(0, math.inf) == svg.nice_ticks(0, 1)
    assert svg.nice_ticks(10, 0) == svg.nice_ticks(0, 10)


def test_linear_scale_maps_ends_and_inverts_for_a_y_axis():
    y = svg.LinearScale((0, 200), (300, 20))
    assert (y(0), y(200), y(50)) == (300, 20, 230)
    assert y(-100) == 440  # below the domain: below the axis, not clipped
    assert svg.LinearScale((5, 5), (0, 100))(7) == 50


def test_log_scale_gives_equal_ratios_equal_lengths():
    x = svg.LogScale((1, 1000), (0, 300))
    assert [round(x(v), 9) for v in (1, 10, 100, 1000)] == [0, 100, 200, 300]
    assert math.isclose(x(20) - x(2), x(500) - x(50))
    with pytest.raises(ValueError, match="log scale"):
        x(0)
    with pytest.raises(ValueError, match="positive domain"):
        svg.LogScale((0, 10), (0, 1))


@pytest.mark.parametrize(("value", "decimals", "text"), [
    (1234567.891, None, "1,234,568"), (12.345, None, "12.3"), (0.5, None, "0.50"),
    (-2500, None, "\u22122,500"), (-0.0001, 2, "0.00"), (0.25, 2, "0.25"), (0, None, "0"),
    (math.nan, None, "\u2013"), (None, 0, "\u2013"), (math.inf, 0, "\u2013"),
])
def test_format_number_uses_thousands_separators(value, decimals, text):
    assert svg.format_number(value, decimals) == text


def test_log_edges_are_equal_on_a_log_axis_and_hit_powers_of_ten():
    edges = svg.log_edges(3.7, 4321)
    assert edges[0] <= 3.7 < edges[1] and edges[-2] <= 4321 < edges[-1]
    assert np.allclose(np.diff(np.log10(edges)), 1 / 3)
    assert {10.0, 100.0, 1000.0} <= set(edges)  # exactly, not 99.99999999999997
    assert svg.log_edges(1000, 1000)[:1] == [1000.0]
    assert svg.log_edges(0.02, 0.3, per_decade=1) == [0.01, 0.1, 1.0]
    capped = svg.log_edges(1e-9, 999, max_decades=3)
    assert capped[0] <= 0.999 < capped[1] and capped[-1] == 1000
    with pytest.raises(ValueError, match="0 < low <= high"):
        svg.log_edges(0, 10)


@pytest.mark.parametrize(("low", "high", "ticks"), [
    (0.2, 10_000, [1, 10, 100, 1000, 10_000]), (3, 70, [5, 10, 20, 50]), (21.5, 46.4, []),
])
def test_log_ticks_are_round_values_inside_the_range(low, high, ticks):
    assert svg.log_ticks(low, high) == ticks


@pytest.mark.parametrize(("value", "text"), [(0.021544, "0.0215"), (2.1544, "2.15"),
                                             (215.44, "215"), (2154.4, "2,154"), (0, "0")])
def test_format_significant_keeps_three_digits(value, text):
    assert svg.format_significant(value) == text


def test_format_exact_shows_the_decimals_a_round_value_has():
    assert [svg.format_exact(v) for v in (0.5, 2, 1000, 0.001, -2.5, 1e-7, 1e-6)] == [
        "0.5", "2", "1,000", "0.001", "\u22122.5", "0.000000100", "0.000001"]


# -- charts -----------------------------------------------------------------------------------


def test_line_chart_breaks_at_nan_and_marks_a_lone_point():
    points = [(0, 1), (1, 2), (2, math.nan), (3, 4), (4, 5), (5, math.nan), (6, 7)]
    chart = svg.line_chart([svg.Line("a", points)], title="t", x_label="x", y_label="y")
    marks = _marks(chart)
    assert [m.tag for m in marks] == ["path", "path", "circle"]
    assert [m.get("d").count("L") for m in marks[:2]] == [1, 1]


def test_line_chart_puts_larger_values_higher():
    chart = svg.line_chart([svg.Line("a", [(0, 10), (1, -5)], markers=True)], title="t",
                           x_label="x", y_label="y")
    first, second = (c for c in _marks(chart) if c.tag == "circle")
    assert float(first.get("cy")) < float(second.get("cy"))
    assert float(first.get("cx")) < float(second.get("cx"))


@pytest.mark.parametrize("chart", [
    lambda: svg.line_chart([], title="t", x_label="x", y_label="y"),
    lambda: svg.line_chart([svg.Line("a", [(0, math.nan), (math.inf, 1)])], title="t",
                           x_label="x", y_label="y"),
    lambda: svg.bar_chart(["a", "b"], [svg.Bars("v", [math.nan, None])], title="t",
                          value_label="v"),
    lambda: svg.bar_chart([], [], title="t", value_label="v", horizontal=True),
    lambda: svg.histogram([], [], title="t", x_label="x", y_label="y"),
    lambda: svg.histogram([1, 2], [math.nan], title="t", x_label="x", y_label="y"),
], ids=["line-empty", "line-nan", "bars-nan", "bars-empty", "histogram-empty",
        "histogram-nan"])
def test_a_chart_without_finite_values_says_so(chart):
    drawn = chart()
    assert _marks(drawn) == [] and "No data" in drawn


def test_vertical_bars_extend_below_zero_for_negative_values():
    chart = svg.bar_chart(["up", "down", "none"], [svg.Bars("v", [3, -2, math.nan])],
                          title="t", value_label="v")
    up, down = _marks(chart)  # the NaN draws nothing
    up_y, up_h = _numbers(up, "y", "height")
    down_y, down_h = _numbers(down, "y", "height")
    assert math.isclose(up_y + up_h, down_y, abs_tol=0.1)  # both start at the zero line
    assert math.isclose(up_h / down_h, 3 / 2, rel_tol=0.01)


def test_horizontal_bars_extend_left_of_zero_with_whiskers():
    chart = svg.bar_chart(["a", "b"], [svg.Bars("v", [0.1, -0.05], errors=[0.02, 0.01])],
                          title="t", value_label="v", horizontal=True)
    right, left = _marks(chart)
    right_x, right_w = _numbers(right, "x", "width")
    left_x, left_w = _numbers(left, "x", "width")
    assert math.isclose(left_x + left_w, right_x, abs_tol=0.1)
    assert math.isclose(right_w / left_w, 2, rel_tol=0.01)
    assert len(ET.fromstring(chart).findall("line")) >= 6  # two whiskers of three strokes


def test_a_long_category_name_is_shortened_and_the_bars_stay_on_the_canvas():
    name = "a feature group with a very long name " * 3
    chart = svg.bar_chart([name, "b"], [svg.Bars("drop", [0.1, 0.2])], title="t",
                          value_label="drop", horizontal=True, show_values=True)
    rects = _marks(chart)
    assert len(rects) == 2
    for rect in rects:
        x, width = _numbers(rect, "x", "width")
        assert x > 0 and x + width <= 600
    assert name.strip() in chart  # the bar's tooltip holds the whole name
    label = next(text for text in _texts(chart) if text.startswith("a feature"))
    assert label.endswith("\u2026") and len(label) < len(name)


def test_grouped_bars_sit_side_by_side_in_each_category():
    chart = svg.bar_chart(["1", "2"], [svg.Bars("p", [4, 2]), svg.Bars("a", [3, 1], "#999")],
                          title="t", value_label="v")
    xs = [float(m.get("x")) for m in _marks(chart)]  # p1, a1, p2, a2
    assert xs[0] < xs[1] < xs[2] < xs[3]


def test_histogram_bars_span_their_edges_on_a_log_axis():
    chart = svg.histogram([1, 10, 100, 1000], [5, 0, 3], title="t", x_label="x",
                          y_label="y", log_x=True)
    bars = _marks(chart)
    widths = [float(b.get("width")) for b in bars]
    heights = [float(b.get("height")) for b in bars]
    assert len(bars) == 3 and np.allclose(widths, widths[0])
    assert heights[1] == 0 and math.isclose(heights[0] / heights[2], 5 / 3, rel_tol=0.01)
    assert all(float(a.get("x")) < float(b.get("x")) for a, b in pairwise(bars))


@pytest.mark.parametrize(("edges", "counts", "log_x", "message"), [
    ([1, 2, 3], [1], False, "3 edges need 2 counts"), ([0, 1, 2], [1, 1], True, "positive"),
    ([2, 1], [1], False, "increasing"),
])
def test_histogram_rejects_inconsistent_bins(edges, counts, log_x, message):
    with pytest.raises(ValueError, match=message):
        svg.histogram(edges, counts, title="t", x_label="x", y_label="y", log_x=log_x)


def test_bar_chart_rejects_a_series_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 values for 3 categories"):
        svg.bar_chart(["a", "b", "c"], [svg.Bars("v", [1, 2])], title="t", value_label="v")


def test_chart_text_is_escaped():
    chart = svg.bar_chart(["<b>&"], [svg.Bars("x<y", [1])], title="a & b", value_label="<v>")
    root = ET.fromstring(chart)  # well-formed: nothing leaked as markup
    assert root.find("title").text == "a & b"
    assert "<b>" not in chart


# -- the page ---------------------------------------------------------------------------------


class _Page(HTMLParser):
    """The figures of a rendered page (data-chart, is it a note), and every tag used."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.figures: dict[str, bool] = {}
        self.tags: set[str] = set()
        self.facts: list[str] = []
        self._in_dd = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        attributes = dict(attrs)
        if tag == "figure" and "data-chart" in attributes:
            self.figures[attributes["data-chart"]] = attributes.get("data-note") == "true"
        self._in_dd = tag == "dd"

    def handle_data(self, data):
        if self._in_dd:
            self.facts.append(data)
            self._in_dd = False


def _self_contained(html: str) -> None:
    page = _Page(html)
    assert not page.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert not re.search(r"https?:|url\(|@import|src=", html)


def test_a_report_of_nothing_is_all_notes():
    rendered = render_report(ReportData(), datetime(2024, 1, 2, 3, 4))
    page = _Page(rendered.html)
    assert (rendered.charts, rendered.notes) == (0, len(CHARTS))
    assert page.figures == dict.fromkeys(CHARTS, True)
    _self_contained(rendered.html)


def _hand_made(connection: duckdb.DuckDBPyConnection) -> None:
    """clv_predictions with six customers, their clv_segment_summary's ranges and
    clv_total_summary's, an empty clv_gain_curve, clv_data_quality; the other tables the report
    reads are missing."""
    connection.execute("""
        create table clv_predictions as select * from (values
            ('a', date '2024-03-31', 365, 1200.0, 0.9, 'high_value', 'v2'),
            ('b', date '2024-03-31', 365, 45.5, 0.6, 'active', 'v2'),
            ('c', date '2024-03-31', 365, 8.0, 0.3, 'at_risk', 'v2'),
            ('d', date '2024-03-31', 365, 0.0, 0.05, 'dormant', 'v2'),
            ('e', date '2024-03-31', 365, 19.99, 0.2, 'dormant', 'v2'),
            ('f', date '2024-03-31', 365, 20.0, 0.4, 'new', 'v2')
        ) as t(customer_id, as_of_date, horizon_days, predicted_clv, purchase_probability,
               segment, model_version)""")
    connection.execute("""
        create table clv_segment_summary as select * from (values
            ('high_value', 1, 1200.0, 950.0, 1410.0), ('new', 2, 20.0, 0.0, 38.0),
            ('active', 3, 45.5, 0.0, 90.0), ('at_risk', 4, 8.0, 0.0, 21.0),
            ('dormant', 5, 19.99, 0.0, 33.0)
        ) as t(segment, segment_order, total_predicted_clv, total_predicted_clv_p10,
               total_predicted_clv_p90)""")
    connection.execute("""
        create table clv_total_summary as select * from (values
            (date '2024-03-31', 'v2', 1293.49, 1010.2, 1585.75)
        ) as t(as_of_date, model_version, total_predicted_clv, total_predicted_clv_p10,
               total_predicted_clv_p90)""")
    connection.execute("""
        create table clv_gain_curve (model_version varchar, is_current boolean,
            validation_cutoff varchar, predictor varchar, percent bigint, customers bigint,
            captured_share double, oracle_share double)""")
    connection.execute("""
        create table clv_data_quality as select * from (values
            ('missing_customer_id', 2, 100, 'T1'), ('invalid_amount', 0, 100, null)
        ) as t(reason, rows, source_rows, example_value)""")


def test_missing_and_empty_tables_become_notes_not_errors():
    connection = duckdb.connect()
    _hand_made(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert set(data.problems) == {"clv_decile_calibration", "clv_feature_importance",
                                  "clv_predictions_history", "clv_prediction_changes",
                                  "clv_prediction_explanations", "clv_model_evaluation",
                                  "clv_model_registry", "int_clv__as_of_date"}
    assert all("could not be read" in reason for reason in data.problems.values())
    rendered = render_report(data, datetime(2024, 4, 1))
    figures = _Page(rendered.html).figures
    assert {key for key, note in figures.items() if not note} == {
        "value_distribution", "segments", "data_quality"}
    assert "clv_gain_curve has no rows for model v2" in rendered.html
    assert "clv_feature_importance could not be read" in rendered.html
    assert "clv_prediction_changes could not be read" in rendered.html  # who to act on
    assert (rendered.charts, rendered.notes) == (3, 5)


def test_an_empty_predictions_table_gives_notes_and_an_empty_header():
    connection = duckdb.connect()
    _hand_made(connection)
    connection.execute("delete from clv_predictions")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert data.summary["customers"] == 0 and data.summary["as_of_date"] is None
    rendered = render_report(data, datetime(2024, 4, 1))
    page = _Page(rendered.html)
    assert page.facts[:5] == ["\u2013", "\u2013", "\u2013", "0", "\u2013"]
    assert {key for key, note in page.figures.items() if not note} == {"data_quality"}
    assert "No customer has a positive predicted value." in rendered.html
    # the history, a copy of the predictions, is then empty too: still notes, not an error
    connection.execute("create table clv_predictions_history as select *, 365 as horizon_days, "
                       "timestamp '2024-01-01' as scored_at from clv_predictions")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert data.history is not None and data.history.empty
    page = _Page(render_report(data, datetime(2024, 4, 1)).html)
    assert page.figures["history_value"] and page.figures["history_segments"]


def test_a_validation_window_without_spend_gives_notes_not_empty_charts():
    """Nobody spent at the validation cutoff (the gain curve's shares are NaN) and no decile has
    a customer: notes saying so, not a chart of the diagonal or of no bars."""
    data = ReportData(summary={"horizon_days": 90, "model_version": "v1"},
                      gain_curve=pd.DataFrame({
                          "predictor": "network", "percent": [10, 50, 100],
                          "captured_share": np.nan, "oracle_share": np.nan,
                          "validation_cutoff": "2023-09-30"}),
                      calibration=pd.DataFrame({
                          "predictor": "network", "decile": range(1, 11),
                          "mean_predicted": np.nan, "mean_actual": np.nan,
                          "validation_cutoff": "2023-09-30"}))
    gain, calibration = gain_curve_figure(data), calibration_figure(data)
    assert gain.note.startswith("No customer at ") and not gain.svg
    assert "no customer in any decile" in calibration.note and not calibration.svg


def test_summary_segments_and_bins_of_hand_made_predictions():
    connection = duckdb.connect()
    _hand_made(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    summary = data.summary
    assert (summary["customers"], summary["non_positive"], summary["model_version"]) == (6, 1,
                                                                                          "v2")
    assert math.isclose(summary["predicted_value"], 1293.49)
    segments = data.segments.set_index("segment")
    assert segments.loc["dormant", "customers"] == 2
    assert math.isclose(segments.loc["dormant", "predicted_value"], 19.99)
    bins = data.value_bins
    assert np.allclose(bins["lower"], 10 ** (np.arange(2, 10) / 3))  # 4.64, 10, ..., 1,000
    # 8 in [4.64, 10); 19.99 and 20 in [10, 21.5); 45.5 in [21.5, 46.4); 1,200; 0 not shown
    assert list(bins["customers"]) == [1, 2, 1, 0, 0, 0, 0, 1]
    html = render_report(data, datetime(2024, 4, 1)).html
    assert "Not shown: the customers predicted at 0 or less (1)." in html


def test_amounts_are_named_in_the_currency_the_var_gives():
    """clv_currency names every amount's unit, escaped; without it, "currency units"."""
    connection = duckdb.connect()
    _hand_made(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    plain = render_report(data, datetime(2024, 4, 1)).html
    assert ("Total predicted spend of the customers scored, the next 365 days (currency units)"
            in plain)
    # and its likely range, of the predictions' own run only (model and as-of date: with
    # clv_retrain never the model stays the same from day to day)
    assert ("<dt>Likely range of the total, 8 in 10</dt>"
            "<dd class=\"\">1,010 to 1,586</dd>") in plain
    no_row = "clv_total_summary has no row for these predictions"
    for change, why in (("model_version = 'v1'", no_row),
                        ("as_of_date = date '2024-02-29'", no_row),
                        ("total_predicted_clv_p10 = null, total_predicted_clv_p90 = null",
                         "no level_log_sd for this model, so no range")):
        connection.execute("create or replace table kept as select * from clv_total_summary")
        connection.execute(f"update clv_total_summary set {change}")
        other = read_report_data(DuckDBWarehouse(connection),
                                 {n: (lambda n=n: n) for n in TABLES})
        assert other.total_range is None, change
        assert (f"<dt>Likely range of the total, 8 in 10</dt><dd class=\"\">\u2013 ({why})"
                "</dd>") in render_report(other, datetime(2024, 4, 1)).html, change
        connection.execute("create or replace table clv_total_summary as select * from kept")
    connection.execute("drop table clv_total_summary")
    missing = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert ("<dd class=\"\">\u2013 (clv_total_summary could not be read: "
            in render_report(missing, datetime(2024, 4, 1)).html)
    # the span of the values, where a planner reads them: the horizon, not a lifetime
    assert "<h1>Customer lifetime value over the next 365 days, as of 2024-03-31</h1>" in plain
    assert "not a lifetime, not split by month, and without the customers who first buy" in plain
    data.currency = "A&B $"
    html = render_report(data, datetime(2024, 4, 1)).html
    assert "currency units" not in html
    assert html.count("(A&amp;B $") == plain.count("(currency units")
    assert "A&B" not in html  # never unescaped


def _hand_made_changes(connection: duckdb.DuckDBPyConnection) -> None:
    """clv_prediction_changes of five customers from 2024-03-30 to 2024-03-31 (four need
    attention, two scored by another model the day before), their explanations, and the
    models' validation Ginis."""
    connection.execute("""
        create table clv_prediction_changes as select * from (values
            ('a', 1500.0, 1200.0, -300.0, 0.7, 0.55, 1, 2, 'high_value', 'active', false,
             false, true, false, false, 'v2', true),
            ('h', 3000.0, 1400.0, -1600.0, 0.9, 0.85, 1, 1, 'high_value', 'high_value', false,
             true, false, false, false, 'v2', true),
            ('c', 60.0, 8.0, -52.0, 0.6, 0.3, 4, 7, 'active', 'at_risk', true, false, false,
             true, false, 'v1', true),
            ('e', 25.0, 19.99, -5.01, 0.2008, 0.199, 6, 6, 'at_risk', 'dormant', false,
             false, false, false, true, 'v2', true),
            ('b', 40.5, 45.5, 5.0, 0.6, 0.6, 5, 5, 'active', 'active', false, false, false,
             false, false, 'v1', false)
        ) as t(customer_id, previous_predicted_clv, predicted_clv, predicted_clv_change,
               previous_purchase_probability, purchase_probability,
               previous_value_decile, value_decile, previous_segment, segment,
               is_dropping_two_deciles, is_halving_value, is_leaving_high_value,
               is_becoming_at_risk, is_becoming_dormant, previous_model_version,
               needs_attention)""")
    connection.execute("""
        alter table clv_prediction_changes add column previous_as_of_date date
            default date '2024-03-30'""")
    connection.execute("""
        alter table clv_prediction_changes add column as_of_date date default date '2024-03-31'
    """)
    connection.execute("alter table clv_prediction_changes add column model_version varchar "
                       "default 'v2'")
    # e's explanation is of an earlier as-of date (a build that left the explanations out)
    connection.execute("""
        create table clv_prediction_explanations as select * from (values
            ('a', 'monetary', 640.0, 'v2', date '2024-03-31'),
            ('c', 'recency_frequency', -31.5, 'v2', date '2024-03-31'),
            ('c', 'monetary', 99.0, 'v1', date '2024-03-31'),
            ('e', 'monetary', 494.0, 'v2', date '2024-02-29')
        ) as t(customer_id, driver_1_group, driver_1_contribution, model_version, as_of_date)
    """)
    connection.execute("""
        create table clv_model_evaluation as select * from (values
            ('v2', true, 'network', 0.8734), ('v2', true, 'bgnbd_gamma_gamma', 0.851),
            ('v1', false, 'network', 0.5)
        ) as t(model_version, is_current, predictor, normalized_gini)""")


def test_who_to_act_on_lists_the_largest_drops_with_their_driver():
    connection = duckdb.connect()
    _hand_made(connection)
    _hand_made_changes(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert data.movements["customers"] == 5 and data.movements["needs_attention"] == 4
    assert data.ginis == {"network": 0.8734, "bgnbd_gamma_gamma": 0.851}
    attention = data.attention
    assert list(attention["customer_id"]) == ["h", "a", "c", "e"]  # the largest drop first
    # the driver of the scored model (v2) at the predictions' date; h has no explanation row,
    # e's is of another date
    assert attention["driver_1_group"].tolist()[1:3] == ["monetary", "recency_frequency"]
    assert attention["driver_1_group"].isna().tolist() == [True, False, False, True]

    html = render_report(data, datetime(2024, 4, 1)).html
    section = html.split('<section id="movements">', 1)[1].split("</section>", 1)[0]
    assert ("From 2024-03-30 to 2024-03-31, over the 5 customers scored at both, the total "
            "predicted value went from 4,626 to 2,673 currency units: \u22121,952 (\u221242.2%). "
            "4 need attention: 1 down two deciles or more; 1 value halved from the high_value "
            "deciles; 1 left high_value; 1 became at_risk; 1 became dormant. The model changed "
            "between the two dates (a retrained model) for 2 of the 5 customers") in section
    assert "clv-backfill --previous scores the date before with the new model" in section
    assert "All 4, the largest drop in predicted value first" in section
    rows = re.findall(r"<tr><td class=\"text\">(\w+)</td><td>(.*?)</td><td>([^<]*)</td>"
                      r"<td>(.*?)</td>", section)

    def seen(cell: str) -> str:  # the arrow is shown, "to" is only read aloud
        return re.sub(r'<span class="reader">[^<]*</span>|<[^>]+>', "", cell)

    def heard(cell: str) -> str:
        return " ".join(re.sub(r'<span aria-hidden="true">[^<]*</span>|<[^>]+>', "",
                               cell).split())

    # the probability beside the value: at_risk and dormant are probability bands, and a
    # crossing of one by a little shows the decimals that tell the two apart
    assert [(name, seen(value), change, seen(probability))
            for name, value, change, probability in rows] == [
        ("h", "3,000 \u2192 1,400", "\u22121,600", "90% \u2192 85%"),
        ("a", "1,500 \u2192 1,200", "\u2212300", "70% \u2192 55%"),
        ("c", "60 \u2192 8", "\u221252", "60% \u2192 30%"),
        ("e", "25 \u2192 20", "\u22125", "20.1% \u2192 19.9%")]
    assert heard(rows[0][1]) == "3,000 to 1,400" and heard(rows[0][3]) == "90% to 85%"
    assert ('<abbr title="how much they spent and per order">monetary</abbr> (+640)' in section
            and "recency_frequency</abbr> (\u221232)" in section)
    connection.execute("""insert into clv_gain_curve values
        ('v2', true, '2023-03-31', 'network', 50, 3, 0.8, 0.9),
        ('v2', true, '2023-03-31', 'network', 100, 6, 1.0, 1.0)""")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert "model (network), Gini 0.873" in render_report(data, datetime(2024, 4, 1)).html


def test_the_most_valuable_customers_are_listed_with_their_driver():
    """Who the best customers are, highest predicted value first, with what sets each one's
    value apart; customers predicted at 0 or less are not among them."""
    connection = duckdb.connect()
    _hand_made(connection)
    _hand_made_changes(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert list(data.top_customers["customer_id"]) == ["a", "b", "f", "e", "c"]  # not d (0)
    html = render_report(data, datetime(2024, 4, 1)).html
    table = html.split('data-table="top"', 1)[1].split("</table>", 1)[0]
    table = re.sub(r"<abbr title=[^>]*>(\w+)</abbr>", r"\1", table)  # the group's meaning
    rows = re.findall(r'<tr><td class="text">(\w+)</td><td>([^<]+)</td><td>([^<]+)</td>'
                      r'<td class="text">(\w+)</td><td class="text">([^<]*)</td>', table)
    assert rows[:3] == [("a", "1,200", "90.0%", "high_value", "monetary (+640)"),
                        ("b", "46", "60.0%", "active", ""), ("f", "20", "40.0%", "new", "")]
    assert "The 5 most valuable customers" in html


def test_is_the_model_worth_using_is_answered_in_words():
    """Yes, about as well, or no (with what to use instead, as the warn test says), from the
    two validation Ginis; nothing without them; and a naive rule that ranks better than both."""
    from clv.report.render import model_verdict

    def verdict(network: float, btyd: float) -> str:
        return model_verdict(ReportData(ginis={"network": network, "bgnbd_gamma_gamma": btyd}))

    assert verdict(0.878, 0.847).startswith("Yes: the model ranks the customers")
    assert "(normalized Gini 0.878 against 0.847 on the validation cutoff)" in verdict(0.878,
                                                                                      0.847)
    assert verdict(0.852, 0.847).startswith("Yes")  # 0.005 above
    assert verdict(0.850, 0.847).startswith("About as well")
    assert verdict(0.830, 0.847).startswith("About as well")
    assert verdict(0.827, 0.847).startswith("About as well")  # 0.02 below: dbt does not warn
    assert verdict(0.826, 0.847).startswith("No:")
    assert verdict(0.820, 0.847).startswith("No:")
    assert "btyd_expected_spend" in verdict(0.820, 0.847)
    assert model_verdict(ReportData(ginis={"network": 0.9})) == ""
    # a naive baseline that ranks better than both models is named
    naive = {"network": 0.878, "bgnbd_gamma_gamma": 0.847, "naive_last_horizon": 0.884,
             "naive_average_rate": 0.801}
    assert model_verdict(ReportData(ginis=naive)).endswith(
        " But a naive rule ranks them better than both models: last horizon's spend "
        "(normalized Gini 0.884).")
    assert "naive" not in model_verdict(ReportData(ginis={**naive, "naive_last_horizon": 0.882}))
    # with few buyers a lead of a few hundredths is the draw of customers: "yes" needs two
    # standard errors of the difference (gini_difference_se) when they are above 0.005
    few = {"network": 0.586, "bgnbd_gamma_gamma": 0.572}
    uncertain = model_verdict(ReportData(ginis=few,
                                         gini_difference_ses={"bgnbd_gamma_gamma": 0.015}))
    assert uncertain.startswith("About as well") and uncertain.endswith(
        "The lead of 0.014 is within what another draw of customers would move it by (two "
        "standard errors: 0.030).")
    sure = model_verdict(ReportData(ginis=few, gini_difference_ses={"bgnbd_gamma_gamma": 0.004}))
    assert sure.startswith("Yes")
    assert "naive" not in model_verdict(ReportData(
        ginis=naive, gini_difference_ses={"naive_last_horizon": 0.01}))
    # BG/NBD ahead of the network: the naive rule's lead over it needs BG/NBD's error too
    ahead = {"network": 0.840, "bgnbd_gamma_gamma": 0.847, "naive_last_horizon": 0.857}
    assert "naive rule" in model_verdict(ReportData(
        ginis=ahead, gini_difference_ses={"naive_last_horizon": 0.002}))
    assert "naive" not in model_verdict(ReportData(
        ginis=ahead, gini_difference_ses={"naive_last_horizon": 0.002,
                                          "bgnbd_gamma_gamma": 0.01}))
    connection = duckdb.connect()
    _hand_made(connection)
    _hand_made_changes(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    section = render_report(data, datetime(2024, 4, 1)).html.split('<section id="model">')[1]
    assert section.split("</h2>", 1)[1].startswith('<p class="lead">Yes: the model ranks')


def test_a_probability_short_of_certain_never_reads_100_percent():
    """The movements' probabilities: the fewest decimals that tell the two apart, but never
    100% for a probability below 1 (0.9966) or 0% for one above 0."""
    from clv.report.svg import format_probability_pair

    assert format_probability_pair(0.85, 0.68) == ("85%", "68%")
    assert format_probability_pair(0.5008, 0.4978) == ("50.1%", "49.8%")
    assert format_probability_pair(0.99, 0.9966) == ("99.0%", "99.7%")
    assert format_probability_pair(0.0004, 0.5) == ("0.04%", "50.00%")
    assert format_probability_pair(1.0, 0.9) == ("100%", "90%")
    assert format_probability_pair(0.00004, 0.00003) == ("<0.01%", "<0.01%")
    assert format_probability_pair(0.99996, 0.5) == (">99.99%", "50.00%")


def test_the_segment_table_says_what_to_do_with_each_segment_as_the_readme_does():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### Segments\n", 1)[1].split("\nValue comes first", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| .*? \| ([^|]+) \|$", section, re.MULTILINE)
    assert {name: action.strip() for name, action in rows} == SEGMENT_ACTIONS
    connection = duckdb.connect()
    _hand_made(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    html = segment_table(data)
    action = f'<td class="text">{SEGMENT_ACTIONS["at_risk"]}</td></tr>'
    assert html.count(action) == 1 and "a retention offer is worth its cost" in action


def test_who_to_act_on_before_a_second_as_of_date_says_how_to_get_one():
    connection = duckdb.connect()
    _hand_made(connection)
    _hand_made_changes(connection)
    connection.execute("delete from clv_prediction_changes")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    html = render_report(data, datetime(2024, 4, 1)).html
    section = html.split('<section id="movements">', 1)[1].split("</section>", 1)[0]
    assert "re-score on a later as-of date with the saved model" in section
    assert "<table" not in section
    # after a build at a date before the history's others, no second date is missing: there
    # is none before it to compare with
    connection.execute("""
        create table clv_predictions_history as select * from (values
            ('a', date '2024-03-31', 365, 1200.0, 'high_value', 'v2', timestamp '2024-04-01'),
            ('a', date '2024-04-30', 365, 1100.0, 'high_value', 'v2', timestamp '2024-05-01')
        ) as t(customer_id, as_of_date, horizon_days, predicted_clv, segment, model_version,
               scored_at)""")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    section = render_report(data, datetime(2024, 4, 1)).html.split(
        '<section id="movements">', 1)[1].split("</section>", 1)[0]
    assert "holds no as-of date before these predictions&#x27; own" in section
    assert "Left out: 1 later as-of date in the history (2024-04-30)" in section
    assert "re-score on a later as-of date" not in section
    # with an earlier date there (movements empty for another reason), it does not say so
    connection.execute("insert into clv_predictions_history values ('a', date '2024-02-29', "
                       "365, 1000.0, 'high_value', 'v2', timestamp '2024-03-01')")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    section = render_report(data, datetime(2024, 4, 1)).html.split(
        '<section id="movements">', 1)[1].split("</section>", 1)[0]
    assert "holds no as-of date before" not in section


def test_an_as_of_date_far_past_the_data_is_a_warning_under_the_header():
    """The rule of the clv_as_of_date_follows_the_data test: further past the last transaction
    than the data was ever quiet."""
    connection = duckdb.connect()
    _hand_made(connection)
    connection.execute("""create table int_clv__as_of_date as select date '2023-12-31' as
        last_transaction_date, 91 as days_since_last_transaction, 12 as longest_quiet_days""")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    page = render_report(data, datetime(2024, 4, 1)).html
    assert _Page(page).facts[1] == "2023-12-31"
    assert ("The as-of date is 91 days after the last transaction (2023-12-31), longer than the "
            "data was ever quiet (12 days)") in page
    assert "build again before acting on the movements" in page  # what to do about it
    connection.execute("update int_clv__as_of_date set days_since_last_transaction = 12")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert 'class="warning"' not in render_report(data, datetime(2024, 4, 1)).html


def test_a_level_without_the_season_is_a_warning_under_the_header():
    """The rule of the clv_level_is_adjusted_for_the_season test: a horizon under a year whose
    level is not adjusted for the season, with the registry's note."""
    connection = duckdb.connect()
    _hand_made(connection)
    connection.execute("""create table clv_model_registry as select * from (values
        ('v1', false, 91, false, 'an older model'),
        ('v2', true, 91, false, 'history of 240 days at the as-of date, under the 730 <two>')
        ) as t(model_version, is_current, horizon_days, is_seasonal_level, level_note)""")

    def page() -> str:
        data = read_report_data(DuckDBWarehouse(connection),
                                {n: (lambda n=n: n) for n in TABLES})
        return render_report(data, datetime(2024, 4, 1)).html

    assert ("The total is not adjusted for the season: history of 240 days at the as-of date, "
            "under the 730 &lt;two&gt;. If the next 91 days hold a peak") in page()
    assert "read them as those of a period like the last one" in page()  # what to do
    for change in ("is_seasonal_level = true", "horizon_days = 365, is_seasonal_level = false"):
        connection.execute(f"update clv_model_registry set {change} where is_current")
        assert 'class="warning"' not in page()


def test_segments_keep_their_order_and_rows_after_the_as_of_date_are_not_faults():
    connection = duckdb.connect()
    _hand_made(connection)
    connection.execute("update clv_predictions set segment = 'active' where segment = 'new'")
    connection.execute("insert into clv_data_quality values ('after_as_of_date', 30, 100, null)")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    html = render_report(data, datetime(2024, 4, 1)).html
    table = html.split('<th scope="col">segment</th>', 1)[1].split("</table>", 1)[0]
    # segment_order, and `new`, which has no customer now, as a row of zeros
    assert re.findall(r"<tr><td>(\w+)</td><td>([\d,]+)</td>", table) == [
        ("high_value", "1"), ("new", "0"), ("active", "2"), ("at_risk", "1"), ("dormant", "2")]
    assert ("Of 100 source rows, 2 (2.0%) could not be used (no customer, a time or amount "
            "that does not read, a duplicate) and 30 (30.0%) are dated after the as-of date "
            "(read by a later as-of date, not a fault; dbt warns about any dated after today)"
            ) in html
    # rows dated years ahead (a clock error) are not rows a later as-of date will read
    connection.execute("update clv_data_quality set example_value = '2099-01-07 06:19:43' "
                       "where reason = 'after_as_of_date'")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    html = render_report(data, datetime(2024, 4, 1)).html
    assert ("and 30 (30.0%) are dated after today (the earliest 2099-01-07): a clock or typing "
            "error;") in html


def test_predictions_that_are_not_finite_are_counted_and_left_out():
    """NaN and infinity pass `predicted_clv >= 0` in some engines: the report counts them and
    keeps them out of the totals and the histogram instead of failing or drawing nothing."""
    connection = duckdb.connect()
    _hand_made(connection)
    connection.execute("create or replace table clv_predictions as select * replace "
                       "(cast(predicted_clv as double) as predicted_clv) from clv_predictions")
    connection.execute("update clv_predictions set predicted_clv = 'inf' where customer_id = 'b'")
    connection.execute("update clv_predictions set predicted_clv = 'nan' where customer_id = 'c'")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    summary = data.summary
    assert (summary["non_finite"], summary["non_positive"]) == (2, 1)
    assert math.isclose(summary["predicted_value"], 1293.49 - 45.5 - 8.0)
    assert summary["max_value"] == 1200.0
    assert int(data.value_bins["customers"].sum()) == 3
    segments = data.segments.set_index("segment")
    assert segments.loc["active", "predicted_value"] == 0.0
    html = render_report(data, datetime(2024, 4, 1)).html
    assert "2 customers whose predicted value is not a finite number" in html
    assert _Page(html).figures["value_distribution"] is False


def test_predictions_that_all_fall_in_one_bin_keep_their_charts():
    """Every positive prediction in one bin (one customer, or equal values): the bins are read
    as one, and the segments are still read."""
    connection = duckdb.connect()
    _hand_made(connection)
    connection.execute("delete from clv_predictions where customer_id <> 'a'")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert "clv_predictions" not in data.problems
    assert list(data.value_bins["customers"]) == [1]
    assert data.segments.values.tolist() == [["high_value", 1, 1200.0, 0.9]]


def test_bin_sql_puts_values_in_the_bins_numpy_does():
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.lognormal(3, 2, 2000), [0.001, 10.0, 100.0, 1000.0, 1e5]])
    edges = svg.log_edges(values.min(), values.max(), max_decades=4)
    connection = duckdb.connect()
    connection.register("values_table", pd.DataFrame({"predicted_clv": values}))
    got = connection.sql(f"select {bin_sql(edges)} as value_bin from values_table").df()
    # numpy: bin i holds [edge_i, edge_i+1); what falls below the first edge joins the first
    expected = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
    assert list(got["value_bin"]) == list(expected)


def test_history_keeps_the_latest_run_at_each_date():
    """The run scored last wins, whatever its model's age (a backfill with an older model after
    a newer one's build), as in clv_prediction_changes; a tie goes to the larger version."""
    history = pd.DataFrame({
        "as_of_date": [date(2024, 1, 31)] * 3 + [date(2024, 2, 29)] * 3,
        "model_version": ["20240101_a", "20240201_b", "20240201_b",
                          "20240101_a", "20240201_b", "20240301_c"],
        "segment": ["new", "new", "active", "new", "new", "new"],
        "scored_at": pd.to_datetime(["2024-03-05", "2024-03-01", "2024-03-02",
                                     "2024-03-01", "2024-03-09", "2024-03-09"]),
        "customers": [5, 7, 3, 9, 11, 13], "predicted_value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    })
    kept = latest_run_per_date(history)
    assert list(kept["customers"]) == [5, 13]
    assert list(kept["model_version"]) == ["20240101_a", "20240301_c"]
    # a run without scored_at (a hand-loaded history) loses to any run with one
    history.loc[history["model_version"] == "20240101_a", "scored_at"] = pd.NaT
    assert list(latest_run_per_date(history)["model_version"]) == ["20240201_b", "20240201_b",
                                                                   "20240301_c"]


def test_the_history_captions_say_how_the_customers_moved_and_where_the_model_changed():
    history = pd.DataFrame({
        "as_of_date": pd.to_datetime(["2024-01-31", "2024-02-29", "2024-02-29", "2024-03-31"]),
        "model_version": ["m1", "m1", "m1", "m2"], "segment": ["new", "new", "active", "new"],
        "customers": [100, 150, 50, 300], "predicted_value": [1000.0, 1200.0, 300.0, 2400.0]})
    data = ReportData(summary={"horizon_days": 365}, history=history)
    value, _ = history_figures(data)
    assert ("From 2024-01-31 to 2024-03-31: 1,000 to 2,400 over 100 and 300 customers, 10.0 and "
            "8.00 per customer.") in value.caption
    assert ("Scored by another model than the date before (a step there is partly the "
            "model's): 2024-03-31.") in value.caption


def test_history_keeps_only_runs_over_the_predictions_horizon():
    """A date scored over another horizon (a build with another clv_horizon_days) is left
    out: its values are not comparable with the current predictions'."""
    history = pd.DataFrame({
        "as_of_date": [date(2024, 1, 31), date(2024, 2, 29), date(2024, 2, 29)],
        "model_version": ["a", "b", "a"], "horizon_days": [365, 90, 365],
        "segment": ["new"] * 3,
        "scored_at": pd.to_datetime(["2024-03-01", "2024-03-09", "2024-03-02"]),
        "customers": [5, 7, 3], "predicted_value": [100.0, 20.0, 110.0],
    })
    assert list(latest_run_per_date(history, 365)["customers"]) == [5, 3]
    assert list(latest_run_per_date(history, 90)["customers"]) == [7]
    assert list(latest_run_per_date(history)["customers"]) == [5, 7]


def test_a_history_of_zeros_starts_its_axis_at_zero():
    history = pd.DataFrame({
        "as_of_date": pd.to_datetime(["2024-01-31", "2024-02-29"]), "model_version": "a",
        "segment": "dormant", "scored_at": pd.to_datetime(["2024-03-01", "2024-03-02"]),
        "customers": [3, 3], "predicted_value": [0.0, 0.0]})
    value, _ = history_figures(ReportData(summary={"horizon_days": 365}, history=history))
    labels = _texts(value.svg)
    assert "0" in labels and not any(label.startswith("-") for label in labels)


def test_the_history_note_names_the_dates_scored_over_another_horizon():
    history = pd.DataFrame({
        "as_of_date": [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)],
        "model_version": "a", "horizon_days": [90, 90, 365], "segment": "new",
        "scored_at": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-04-01"]),
        "customers": [5, 7, 3], "predicted_value": [100.0, 20.0, 110.0]})
    assert other_horizon_dates(history, 365) == [date(2024, 1, 31), date(2024, 2, 29)]
    data = ReportData(summary={"horizon_days": 365}, history=latest_run_per_date(history, 365),
                      history_other_horizons=other_horizon_dates(history, 365))
    note = history_figures(data)[0].note
    assert note == ("The history shows once predictions over 365 days exist for two as-of "
                    "dates; so far only 2024-03-31. Scored over another horizon, so not "
                    "comparable: 2 as-of dates (2024-01-31, 2024-02-29).")


def test_the_history_stops_at_the_predictions_date_and_names_the_later_ones():
    """After a build at an older as-of date (or a date since corrected), the history's charts
    end at the predictions' own date, as clv_prediction_changes does, and say which later
    dates they leave out."""
    connection = duckdb.connect()
    _hand_made(connection)  # clv_predictions as of 2024-03-31
    connection.execute("""
        create table clv_predictions_history as select * from (values
            ('a', date '2024-02-29', 365, 1000.0, 'high_value', 'v2', timestamp '2024-03-01'),
            ('a', date '2024-03-31', 365, 1200.0, 'high_value', 'v2', timestamp '2024-04-01'),
            ('a', date '2025-03-15', 365, 10.0, 'dormant', 'v2', timestamp '2024-04-02')
        ) as t(customer_id, as_of_date, horizon_days, predicted_clv, segment, model_version,
               scored_at)""")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert sorted(set(data.history["as_of_date"].dt.date)) == [date(2024, 2, 29),
                                                              date(2024, 3, 31)]
    assert data.history_later_dates == [date(2025, 3, 15)]
    value, _ = history_figures(data)
    assert value.caption.startswith("The sum of every scored customer's predicted value")
    assert "From 2024-02-29 to 2024-03-31: 1,000 to 1,200" in value.caption
    assert ("Left out: 1 later as-of date in the history (2025-03-15), after these "
            "predictions' date") in value.caption
    # and the header says the page is not the latest picture, and what to do
    header = render_report(data, datetime(2024, 4, 1)).html.split("</header>", 1)[0]
    assert ("These predictions are for an older as-of date than the history's latest, "
            "2025-03-15: a build at an older date ran last, or that date came from data since "
            "corrected (a year mistyped). Build again at the latest date, or delete the rows of "
            "a date that should not be there") in header


def test_write_report_replaces_the_file_and_describes_it(tmp_path):
    connection = duckdb.connect()
    _hand_made(connection)
    tables = {n: (lambda n=n: n) for n in TABLES}
    path = tmp_path / "out" / "report.html"
    path.parent.mkdir()
    path.write_text("old")
    row = write_report(DuckDBWarehouse(connection), tables, str(path))
    assert len(row) == 1 and row.loc[0, "path"] == str(path.resolve())
    assert row.loc[0, "bytes"] == path.stat().st_size > 1000
    assert (row.loc[0, "charts"], row.loc[0, "notes"]) == (3, 5)
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temporary left
    _self_contained(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("value", ["", "  ", None])
def test_an_empty_report_path_writes_nothing(tmp_path, value, monkeypatch):
    monkeypatch.chdir(tmp_path)
    row = write_report(DuckDBWarehouse(duckdb.connect()), {}, value)
    assert row.loc[0, "path"] is pd.NA and row.loc[0, "bytes"] == 0
    assert pd.isna(row.loc[0, "written_at"]) and list(tmp_path.iterdir()) == []


def test_a_report_path_that_cannot_be_a_file_names_the_var(tmp_path):
    with pytest.raises(ValueError, match=r"var 'clv_report_path'.*is a directory"):
        report_path(str(tmp_path))
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"var 'clv_report_path'.*not a directory"):
        report_path(str(tmp_path / "file" / "report.html"))
    with pytest.raises(ValueError, match="var 'clv_report_path'"):
        report_path(42)
    assert report_path(DEFAULT_PATH) == Path("reports/clv_report.html")


# -- a real build, in Chromium ----------------------------------------------------------------


def _needed(available: bool, reason: str) -> None:
    """Skip without ``available``, except in CI (CI=true), where the test fails instead."""
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI installs it: .ci/run)")
    pytest.skip(reason)


def test_the_browser_check_sees_notes_and_script_errors(tmp_path):
    """The Chromium checks below are not vacuous: on a report with missing tables they find
    the notes, and a script error on the page is reported."""
    _needed(screenshot.find_browser() is not None, "Chromium is not installed")
    connection = duckdb.connect()
    _hand_made(connection)
    path = tmp_path / "report.html"
    write_report(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES}, str(path))
    drawn = {c.key: c.marks for c in screenshot.layout(path).charts if not c.is_note}
    # 8 bins from 4.64 to 2,154 (empty ones drawn flat), 5 segments x 2 shares, 2 reasons
    assert drawn == {"value_distribution": 8, "segments": 10, "data_quality": 2}
    broken = tmp_path / "broken.html"
    broken.write_text(path.read_text().replace("</body>", "<script>noSuchFunction()</script>"
                                                          "</body>"))
    console = screenshot.layout(broken).console
    assert len(console) == 1 and "noSuchFunction" in console[0]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from conftest import DbtProject

    from clv.synthetic import GeneratorSettings, generate

    workdir = tmp_path_factory.mktemp("report")
    data = generate(GeneratorSettings(n_customers=400, start_date=date(2021, 1, 1),
                                      end_date=date(2023, 12, 31), seed=11))
    data.transactions.to_csv(workdir / "transactions.csv", index=False)
    project = DbtProject(workdir)
    project.report = workdir / "reports" / "clv_report.html"
    project.vars = {"clv_transactions": str(workdir / "transactions.csv"),
                    "clv_horizon_days": 180, "clv_model_dir": str(workdir / "models"),
                    "clv_ensemble_size": 1, "clv_explanations": False,
                    "clv_report_path": str(project.report)}
    project.build(vars={**project.vars, "clv_as_of_date": FIRST_AS_OF}, select="+clv_report")
    project.build(vars={**project.vars, "clv_as_of_date": SECOND_AS_OF, "clv_retrain": "never"},
                  select="+clv_report")
    return project


@pytest.mark.slow
def test_the_build_writes_the_report_and_describes_it(built):
    row = built.query("select * from clv_report")
    assert len(row) == 1
    assert row.loc[0, "path"] == str(built.report.resolve())
    assert row.loc[0, "bytes"] == built.report.stat().st_size
    assert (row.loc[0, "charts"], row.loc[0, "notes"]) == (len(CHARTS), 0)
    html = built.report.read_text(encoding="utf-8")
    _self_contained(html)
    assert _Page(html).figures == dict.fromkeys(CHARTS, False)


@pytest.mark.slow
def test_the_header_and_the_histogram_agree_with_the_tables(built):
    predictions = built.query("select * from clv_predictions")
    facts = _Page(built.report.read_text(encoding="utf-8")).facts
    recency = built.query("select cast(last_transaction_date as varchar) as day "
                          "from int_clv__as_of_date")
    assert facts[0] == SECOND_AS_OF
    assert facts[1] == recency.day.iloc[0]
    assert facts[3] == f"{len(predictions):,}"
    assert facts[4] == f"{predictions.predicted_clv.sum():,.0f}"
    total = built.query("select * from clv_total_summary")
    assert facts[5] == (f"{total.total_predicted_clv_p10[0]:,.0f} to "
                        f"{total.total_predicted_clv_p90[0]:,.0f}")
    assert facts[6] == predictions.model_version.iloc[0]
    with duckdb.connect(str(built.database)) as connection:
        bins = read_report_data(DuckDBWarehouse(connection),
                                {n: (lambda n=n: n) for n in TABLES}).value_bins
    values = predictions.predicted_clv[predictions.predicted_clv > 0].to_numpy()
    edges = [*bins["lower"], bins["upper"].iloc[-1]]
    assert edges[0] <= values.min() and edges[-1] > values.max()
    counts, _ = np.histogram(values, bins=edges)  # numpy's last bin is closed: no value on it
    assert list(bins["customers"]) == list(counts)


@pytest.mark.slow
def test_the_importance_caption_knows_every_group_a_build_has(built):
    groups = set(built.query("select distinct feature_group from clv_feature_importance")
                 .feature_group)
    assert groups and groups <= set(GROUP_MEANINGS), groups - set(GROUP_MEANINGS)


@pytest.mark.slow
def test_who_to_act_on_agrees_with_the_change_list(built):
    changes = built.query("select * from clv_prediction_changes")
    html = built.report.read_text(encoding="utf-8")
    section = html.split('<section id="movements">', 1)[1].split("</section>", 1)[0]
    flagged = changes[changes.needs_attention].sort_values(["predicted_clv_change",
                                                             "customer_id"])
    assert f"{len(changes):,} customers scored at both" in section
    assert f"{len(flagged):,} need attention" in section
    listed = re.findall(r'<tr><td class="text">([^<]+)</td>', section)
    assert listed == list(flagged.customer_id[:ATTENTION_ROWS])


@pytest.mark.slow
def test_on_a_phone_the_page_keeps_its_width_and_the_charts_their_size(built):
    """At 500 px (headless Chromium's narrowest window) the page does not scroll sideways as a
    whole (the wide tables and the charts scroll inside their boxes), and a chart keeps the
    size its text is readable at."""
    _needed(screenshot.find_browser() is not None, "Chromium is not installed")
    layout = screenshot.layout(built.report, width=500)
    assert layout.page_width <= 500, layout.page_width
    assert all(chart.box[2] >= 560 for chart in layout.charts), layout.charts


@pytest.mark.slow
def test_charts_sit_side_by_side_only_where_their_text_stays_readable(built):
    """At 1,000 px one chart per row, each at least as wide as it is drawn (600 units); at
    1,280 px two per row, each at 90% of it or more (the 13-unit ticks stay above 11 px; two
    per row at 960 px drew them at 9 px)."""
    _needed(screenshot.find_browser() is not None, "Chromium is not installed")
    narrow = screenshot.layout(built.report, width=1000)
    assert len({chart.box[0] for chart in narrow.charts}) == 1, narrow.charts
    assert all(chart.box[2] >= 600 for chart in narrow.charts), narrow.charts
    wide = screenshot.layout(built.report, width=1280)
    assert len({chart.box[0] for chart in wide.charts}) == 2, wide.charts
    assert all(chart.box[2] >= 540 for chart in wide.charts), wide.charts


@pytest.mark.slow
def test_on_paper_the_folded_tables_print_open(built, tmp_path):
    """The print style opens every folded "The numbers" table: the report prints on as many
    pages as a copy with each of them open, and on more than a copy without them."""
    _needed(screenshot.find_browser() is not None, "Chromium is not installed")
    html = built.report.read_text(encoding="utf-8")
    assert html.count('<details class="numbers">') >= 5

    def pages(page: str) -> int:
        copy, pdf = tmp_path / "copy.html", tmp_path / "copy.pdf"
        copy.write_text(page, encoding="utf-8")
        screenshot.run_browser(copy.as_uri(), [f"--print-to-pdf={pdf}", "--no-pdf-header-footer"],
                               screenshot.WIDTH, 1000)
        return len(re.findall(rb"/Type /Page\b(?!s)", pdf.read_bytes()))

    opened = html.replace('<details class="numbers">', '<details class="numbers" open>')
    without = re.sub(r'<details class="numbers">.*?</details>', "", html, flags=re.S)
    assert pages(html) == pages(opened) > pages(without)


@pytest.mark.slow
def test_every_chart_draws_in_headless_chromium(built, tmp_path):
    _needed(screenshot.find_browser() is not None, "Chromium is not installed")
    try:
        from PIL import Image
    except ImportError:
        Image = None
    _needed(Image is not None, "Pillow is not installed (pip install -e '.[dev]')")
    png = tmp_path / "report.png"
    layout, console = screenshot.screenshot(built.report, png)
    assert layout.console == [] and console == [], "the page logged messages (script errors?)"
    assert [chart.key for chart in layout.charts] == list(CHARTS)
    pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (layout.page_height, screenshot.WIDTH)
    for chart in layout.charts:
        left, top, width, height = chart.box
        assert not chart.is_note and chart.marks > 0, chart
        assert width > 400 and height > 150, chart  # readable at laptop size
        region = pixels[top:top + height, left:left + width]
        # axes and text are grey; the data are drawn in colour (a two-point line covers
        # about 0.6 % of its chart, a histogram a quarter)
        inked = (region.min(axis=2) < 200).mean()  # share of clearly non-white pixels
        coloured = (np.ptp(region, axis=2) > 60).mean()  # share of saturated pixels
        assert inked > 0.01 and coloured > 0.002, (chart.key, inked, coloured)


def test_the_decile_chart_says_its_prediction_is_the_network_before_the_level():
    """clv_decile_calibration holds the network's own prediction at the validation cutoff: a
    reader must not take its gap to the actual spend for the published total's error."""
    data = ReportData(calibration=pd.DataFrame({
        "predictor": "network", "decile": range(1, 11),
        "mean_predicted": np.linspace(100, 10, 10), "mean_actual": np.linspace(80, 8, 10),
        "validation_cutoff": "2023-09-30"}))
    caption = calibration_figure(data).caption
    assert "the network's own (network_clv), before the spend level" in caption
    assert "not the published total's accuracy" in caption


def test_the_segment_table_gives_each_total_its_likely_range():
    """clv_segment_summary's p10 and p90 totals beside each segment's predicted value: the
    uncertainty a planner budgets with."""
    connection = duckdb.connect()
    _hand_made(connection)
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    html = segment_table(data)
    assert '<th scope="col">likely range, 8 in 10</th>' in html
    cells = re.findall(r"<tr><td>(\w+)</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>"
                       r"<td>([^<]*)</td>", html)
    assert cells[0] == ("high_value", "1,200", "950 \u2013 1,410")
    assert cells[2] == ("active", "46", "0 \u2013 90")
    assert "should fall 8 times in 10" in html
    connection.execute("drop table clv_segment_summary")
    data = read_report_data(DuckDBWarehouse(connection), {n: (lambda n=n: n) for n in TABLES})
    assert "likely range" not in segment_table(data)  # an older warehouse: no column


def test_the_total_over_time_has_no_segments_colour():
    """The two history charts sit side by side: the total's line must not read as a segment."""
    history = pd.DataFrame({
        "as_of_date": pd.to_datetime(["2024-01-31"] * 5 + ["2024-02-29"] * 5),
        "model_version": "m1", "segment": list(SEGMENTS) * 2,
        "customers": range(1, 11), "predicted_value": [float(v) for v in range(10, 110, 10)]})
    value, sizes = history_figures(ReportData(summary={"horizon_days": 365}, history=history))
    def lines(svg: str) -> set[str]:
        return set(re.findall(r'<path class="mark" d="[^"]*" fill="none" stroke="([^"]+)"', svg))

    segments, total = lines(sizes.svg), lines(value.svg)
    assert len(segments) == len(SEGMENTS) and len(total) == 1 and not total & segments


def test_every_chart_without_value_labels_has_its_numbers_as_a_table():
    """The charts' values in tables a screen reader and a reader of print can read (folded
    under the chart): the deciles' means, the gain curve's shares per percent and predictor,
    and each line told apart by its dash pattern as well as its colour."""
    data = ReportData(
        summary={"horizon_days": 90, "model_version": "v1"},
        calibration=pd.DataFrame({
            "predictor": "network", "decile": range(1, 11),
            "mean_predicted": np.linspace(1000, 10, 10), "mean_actual": np.linspace(800, 8, 10),
            "validation_cutoff": "2023-09-30"}),
        gain_curve=pd.DataFrame({
            "predictor": ["network"] * 3 + ["bgnbd_gamma_gamma"] * 3,
            "percent": [10, 50, 100] * 2, "captured_share": [0.5, 0.9, 1.0, 0.4, 0.8, 1.0],
            "oracle_share": [0.6, 0.95, 1.0] * 2, "validation_cutoff": "2023-09-30"}))
    deciles = calibration_figure(data)
    rows = re.findall(r'<tr><th scope="row">(\d+)</th><td>([^<]*)</td><td>([^<]*)</td></tr>',
                      deciles.html())
    assert rows[0] == ("1", "1,000", "800") and rows[-1] == ("10", "10.0", "8.00")
    assert len(rows) == 10 and '<details class="numbers">' in deciles.html()
    gain = gain_curve_figure(data)
    table = gain.html().split('<details class="numbers">', 1)[1]
    header = re.findall(r'<th scope="col">([^<]+)</th>', table)
    assert header == ["top % of customers, ranked by each predictor", "model (network)",
                      "BG/NBD + Gamma-Gamma", "perfect ranking"]
    assert re.findall(r'<tr><th scope="row">50</th><td>([^<]*)</td><td>([^<]*)</td>'
                      r'<td>([^<]*)</td></tr>', table) == [("90.0", "80.0", "95.0")]
    dashes = re.findall(r'<path class="mark" d="[^"]*" fill="none" stroke="[^"]+" '
                        r'stroke-width="2.5" stroke-linejoin="round"(?: stroke-dasharray='
                        r'"([^"]+)")?>', gain.svg)
    assert len(dashes) == 4 and len(set(dashes)) == 4  # two predictors, perfect, random
    # the table scrolls sideways on a narrow page and is reached from the keyboard
    assert '<div class="scroll" tabindex="0" role="region"' in table
