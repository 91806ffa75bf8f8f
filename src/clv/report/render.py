"""The report page: HTML with inline SVG charts, from :class:`clv.report.data.ReportData`.

One self-contained file: the styles are inline, the charts are SVG drawn by
:mod:`clv.report.svg`, there is no script and nothing is loaded from elsewhere. A chart whose
data is missing or empty is replaced by a note that says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from clv import __version__
from clv.report import svg
from clv.report.data import TABLES, ReportData

PREDICTORS = {  # predictor -> (legend name, colour, dash pattern), in legend order
    "network": ("model (network)", svg.PALETTE[0], svg.DASHES[0]),
    "bgnbd_gamma_gamma": ("BG/NBD + Gamma-Gamma", svg.PALETTE[1], svg.DASHES[1]),
    "naive_last_horizon": ("naive: last horizon's spend", svg.PALETTE[2], svg.DASHES[2]),
    "naive_average_rate": ("naive: average spend rate", svg.PALETTE[3], svg.DASHES[3]),
}
PERFECT = ("perfect ranking", "#444444", svg.DASHES[4])
# the grey of a series beside the model's colour (at least 4.5:1 on white)
REFERENCE_GREY = "#767676"
RANDOM = ("random order", REFERENCE_GREY, svg.DASHES[5])
# what each feature group holds (clv_feature_groups() in macros/clv_settings.sql, and the two
# the network adds), for the captions
GROUP_MEANINGS = {
    "recency_frequency": "how often and how recently the customer bought",
    "monetary": "how much they spent and per order",
    "trailing_windows": "orders and spend in the last weeks and months",
    "trends": "recent activity against the year's",
    "refunds": "refunds",
    "categories": "product categories bought",
    "attributes": "clv_customers' attributes",
    "events": "browsing events",
    "btyd": "the BG/NBD + Gamma-Gamma inputs",
    "activity_sequence": "spend and orders period by period",
}
# the segments, in clv_segment_summary's segment_order (macros/clv_settings.sql)
SEGMENTS = ("high_value", "new", "active", "at_risk", "dormant")
# what to do with each segment, as the README's segment table says it
SEGMENT_ACTIONS = {
    "high_value": "keep them: service, loyalty, no needless discounts",
    "new": "onboarding: make the second purchase happen",
    "active": "likely to buy: cross-sell, upsell",
    "at_risk": "may not come back within the horizon: a retention offer is worth its cost",
    "dormant": "unlikely to buy: cheap win-back only, or leave out of paid campaigns",
}
# the total over time: a colour that no segment's line has in the chart beside it (the
# segments take the palette's first five)
TOTAL_COLOR = svg.PALETTE[len(SEGMENTS)]


@dataclass(frozen=True)
class Figure:
    """A chart (``svg``) or, when there is nothing to draw, a note saying why."""

    key: str  # data-chart attribute: a stable name for tests and styling
    title: str
    caption: str
    svg: str | None = None
    note: str | None = None
    table: str = ""  # the chart's numbers as an HTML table (svg.lines_table, ...), folded

    def html(self) -> str:
        head = (f"<figcaption><h3>{escape(self.title)}</h3>"
                + (f"<p>{escape(self.caption)}</p>" if self.caption else "") + "</figcaption>")
        if self.svg is not None:
            numbers = (f'<details class="numbers"><summary>The numbers</summary>'
                       f"{_scroll(self.table, self.title)}</details>" if self.table else "")
            return (f'<figure class="chart" data-chart="{self.key}">{head}{self.svg}{numbers}'
                    "</figure>")
        return (f'<figure class="chart empty" data-chart="{self.key}" data-note="true">'
                f'{head}<p class="note">{escape(self.note or "Nothing to show.")}</p></figure>')


def _scroll(table: str, label: str) -> str:
    """A table in a box that scrolls sideways when the page is narrower, reachable from the
    keyboard (a focusable, named region)."""
    return (f'<div class="scroll" tabindex="0" role="region" aria-label="{escape(label)}">'
            f"{table}</div>")


@dataclass(frozen=True)
class Rendered:
    html: str
    charts: int  # charts drawn
    notes: int  # charts replaced by a note


def _note(data: ReportData, table: str, empty: str) -> str:
    """Why a chart from ``table`` is not drawn: the read problem, else ``empty``."""
    return data.problems.get(table, empty)


def _horizon(data: ReportData) -> str:
    days = data.summary.get("horizon_days")
    return f"the next {int(days)} days" if svg.finite(days) else "the horizon"


def _model_label(data: ReportData) -> str:
    version = data.summary.get("model_version")
    return f"model {version}" if version else "the scored model"


def _validation(frame: pd.DataFrame) -> str:
    cutoffs = [str(c) for c in frame.get("validation_cutoff", pd.Series(dtype=str)).dropna()]
    return f"the validation cutoff {cutoffs[0]}" if cutoffs else "the validation cutoff"


# -- the charts -------------------------------------------------------------------------------


def gain_curve_figure(data: ReportData) -> Figure:
    title = "Gain curve: who holds the spend"
    frame = data.gain_curve
    if frame is None or frame.empty:
        return Figure("gain_curve", title, "", note=_note(
            data, "clv_gain_curve", f"clv_gain_curve has no rows for {_model_label(data)} "
            "(models saved before gain curves were computed have none)."))
    if not np.isfinite(frame["captured_share"].to_numpy(float)).any():
        return Figure("gain_curve", title, "", note=(
            f"No customer at {_validation(frame)} spent anything over {_horizon(data)}: there "
            "is no spend for a ranking to hold."))
    frame = frame.sort_values("percent")
    lines = []
    names = list(PREDICTORS) + sorted(set(frame["predictor"]) - set(PREDICTORS))
    for index, predictor in enumerate(names):
        rows = frame[frame["predictor"] == predictor]
        if rows.empty:
            continue
        name, color, dash = PREDICTORS.get(
            predictor, (predictor, svg.PALETTE[4 + index % 4], svg.DASHES[index % 4]))
        if predictor in data.ginis:
            name += f", Gini {data.ginis[predictor]:.3f}"
        points = [(0.0, 0.0), *zip(rows["percent"], rows["captured_share"] * 100, strict=True)]
        lines.append(svg.Line(name, points, color, dash))
    best = frame.groupby("percent")["oracle_share"].max()
    lines.append(svg.Line(PERFECT[0], [(0.0, 0.0), *zip(best.index, best * 100, strict=True)],
                          *PERFECT[1:]))
    random = svg.Line(RANDOM[0], [(0.0, 0.0), (100.0, 100.0)], *RANDOM[1:])
    labels = {"x_label": "top % of customers, ranked by each predictor",
              "y_label": "share of actual spend held (%)"}
    chart = svg.line_chart(
        [*lines, random], title=title, **labels, x_domain=(0, 100), y_domain=(0, 100),
        x_ticks=[0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    table = svg.lines_table(lines, **labels, y_format=partial(svg.format_number, decimals=1))
    caption = (f"Customers at {_validation(frame)}, ranked by each predictor: the share of their "
               f"actual spend over {_horizon(data)} held by the top x %. Higher is better; the "
               "perfect ranking line is the best any ranking can do."
               + (" The legend gives each predictor's normalized Gini there (clv_model_evaluation;"
                  " 1 is a perfect ranking, 0 a random one)." if data.ginis else ""))
    return Figure("gain_curve", title, caption, svg=chart, table=table)


def calibration_figure(data: ReportData) -> Figure:
    title = "Predicted against actual, by decile"
    frame = data.calibration
    rows = None if frame is None else frame[frame["predictor"] == "network"]
    if rows is None or rows.empty:
        return Figure("decile_calibration", title, "", note=_note(
            data, "clv_decile_calibration",
            f"clv_decile_calibration has no rows for {_model_label(data)}."))
    if not np.isfinite(rows[["mean_predicted", "mean_actual"]].to_numpy(float)).any():
        return Figure("decile_calibration", title, "", note=(
            f"clv_decile_calibration has no customer in any decile for {_model_label(data)}."))
    rows = rows.sort_values("decile")
    deciles = [str(int(d)) for d in rows["decile"]]
    bars = [svg.Bars("mean predicted", list(rows["mean_predicted"]), svg.PALETTE[0]),
            svg.Bars("mean actual", list(rows["mean_actual"]), REFERENCE_GREY)]
    labels = {"value_label": f"spend per customer ({_money(data)})",
              "category_label": "decile of the model's prediction (1 = highest)"}
    chart = svg.bar_chart(deciles, bars, title=title, **labels)
    caption = (f"Customers at {_validation(rows)} in ten equal groups by the model's prediction: "
               f"mean predicted and mean actual spend over {_horizon(data)}. The prediction is "
               "the network's own (network_clv), before the spend level that sets the total "
               "of clv_predictions (fitted on the earlier training windows, clv_model_registry."
               "level_note): the bars show the ranking and the shape across deciles, not the "
               "published total's accuracy.")
    return Figure("decile_calibration", title, caption, svg=chart,
                  table=svg.bars_table(deciles, bars, **labels))


def distribution_figure(data: ReportData) -> Figure:
    title = "Distribution of predicted value"
    bins = data.value_bins
    if bins is None or bins.empty or int(bins["customers"].sum()) == 0:
        return Figure("value_distribution", title, "", note=_note(
            data, "clv_predictions", "No customer has a positive predicted value."))
    edges = [*bins["lower"], float(bins["upper"].iloc[-1])]
    x_label = f"predicted value over {_horizon(data)} ({_money(data)}, log scale)"
    chart = svg.histogram(edges, list(bins["customers"]), title=title, log_x=True,
                          x_label=x_label, y_label="customers")
    caption = ("Customers by predicted value, in bins of equal width on the log axis (three "
               "per tenfold: 10 to 21.5, 21.5 to 46.4, 46.4 to 100, ...), so that every "
               "order of magnitude is visible.")
    below = int(data.summary.get("non_positive") or 0)
    if below:
        caption += (f" Not shown: the customers predicted at 0 or less "
                    f"({svg.format_number(below, 0)}).")
    caption += _non_finite(data)
    first = float(bins["lower"].iloc[0])
    low = data.summary.get("min_positive")
    if svg.finite(low) and float(low) < first:
        caption += (f" The first bar also holds the customers below "
                    f"{svg.format_significant(first)}.")
    table = svg.histogram_table(edges, list(bins["customers"]),
                                x_label=f"predicted value ({_money(data)})", y_label="customers")
    return Figure("value_distribution", title, caption, svg=chart, table=table)


def _non_finite(data: ReportData) -> str:
    """The sentence saying how many predicted values are not finite numbers (none: empty);
    they are left out of every total, the histogram and the segments' values."""
    count = int(data.summary.get("non_finite") or 0)
    if not count:
        return ""
    return (f" Left out of every total and chart: {svg.format_number(count, 0)} customers "
            "whose predicted value is not a finite number.")


def _segments(data: ReportData) -> pd.DataFrame | None:
    """The segments in their order (clv_segment_summary's segment_order), one without
    customers shown as 0, and any other value after them."""
    frame = data.segments
    if frame is None or frame.empty:
        return None
    frame = frame.assign(segment=frame["segment"].fillna("(none)").astype(str))
    others = sorted(set(frame["segment"]) - set(SEGMENTS))
    frame = (frame.set_index("segment").reindex([*SEGMENTS, *others])
             .fillna({"customers": 0, "predicted_value": 0.0}).rename_axis("segment")
             .reset_index())
    return frame.astype({"customers": "int64", "predicted_value": "float64"})


def segment_figure(data: ReportData) -> Figure:
    title = "Segments: customers and predicted value"
    frame = _segments(data)
    customers = 0 if frame is None else frame["customers"].sum()
    if frame is None or not customers:
        return Figure("segments", title, "", note=_note(data, "clv_predictions",
                                                        "clv_predictions has no rows."))
    value = frame["predicted_value"].sum()
    shares = [svg.Bars("share of customers", list(frame["customers"] / customers * 100),
                       svg.PALETTE[0]),
              svg.Bars("share of predicted value",
                       list(frame["predicted_value"] / value * 100 if value else
                            [float("nan")] * len(frame)), svg.PALETTE[1])]
    chart = svg.bar_chart(list(frame["segment"]), shares, title=title,
                          value_label="share of all scored customers or of their value (%)",
                          horizontal=True, show_values=True,
                          value_format=lambda v: f"{svg.format_number(v, 0)}%")
    caption = (f"Each segment's share of the {svg.format_number(customers, 0)} scored customers "
               f"and of their {svg.format_number(value, 0)} predicted value over "
               f"{_horizon(data)}; the table below has the counts and amounts."
               + _non_finite(data))
    return Figure("segments", title, caption, svg=chart)


def _per_customer(value: float, customers: int) -> str:
    return svg.format_number(value / customers) if customers else ""


def segment_table(data: ReportData) -> str:
    frame = _segments(data)
    if frame is None:
        return ""
    customers, value = frame["customers"].sum(), frame["predicted_value"].sum()
    ranges = _segment_ranges(data)

    def likely(segment: str) -> str:
        low, high = ranges.get(segment, (None, None))
        if not (svg.finite(low) and svg.finite(high)):
            return ""
        return f"{svg.format_number(low, 0)} \u2013 {svg.format_number(high, 0)}"

    rows = "".join(
        f"<tr><td>{escape(row.segment)}</td>"
        f"<td>{svg.format_number(row.customers, 0)}</td>"
        f"<td>{svg.format_percent(row.customers / customers, 1) if customers else ''}</td>"
        f"<td>{svg.format_number(row.predicted_value, 0)}</td>"
        + (f"<td>{likely(row.segment)}</td>" if ranges else "")
        + f"<td>{svg.format_percent(row.predicted_value / value, 1) if value else ''}</td>"
        f"<td>{_per_customer(row.predicted_value, row.customers)}</td>"
        f"<td>{svg.format_percent(row.mean_probability, 1) if row.customers else ''}</td>"
        f'<td class="text">{escape(SEGMENT_ACTIONS.get(str(row.segment), ""))}</td></tr>'
        for row in frame.itertuples())
    money = escape(_money(data))
    head = svg.table_head("segment", "customers", "share of customers",
                          f"predicted value ({money})",
                          *(["likely range, 8 in 10"] if ranges else []), "share of value",
                          "mean per customer", "mean purchase probability",
                          ("what to do with it",))
    table = _scroll(f'<table class="figures">{head}<tbody>{rows}</tbody></table>', "segments")
    if not ranges:
        return table
    return table + ('<p class="note">Likely range: between these two totals the segment\'s '
                    "actual spend over the horizon should fall 8 times in 10 "
                    "(clv_segment_summary: total_predicted_clv_p10 and _p90), counting each "
                    "customer's own uncertainty and how far the spend level missed in its "
                    "backtests.</p>")


def _segment_ranges(data: ReportData) -> dict[str, tuple[float, float]]:
    """Each segment's p10 and p90 total (clv_segment_summary); none read: empty."""
    frame = data.segment_ranges
    if frame is None or frame.empty:
        return {}
    return {str(row.segment): (row.total_predicted_clv_p10, row.total_predicted_clv_p90)
            for row in frame.itertuples()}


def importance_figure(data: ReportData) -> Figure:
    title = "What the model relies on"
    frame = data.importance
    used = None if frame is None else frame[frame["gini_drop"].notna()]
    if used is None or used.empty:
        return Figure("feature_importance", title, "", note=_note(
            data, "clv_feature_importance",
            f"clv_feature_importance has no rows for {_model_label(data)} (models saved "
            "before feature importance was computed have none)."))
    used = used.sort_values(["gini_drop", "feature_group"], ascending=[False, True])
    groups = list(used["feature_group"])
    drops = [svg.Bars("drop in normalized Gini", list(used["gini_drop"]), svg.PALETTE[0],
                      errors=list(used["gini_drop_std"].fillna(0.0)))]
    value_label = "drop in normalized Gini when the group is shuffled"
    chart = svg.bar_chart(groups, drops, title=title, value_label=value_label, horizontal=True)
    table = svg.bars_table(groups, drops, category_label="feature group",
                           value_label=value_label, value_format=lambda v: f"{v:.4f}")
    caption = (f"Feature groups by permutation importance at {_validation(used)}: how much "
               "worse the model ranks customers without the group's information (whiskers: "
               "one standard deviation over the repeats; about 0 means unused).")
    meanings = [f"{group}: {GROUP_MEANINGS[group]}" for group in used["feature_group"]
                if group in GROUP_MEANINGS]
    if meanings:
        caption += " The groups: " + "; ".join(meanings) + "."
    caption += (" A group the data does not have (no clv_customers, clv_events or categories) "
                "is filled with zeros and shows about 0.")
    unused = sorted(set(frame["feature_group"]) - set(used["feature_group"]))
    if unused:
        caption += f" Groups without inputs in this run: {', '.join(unused)}."
    return Figure("feature_importance", title, caption, svg=chart, table=table)


def _dates(values: Sequence[date]) -> list[float]:
    return [float(value.toordinal()) for value in values]


def _date_label(ordinal: float) -> str:
    return date.fromordinal(round(ordinal)).isoformat()


def _date_ticks(ordinals: Sequence[float], count: int = 6) -> list[float]:
    if len(ordinals) <= count:
        return list(ordinals)
    step = (len(ordinals) - 1) / (count - 1)
    return [ordinals[round(index * step)] for index in range(count)]


def _other_horizons(data: ReportData) -> str:
    """The sentence naming the as-of dates left out of the history because they were scored
    over another horizon than the current predictions' (none: empty)."""
    other = data.history_other_horizons
    if not other:
        return ""
    return (f" Scored over another horizon, so not comparable: {len(other)} as-of "
            f"date{'s' if len(other) != 1 else ''} ({', '.join(d.isoformat() for d in other[:3])}"
            f"{', ...' if len(other) > 3 else ''}).")


def _history_before_predictions(data: ReportData) -> bool:
    """Whether the history holds an as-of date before the predictions' own."""
    history, as_of = data.history, data.summary.get("as_of_date")
    if history is None or history.empty or as_of is None:
        return False
    return bool((history["as_of_date"] < pd.Timestamp(as_of)).any())


def _later_dates(data: ReportData) -> str:
    """The sentence naming the as-of dates of the history after the predictions' own, left out
    (none: empty)."""
    later = data.history_later_dates
    if not later:
        return ""
    return (f" Left out: {len(later)} later as-of date{'s' if len(later) != 1 else ''} in the "
            f"history ({', '.join(d.isoformat() for d in later[:3])}"
            f"{', ...' if len(later) > 3 else ''}), after these predictions' date: a build at an "
            "older date ran after them, or they came from data since corrected (dbt build warns "
            "clv_predictions_are_of_the_latest_as_of_date).")


def history_figures(data: ReportData) -> list[Figure]:
    titles = ("Total predicted value over time", "Segment sizes over time")
    frame = data.history
    dates = [] if frame is None else sorted(set(frame["as_of_date"].dt.date))
    if len(dates) < 2:
        days = data.summary.get("horizon_days")
        over = f" over {int(days)} days" if svg.finite(days) else ""
        note = _note(data, "clv_predictions_history",
                     f"The history shows once predictions{over} exist for two as-of dates"
                     + (f"; so far only {dates[0].isoformat()}." if dates else ".")
                     + _other_horizons(data) + _later_dates(data))
        return [Figure("history_value", titles[0], "", note=note),
                Figure("history_segments", titles[1], "", note=note)]
    ordinals = _dates(dates)
    ticks = _date_ticks(ordinals)
    markers = len(dates) <= 40
    totals = frame.groupby("as_of_date")[["predicted_value", "customers"]].sum().sort_index()
    total = [svg.Line("total predicted value", list(zip(ordinals, totals["predicted_value"],
                                                        strict=True)), TOTAL_COLOR,
                      markers=markers)]
    value_labels = {"x_label": "as-of date",
                    "y_label": f"total predicted value ({_money(data)})"}
    value = svg.line_chart(total, title=titles[0], **value_labels, x_format=_date_label,
                           x_ticks=ticks, y_domain=(0, float(totals["predicted_value"].max())))
    sizes = frame.pivot_table(index="as_of_date", columns="segment", values="customers",
                              aggfunc="sum").reindex(pd.to_datetime(dates)).fillna(0)
    order = [*[s for s in SEGMENTS if s in sizes.columns],
             *sorted((s for s in sizes.columns if s not in SEGMENTS), key=str)]
    lines = [svg.Line(str(segment), list(zip(ordinals, sizes[segment], strict=True)),
                      svg.PALETTE[index % len(svg.PALETTE)],
                      svg.DASHES[index % len(svg.DASHES)], markers=markers)
             for index, segment in enumerate(order)]
    segments = svg.line_chart(lines, title=titles[1], x_label="as-of date", y_label="customers",
                              x_format=_date_label, x_ticks=ticks,
                              y_domain=(0, float(sizes.to_numpy().max())))
    whole = partial(svg.format_number, decimals=0)
    caption = ("At each as-of date in clv_predictions_history, its latest scoring run (as in "
               "clv_prediction_changes)." + _model_changes(frame) + _later_dates(data))
    return [Figure("history_value", titles[0],
                   f"The sum of every scored customer's predicted value over {_horizon(data)}. "
                   + _first_to_last(totals) + caption, svg=value,
                   table=svg.lines_table(total, **value_labels, x_format=_date_label,
                                         y_format=whole)),
            Figure("history_segments", titles[1], "Customers in each segment. " + caption,
                   svg=segments,
                   table=svg.lines_table(lines, x_label="as-of date", y_label="customers",
                                         x_format=_date_label, y_format=whole))]


def _first_to_last(totals: pd.DataFrame) -> str:
    """How the total, the customers scored and the value per customer moved from the first
    as-of date to the last: a total that grows with the customers is not a customer worth
    more."""
    first, last = totals.iloc[0], totals.iloc[-1]

    def per_customer(row: pd.Series) -> str:
        return svg.format_number(row["predicted_value"] / row["customers"]) if row["customers"] \
            else "\u2013"

    return (f"From {totals.index[0]:%Y-%m-%d} to {totals.index[-1]:%Y-%m-%d}: "
            f"{svg.format_number(first['predicted_value'], 0)} to "
            f"{svg.format_number(last['predicted_value'], 0)} over "
            f"{svg.format_number(first['customers'], 0)} and "
            f"{svg.format_number(last['customers'], 0)} customers, "
            f"{per_customer(first)} and {per_customer(last)} per customer. ")


def _model_changes(history: pd.DataFrame) -> str:
    """The as-of dates scored by another model than the date before (a retrained model: a
    step there is partly the model's), as a sentence; none: empty."""
    models = (history.drop_duplicates("as_of_date").set_index("as_of_date")["model_version"]
              .sort_index())
    changed = [f"{day:%Y-%m-%d}" for day, model, before
               in zip(models.index[1:], models.iloc[1:], models.iloc[:-1], strict=True)
               if model != before]
    if not changed:
        return ""
    return (f" Scored by another model than the date before (a step there is partly the "
            f"model's): {', '.join(changed[:5])}{', ...' if len(changed) > 5 else ''}.")


def _after_as_of(frame: pd.DataFrame, later: int, written_at: datetime) -> str:
    """The clause on rows dated after the as-of date: rows a later as-of date reads, or, when
    even the earliest of them lies after the day the report is written (in any time zone),
    rows dated in the future: a clock or typing error, which dbt warns about."""
    if not later:
        return ""
    example = frame.loc[frame["reason"] == "after_as_of_date", "example_value"]
    earliest = pd.to_datetime(example.iloc[0] if len(example) else None, errors="coerce")
    if pd.notna(earliest) and earliest.date() > written_at.date() + timedelta(days=1):
        return (f" and {{rows}} are dated after today (the earliest {earliest:%Y-%m-%d}): a "
                "clock or typing error")
    return (" and {rows} are dated after the as-of date (read by a later as-of date, not a "
            "fault; dbt warns about any dated after today)")


def data_quality_figure(data: ReportData, written_at: datetime) -> Figure:
    title = "Rows excluded before modelling"
    frame = data.data_quality
    if frame is None or frame.empty:
        return Figure("data_quality", title, "", note=_note(
            data, "clv_data_quality", "clv_data_quality has no rows."))
    source = int(frame["source_rows"].max()) if frame["source_rows"].notna().any() else 0
    excluded = int(frame["rows"].sum())
    chart = svg.bar_chart(
        list(frame["reason"].astype(str)),
        [svg.Bars("excluded rows", list(frame["rows"]), svg.PALETTE[5])],
        title=title, value_label="rows excluded", horizontal=True, show_values=True,
        value_format=lambda v: svg.format_number(v, 0))
    later = int(frame.loc[frame["reason"] == "after_as_of_date", "rows"].sum())
    unusable = excluded - later

    def share(rows: int) -> str:
        return f" ({svg.format_percent(rows / source, 1)})" if source else ""

    caption = (f"Of {svg.format_number(source, 0)} source rows, {svg.format_number(unusable, 0)}"
               f"{share(unusable)} could not be used (no customer, a time or amount that does "
               "not read, a duplicate)"
               + _after_as_of(frame, later, written_at).format(
                   rows=f"{svg.format_number(later, 0)}{share(later)}")
               + "; counted by reason in clv_data_quality, whose example value is the text "
               "that did not read, or the transaction id. Refunds (negative amounts) are kept.")
    return Figure("data_quality", title, caption, svg=chart)


def _rows(frame: pd.DataFrame | None, cells: Callable[[Any], str]) -> str:
    """A table body: one ``<tr>`` per row of ``frame`` with ``cells(row)`` inside; empty for
    no frame or no rows."""
    if frame is None or frame.empty:
        return ""
    return "".join(f"<tr>{cells(row)}</tr>" for row in frame.itertuples())


def data_quality_table(data: ReportData) -> str:
    rows = _rows(data.data_quality, lambda row: (
        f"<td>{escape(str(row.reason))}</td><td>{svg.format_number(row.rows, 0)}</td>"
        f"<td class=\"text\">{escape('' if pd.isna(row.example_value) else str(row.example_value))}"
        "</td>"))
    if not rows:
        return ""
    head = svg.table_head("reason", "rows", ("example value",))
    return _scroll(f'<table class="figures">{head}<tbody>{rows}</tbody></table>', "rows excluded")


# "from -> to" in a cell: the arrow is seen, "to" is read aloud (a screen reader says "right
# arrow" for the sign)
TO = ' <span aria-hidden="true">\u2192</span><span class="reader"> to</span> '

FLAG_LABELS = {  # clv_prediction_changes' flags as the table names them
    "is_dropping_two_deciles": "down two deciles or more",
    "is_halving_value": "value halved from the high_value deciles",
    "is_leaving_high_value": "left high_value",
    "is_becoming_at_risk": "became at_risk",
    "is_becoming_dormant": "became dormant",
}


def _signed(value: float, decimals: int = 0) -> str:
    """``value`` with its sign (a minus sign, not a hyphen); none when it rounds to 0."""
    text = svg.format_number(value, decimals)  # a minus sign of its own when negative
    return "+" + text if value > 0 and text.strip("0.,") else text


def _movement_summary(data: ReportData) -> str:
    moves = data.movements
    customers = int(moves["customers"])
    before, after = moves.get("previous_value"), moves.get("predicted_value")
    text = (f"From {str(moves['previous_as_of_date'])[:10]} to {str(moves['as_of_date'])[:10]}, "
            f"over the {svg.format_number(customers, 0)} customers scored at both")
    if svg.finite(before) and svg.finite(after):
        change = float(after) - float(before)
        ratio = f" ({_signed(change / float(before) * 100, 1)}%)" if float(before) else ""
        text += (f", the total predicted value went from {svg.format_number(before, 0)} to "
                 f"{svg.format_number(after, 0)} {escape(_money(data))}: {_signed(change)}{ratio}")
    needs = int(moves.get("needs_attention") or 0)
    flagged = [f"{svg.format_number(moves[flag], 0)} {label}"
               for flag, label in FLAG_LABELS.items() if int(moves.get(flag) or 0)]
    text += (f". {svg.format_number(needs, 0)} need attention" + (f": {'; '.join(flagged)}"
                                                                  if flagged else "") + ".")
    changed = int(moves.get("model_changed") or 0)
    if changed:
        text += (" The model changed between the two dates (a retrained model) for "
                 f"{svg.format_number(changed, 0)} of the {svg.format_number(customers, 0)} "
                 "customers: their moves are partly the new model's, not the customers'. "
                 "clv-backfill --previous scores the date before with the new model, so the "
                 "moves compare it with itself.")
    return text


def _money(data: ReportData) -> str:
    """The unit of every amount, that of the transactions' amounts: the var clv_currency, else
    "currency units"."""
    return data.currency or "currency units"


def _driver(row: Any) -> str:
    """A customer's first explanation driver as the tables show it: the group (what it holds
    on hover) and its signed contribution (empty without explanations)."""
    group = getattr(row, "driver_1_group", None)
    contribution = getattr(row, "driver_1_contribution", None)
    if group is None or pd.isna(group):
        return ""
    # the name the tables use, and what it holds on hover
    name = (f'<abbr title="{escape(GROUP_MEANINGS[group])}">{escape(group)}</abbr>'
            if group in GROUP_MEANINGS else escape(str(group)))
    return name + (f" ({_signed(float(contribution))})" if svg.finite(contribution) else "")


def top_customers_table(data: ReportData) -> str:
    """The most valuable customers (clv_predictions), each with what sets the value apart."""
    rows = _rows(data.top_customers, lambda row: (
        f'<td class="text">{escape(str(row.customer_id))}</td>'
        f"<td>{svg.format_number(row.predicted_clv, 0)}</td>"
        f"<td>{svg.format_probability(row.purchase_probability, 1)}</td>"
        f'<td class="text">{escape(str(row.segment))}</td>'
        f'<td class="text">{_driver(row)}</td>'))
    if not rows:
        return ""
    count = svg.format_number(len(data.top_customers), 0)
    return (f'<h3>The {count} most valuable customers</h3>'
            '<p class="lead">The whole list: clv_predictions ordered by predicted_clv. The last '
            "column is the feature group that sets the customer's value most apart from a "
            "typical customer's, with its contribution (clv_prediction_explanations).</p>"
            + _scroll('<table class="figures" data-table="top">'
                      + svg.table_head("customer", f"predicted value ({escape(_money(data))})",
                                       "purchase probability", ("segment",),
                                       (f"what sets the value apart ({escape(_money(data))})",))
                      + f"<tbody>{rows}</tbody></table>", "the most valuable customers"))


def _attention_table(data: ReportData) -> str:
    frame = data.attention
    if frame is None or frame.empty:
        return ""
    def pair(before: object, after: object, number: bool = False,
             percent: bool = False) -> str:
        def one(value: object) -> str:
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                return "\u2013"
            return svg.format_number(value, 0) if number else escape(str(value))
        if percent:
            return TO.join(svg.format_probability_pair(before, after))
        return f"{one(before)}{TO}{one(after)}"

    rows = []
    for row in frame.itertuples():
        change = svg.finite(row.predicted_clv_change)
        reasons = ", ".join(label for flag, label in FLAG_LABELS.items()
                            if getattr(row, flag, None) is True)
        driver = _driver(row)
        probability = pair(getattr(row, "previous_purchase_probability", None),
                           getattr(row, "purchase_probability", None), percent=True)
        rows.append(
            f"<tr><td class=\"text\">{escape(str(row.customer_id))}</td>"
            f"<td>{pair(row.previous_predicted_clv, row.predicted_clv, number=True)}</td>"
            f"<td>{_signed(float(row.predicted_clv_change)) if change else ''}</td>"
            f"<td>{probability}</td>"
            f"<td>{pair(row.previous_value_decile, row.value_decile, number=True)}</td>"
            f"<td class=\"text\">{pair(row.previous_segment, row.segment)}</td>"
            f"<td class=\"text\">{escape(reasons)}</td>"
            f"<td class=\"text\">{driver}</td></tr>")
    head = svg.table_head("customer", "predicted value", "change", "purchase probability",
                          "decile", ("segment",), ("flagged for",),
                          (f"what sets the value apart now ({escape(_money(data))})",))
    return _scroll(f'<table class="figures" data-table="attention">{head}'
                   f"<tbody>{''.join(rows)}</tbody></table>", "customers who need attention")


def movements_section(data: ReportData) -> str:
    """Who to act on: how the customers scored at the two latest as-of dates moved, and the
    customers needing attention with the largest drop (clv_prediction_changes), each with
    what sets their value apart now (clv_prediction_explanations)."""
    head = '<section id="movements"><h2>Who to act on</h2>'
    moves = data.movements
    if not moves or not moves.get("customers"):
        empty = ("The movements show once two as-of dates are scored over the same horizon: "
                 "re-score on a later as-of date with the saved model (clv_retrain: never), or "
                 "fill past dates with clv-backfill (README: Dynamic CLV).")
        if data.history_later_dates and not _history_before_predictions(data):
            empty = ("No movements: the history holds no as-of date before these predictions' "
                     "own, over the same horizon, to compare them with." + _later_dates(data))
        note = _note(data, "clv_prediction_changes", empty)
        return f'{head}<p class="note">{escape(note)}</p></section>'
    shown = 0 if data.attention is None else len(data.attention)
    needs = int(moves.get("needs_attention") or 0)
    listed = ""
    if shown:
        which = (f"All {svg.format_number(shown, 0)}" if shown == needs else
                 f"The {svg.format_number(shown, 0)} of the {svg.format_number(needs, 0)}")
        listed = (f'<p class="lead">{which}, the largest drop in predicted value first (the whole '
                  "list: clv_prediction_changes where needs_attention). The last column is "
                  "the feature group that sets the customer's value most apart from a typical "
                  "customer's now, with its contribution (clv_prediction_explanations): what "
                  "the value rests on today, not the cause of the move.</p>")
    elif needs:
        listed = f'<p class="lead">{escape(_note(data, "clv_prediction_changes", ""))}</p>'
    return (f'{head}<p class="lead">{escape(_movement_summary(data))}</p>{listed}'
            f"{_attention_table(data)}</section>")


# -- the page ---------------------------------------------------------------------------------

STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #222; font: 15px/1.45 system-ui, -apple-system,
  'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif; }
header { background: #fff; border-bottom: 1px solid #dcdcdc; padding: 20px 32px 16px; }
header h1 { margin: 0 0 14px; font-size: 24px; font-weight: 650; }
dl.facts { display: flex; flex-wrap: wrap; gap: 10px 36px; margin: 0; }
dl.facts dt { font-size: 12px; color: #666; letter-spacing: .03em; text-transform: uppercase; }
dl.facts dd { margin: 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
dl.facts dd.small { font-size: 14px; font-weight: 500; padding-top: 3px; }
main { max-width: 1320px; margin: 0 auto; padding: 4px 24px 24px; }
section h2 { font-size: 19px; margin: 26px 0 10px; }
.grid { display: grid; grid-template-columns: minmax(0, 1fr); gap: 18px; }
/* two charts side by side once each has room for about 90% of its drawn size: narrower, the
   ticks would shrink below about 11 px */
@media (min-width: 1200px) { .grid { grid-template-columns: repeat(2, minmax(0, 1fr)); } }
figure.chart { margin: 0; background: #fff; border: 1px solid #e0e0e0; border-radius: 6px;
  padding: 14px 16px 10px; min-width: 0; }
figcaption h3 { margin: 0 0 2px; font-size: 15px; }
figcaption p { margin: 0 0 8px; font-size: 13px; color: #555; max-width: 95ch; }
figure.chart svg { display: block; width: 100%; height: auto; }
@media (max-width: 640px) {
  /* a phone: the charts keep a readable size and scroll sideways, as the tables do */
  figure.chart { overflow-x: auto; }
  figure.chart svg { min-width: 560px; }
}
p.note { margin: 8px 0; padding: 28px 20px; background: #fafafa; border: 1px dashed #c8c8c8;
  border-radius: 4px; color: #555; text-align: center; }
table.figures { border-collapse: collapse; margin: 14px 0 0; font-size: 13px;
  font-variant-numeric: tabular-nums; background: #fff; }
table.figures th, table.figures td { padding: 5px 12px; border-bottom: 1px solid #e6e6e6;
  text-align: right; }
table.figures th { color: #555; font-weight: 600; }
table.figures th:first-child, table.figures td:first-child, table.figures .text {
  text-align: left; }
div.scroll { overflow-x: auto; position: relative; }  /* holds the .reader texts */
div.scroll:focus-visible { outline: 2px solid #0072B2; outline-offset: 2px; }
details.numbers { margin: 6px 0 0; font-size: 13px; }
details.numbers summary { cursor: pointer; color: #555; }
details.numbers table.figures { margin-top: 6px; }
table.figures caption { text-align: left; color: #555; padding: 0 0 4px; }
@media print {
  /* on paper nothing scrolls, and a chart or table is not cut across pages */
  div.scroll, figure.chart { overflow: visible; }
  figure.chart, table.figures { break-inside: avoid; }
  /* the folded tables print open (where the browser has ::details-content) */
  details.numbers::details-content { content-visibility: visible; display: block; }
}
.reader { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
  white-space: nowrap; }
p.lead { margin: 0 0 8px; max-width: 110ch; }
p.warning { margin: 14px 0 0; padding: 8px 12px; max-width: 110ch; background: #fff4e5;
  border-left: 4px solid #e07b00; }
footer { max-width: 1320px; margin: 0 auto; padding: 4px 24px 28px; color: #666;
  font-size: 12px; }
"""


# what the values are, for a reader who adds them into a plan
PREDICTIONS_LEAD = (
    "Each value is the spend, net of refunds, that a customer already in the data by the "
    "as-of date is predicted to make over the horizon that starts there: not a lifetime, not "
    "split by month, and without the customers who first buy after the as-of date.")


def _next_days(data: ReportData, before: str = ",") -> str:
    """``", the next 182 days"`` (``before`` in place of the comma); nothing without a horizon."""
    days = data.summary.get("horizon_days")
    return f"{before} the next {int(days)} days" if svg.finite(days) else ""


def _facts(data: ReportData, written_at: datetime) -> str:
    summary = data.summary
    as_of = summary.get("as_of_date")
    facts = [
        ("As of", str(as_of)[:10] if as_of is not None else "\u2013", ""),
        ("Last transaction", str(summary["last_transaction_date"])[:10]
         if summary.get("last_transaction_date") is not None else "\u2013", ""),
        ("Horizon", f"{int(summary['horizon_days'])} days"
         if svg.finite(summary.get("horizon_days")) else "\u2013", ""),
        ("Customers scored", svg.format_number(summary.get("customers") or 0, 0), ""),
        (f"Total predicted spend of the customers scored{_next_days(data)} ({_money(data)})",
         svg.format_number(summary.get("predicted_value"), 0)
         + (" (finite values only)" if summary.get("non_finite") else ""), ""),
        *([("Likely range of the total, 8 in 10",
            " to ".join(svg.format_number(value, 0) for value in data.total_range)
            if data.total_range else f"\u2013 ({data.total_range_note})", "")]
          if data.total_range or data.total_range_note else []),
        ("Model version", str(summary.get("model_version") or "\u2013"), "small"),
        ("Written (UTC)", f"{written_at:%Y-%m-%d %H:%M}", "small"),
    ]
    return "".join(f"<div><dt>{escape(name)}</dt><dd class=\"{kind}\">{escape(value)}</dd></div>"
                   for name, value, kind in facts)


def _stale(data: ReportData) -> str:
    """A warning under the header when the as-of date lies further past the last transaction
    than the data was ever quiet (the rule of the clv_as_of_date_follows_the_data test)."""
    days, quiet = (data.summary.get("days_since_last_transaction"),
                   data.summary.get("longest_quiet_days"))
    if not svg.finite(days) or int(days) <= (int(quiet) if svg.finite(quiet) else 1):
        return ""
    quiet_text = (f"longer than the data was ever quiet ({int(quiet)} days)" if svg.finite(quiet)
                  else "and the data has a single day")
    return (f'<p class="warning">The as-of date is {int(days):,} days after the last '
            f"transaction ({str(data.summary['last_transaction_date'])[:10]}), {quiet_text}: "
            "if the source stopped loading, every customer reads as gone quiet and the values "
            "below are too low (dbt warns: clv_as_of_date_follows_the_data). Check that the "
            "transactions are loaded and build again before acting on the movements.</p>")


def _older_date(data: ReportData) -> str:
    """A warning under the header when the history holds as-of dates after these predictions'
    (a build at an older date ran last): the page is not the latest picture."""
    later = data.history_later_dates
    if not later:
        return ""
    return (f'<p class="warning">These predictions are for an older as-of date than the '
            f"history's latest, {later[-1].isoformat()}: a build at an older date ran last, or "
            "that date came from data since corrected (a year mistyped). Build again at the "
            "latest date, or delete the rows of a date that should not be there from "
            "clv_predictions_history (dbt warns: clv_predictions_are_of_the_latest_as_of_date)."
            "</p>")


def _no_season(data: ReportData) -> str:
    """A warning under the header when the spend level of a horizon shorter than a year is not
    adjusted for the season (the rule of the clv_level_is_adjusted_for_the_season test)."""
    level = data.level
    seasonal = level.get("is_seasonal_level")
    if (not svg.finite(level.get("horizon_days")) or int(level["horizon_days"]) >= 365
            or seasonal is None or bool(seasonal)):
        return ""
    note = escape(str(level.get("level_note") or "no note").rstrip("."))
    return (f'<p class="warning">The total is not adjusted for the season: {note}. If the '
            f"next {int(level['horizon_days'])} days hold a peak or a lull the windows before "
            "them did not, the total, the segment ranges and the purchase probabilities miss "
            "it (dbt warns: clv_level_is_adjusted_for_the_season): read them as those of a "
            "period like the last one. The ranking of the customers stands.</p>")


def _section(key: str, title: str, figures: Sequence[Figure], after: str = "",
             lead: str = "") -> str:
    lead = f'<p class="lead">{escape(lead)}</p>' if lead else ""
    return (f'<section id="{key}"><h2>{escape(title)}</h2>{lead}<div class="grid">'
            + "".join(figure.html() for figure in figures) + f"</div>{after}</section>")


def _clear_lead(data: ReportData, *baselines: str) -> float:
    """The least lead in normalized Gini that tells two rankings apart: 0.005, or two standard
    errors of the difference (gini_difference_se, the largest of ``baselines``' against the
    network) when those are more: with few buyers in the validation window a lead of a few
    hundredths is the draw of customers."""
    ses = [se for se in (data.gini_difference_ses.get(b) for b in baselines) if svg.finite(se)]
    return max([0.005, *(2.0 * se for se in ses)])


def model_verdict(data: ReportData) -> str:
    """The answer to "is the model worth using?" in words: how the network ranks the customers
    by spend on the validation cutoff against BG/NBD + Gamma-Gamma (normalized Gini): better by
    a clear lead (:func:`_clear_lead`), about as well down to the 0.02 below which dbt warns
    (clv_network_ranks_as_well_as_btyd), or worse; and a naive baseline that ranks them better
    than both by a clear lead, if one does; empty without the two models' Ginis."""
    network, btyd = data.ginis.get("network"), data.ginis.get("bgnbd_gamma_gamma")
    if not (svg.finite(network) and svg.finite(btyd)):
        return ""
    figures = f"(normalized Gini {network:.3f} against {btyd:.3f} on the validation cutoff)"
    clear = _clear_lead(data, "bgnbd_gamma_gamma")
    if network >= btyd + clear:
        verdict = (f"Yes: the model ranks the customers by what they will spend better than the "
                   f"classic BG/NBD + Gamma-Gamma model {figures}.")
    elif network >= btyd - 0.02:
        verdict = (f"About as well as the classic BG/NBD + Gamma-Gamma model ranks the customers "
                   f"by what they will spend {figures}: use either.")
        if network >= btyd + 0.005:
            verdict += (f" The lead of {network - btyd:.3f} is within what another draw of "
                        f"customers would move it by (two standard errors: {clear:.3f}).")
    else:
        verdict = (f"No: the classic BG/NBD + Gamma-Gamma model ranks the customers by what they "
                   f"will spend better {figures}; use its values, "
                   "clv_predictions.btyd_expected_spend (dbt warns: "
                   "clv_network_ranks_as_well_as_btyd).")
    naive = max(((data.ginis[name], name) for name in PREDICTORS
                 if name.startswith("naive") and svg.finite(data.ginis.get(name))), default=None)
    if naive is not None and naive[0] >= max(network, btyd) + _clear_lead(
            data, naive[1], "bgnbd_gamma_gamma"):
        verdict += (f" But a naive rule ranks them better than both models: "
                    f"{PREDICTORS[naive[1]][0].removeprefix('naive: ')} (normalized Gini "
                    f"{naive[0]:.3f}).")
    return verdict


def render_report(data: ReportData, written_at: datetime) -> Rendered:
    """The page for ``data``, and how many charts it drew and replaced by notes."""
    model = [gain_curve_figure(data), calibration_figure(data)]
    predictions = [distribution_figure(data), segment_figure(data)]
    inputs = [importance_figure(data), data_quality_figure(data, written_at)]
    history = history_figures(data)
    figures = model + predictions + inputs + history
    as_of = data.summary.get("as_of_date")
    heading = ("Customer lifetime value" + _next_days(data, " over")
               + (f", as of {str(as_of)[:10]}" if as_of else ""))
    body = "".join([
        movements_section(data),
        _section("model", "Is the model worth using?", model, lead=model_verdict(data)),
        _section("predictions", "The predictions", predictions,
                 segment_table(data) + top_customers_table(data), lead=PREDICTIONS_LEAD),
        _section("inputs", "What the model reads", inputs, data_quality_table(data)),
        _section("history", "Across as-of dates", history),
    ])
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(heading)}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{escape(heading)}</h1><dl class="facts">{_facts(data, written_at)}</dl>'
        f"{_stale(data)}{_older_date(data)}{_no_season(data)}</header><main>{body}</main>"
        f"<footer>Written by dbt-clv {escape(__version__)} from {', '.join(TABLES)}. Amounts "
        "are in the unit of the transactions' amounts.</footer></body></html>\n")
    drawn = sum(figure.svg is not None for figure in figures)
    return Rendered(page, drawn, len(figures) - drawn)
