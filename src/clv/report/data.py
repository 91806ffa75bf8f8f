"""What the report shows, read from the warehouse as small pandas DataFrames.

The tables with a row per customer (``clv_predictions``, ``clv_predictions_history``) are
aggregated in the warehouse, so the report reads a few hundred rows whatever the number of
customers; the evaluation tables are small and are read whole. A table that cannot be read
(not built yet, say) or that has no rows for the scored model becomes a note in the report, not
a failed build.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from clv.pipeline.log import dbt_log
from clv.report.svg import finite, log_edges
from clv.warehouse import Warehouse

# The tables the report reads; the dbt model refs each of them, so it is built after them.
TABLES = ("clv_predictions", "clv_segment_summary", "clv_total_summary", "clv_gain_curve",
          "clv_decile_calibration", "clv_feature_importance", "clv_predictions_history",
          "clv_data_quality", "clv_prediction_changes", "clv_prediction_explanations",
          "clv_model_evaluation", "clv_model_registry", "int_clv__as_of_date")
# the flags of clv_prediction_changes, each a move a marketer acts on (needs_attention: any)
MOVE_FLAGS = ("is_dropping_two_deciles", "is_halving_value", "is_leaving_high_value",
              "is_becoming_at_risk", "is_becoming_dormant")
ATTENTION_ROWS = 15  # the customers needing attention the report lists, largest drop first
TOP_ROWS = 10  # the most valuable customers the report lists
BINS_PER_DECADE = 3  # the histogram's bins: equal widths on a log axis, three per tenfold
MAX_DECADES = 6  # ... spanning at most this many decades below the largest value


@dataclass
class ReportData:
    """Everything the page is drawn from. A frame that could not be read is None and its
    table's reason is in ``problems``."""

    summary: dict[str, Any] = field(default_factory=dict)  # as_of_date, model_version, ...
    gain_curve: pd.DataFrame | None = None  # predictor, percent, captured_share, oracle_share
    calibration: pd.DataFrame | None = None  # predictor, decile, mean_predicted, mean_actual
    value_bins: pd.DataFrame | None = None  # lower, upper, customers, predicted_value
    segments: pd.DataFrame | None = None  # segment, customers, predicted_value, ...
    # segment, total_predicted_clv_p10, total_predicted_clv_p90 (clv_segment_summary)
    segment_ranges: pd.DataFrame | None = None
    # the p10 and p90 of the whole total (clv_total_summary) of these predictions' run, or why
    # there is none
    total_range: tuple[float, float] | None = None
    total_range_note: str = ""
    importance: pd.DataFrame | None = None  # feature_group, gini_drop, gini_drop_std, ...
    history: pd.DataFrame | None = None  # as_of_date, segment, customers, predicted_value
    data_quality: pd.DataFrame | None = None  # reason, rows, source_rows, example_value, ...
    # over clv_prediction_changes: customers, the two dates, the values, a count per flag
    movements: dict[str, Any] = field(default_factory=dict)
    # the customers needing attention, largest drop first, with their first explanation driver
    attention: pd.DataFrame | None = None
    # the most valuable customers, highest predicted value first, with their first driver
    top_customers: pd.DataFrame | None = None
    ginis: dict[str, float] = field(default_factory=dict)  # predictor -> validation Gini
    # baseline -> standard error of the network's Gini minus its own (gini_difference_se)
    gini_difference_ses: dict[str, float] = field(default_factory=dict)
    # the current model's spend level: horizon_days, is_seasonal_level, level_note
    level: dict[str, Any] = field(default_factory=dict)
    # as-of dates of the history scored only over another horizon than the current predictions
    history_other_horizons: list[date] = field(default_factory=list)
    # as-of dates of the history after the current predictions' (left out of its charts)
    history_later_dates: list[date] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # table -> why it is not shown
    currency: str = ""  # the amounts' unit (var clv_currency); empty: "currency units"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class _Reader:
    """Opens each table once, lazily, and turns a failure into a recorded problem."""

    def __init__(self, warehouse: Warehouse, tables: Mapping[str, Callable[[], Any]],
                 problems: dict[str, str]) -> None:
        self.warehouse = warehouse
        self.tables = tables
        self.problems = problems
        self._relations: dict[str, Any] = {}

    def query(self, table: str, sql: str) -> pd.DataFrame | None:
        if table in self.problems:
            return None
        if table not in self.tables:
            self.problems[table] = f"{table} is not among the tables the report was given"
            return None
        try:
            if table not in self._relations:
                self._relations[table] = self.tables[table]()
            return self.warehouse.query(self._relations[table], sql).to_pandas()
        except Exception as error:  # noqa: BLE001 any engine's error: the report notes it
            self.problems[table] = f"{table} could not be read: {_first_line(error)}"
            dbt_log(f"report: {self.problems[table]}")
            return None


def _on_date(dates: pd.Series, day: Any) -> pd.Series:
    """Per row: whether ``dates`` (a date, a timestamp or ISO text, as each engine returns
    it) is the day ``day``; compared as text in pandas, since the engines' own date and text
    comparisons differ."""
    return dates.astype(str).str[:10] == str(day)[:10]


def _total_range(reader: _Reader, summary: dict[str, Any]
                 ) -> tuple[tuple[float, float] | None, str]:
    """The whole total's p10 and p90 (clv_total_summary) when its row is of the same run as
    the predictions (model and as-of date: with clv_retrain never the model stays the same from
    day to day), else None and why."""
    if not summary.get("customers"):
        return None, ""
    totals = reader.query("clv_total_summary", """
        select model_version, as_of_date, total_predicted_clv_p10, total_predicted_clv_p90
        from {relation}""")
    if totals is None:
        return None, reader.problems.get("clv_total_summary", "")
    run = totals[(totals.model_version.astype(str) == str(summary.get("model_version")))
                 & _on_date(totals.as_of_date, summary.get("as_of_date"))]
    if run.empty:
        return None, "clv_total_summary has no row for these predictions"
    p10, p90 = run.total_predicted_clv_p10.iloc[0], run.total_predicted_clv_p90.iloc[0]
    if not (finite(p10) and finite(p90)):
        return None, "no level_log_sd for this model, so no range"
    return (float(p10), float(p90)), ""


def _for_model(frame: pd.DataFrame | None, version: str | None) -> pd.DataFrame | None:
    """The rows of the scored model (``version``: none when it has none); when the scored
    model is not known, those of the current model, else of the newest. None stays None."""
    if frame is None or frame.empty:
        return frame
    if version is not None:
        return frame[frame["model_version"] == version]
    current = frame[frame["is_current"].fillna(False).astype(bool)]
    chosen = current if not current.empty else frame
    return chosen[chosen["model_version"] == chosen["model_version"].max()]


def finite_sql(column: str) -> str:
    """``column`` is a finite number, in SQL that every engine reads alike: NaN sorts above
    every number in DuckDB, PostgreSQL and Spark, so the bounds reject it as they reject the
    infinities."""
    return f"{column} between -1.7976931348623157e308 and 1.7976931348623157e308"


FINITE_VALUE = finite_sql("predicted_clv")


def _summary(reader: _Reader) -> dict[str, Any]:
    """Totals over the finite predicted values (a value that is not finite would make every
    total and the histogram's range meaningless); ``non_finite`` counts the others."""
    frame = reader.query("clv_predictions", f"""
        select
            count(*) as customers,
            sum(case when {FINITE_VALUE} then predicted_clv end) as predicted_value,
            min(as_of_date) as as_of_date,
            max(model_version) as model_version,
            max(horizon_days) as horizon_days,
            min(case when predicted_clv > 0 and {FINITE_VALUE} then predicted_clv end)
                as min_positive,
            max(case when {FINITE_VALUE} then predicted_clv end) as max_value,
            count(case when predicted_clv <= 0 and {FINITE_VALUE} then 1 end) as non_positive,
            count(case when not ({FINITE_VALUE}) then 1 end) as non_finite
        from {{relation}}""")
    return _first_row(frame)


def _first_row(frame: pd.DataFrame | None) -> dict[str, Any]:
    """The first row of a one-row query as a dict (none read: empty). The aggregates of no
    rows are null (NaN, NaT or NA by type): None for the page."""
    if frame is None or frame.empty:
        return {}
    return {key: (None if not isinstance(value, str) and pd.isna(value) else value)
            for key, value in frame.iloc[0].to_dict().items()}


def bin_sql(edges: list[float]) -> str:
    """SQL numbering the bins of ``edges`` by ``predicted_clv`` (0 for values below the second
    edge, the last bin for the rest): comparisons with literal edges, identical on every
    engine. One bin (every value in it) is bin 0."""
    if len(edges) <= 2:
        return "0"
    cases = " ".join(f"when predicted_clv < {edge!r} then {index}"
                     for index, edge in enumerate(edges[1:-1]))
    return f"case {cases} else {len(edges) - 2} end"


def _value_bins(reader: _Reader, summary: dict[str, Any]) -> pd.DataFrame | None:
    low, high = summary.get("min_positive"), summary.get("max_value")
    if low is None or high is None or not high > 0:
        return pd.DataFrame(columns=["lower", "upper", "customers", "predicted_value"])
    edges = log_edges(float(low), float(high), BINS_PER_DECADE, MAX_DECADES)
    counted = reader.query("clv_predictions", f"""
        select value_bin, count(*) as customers, sum(predicted_clv) as predicted_value
        from (
            select {bin_sql(edges)} as value_bin, predicted_clv
            from {{relation}}
            where predicted_clv > 0 and {FINITE_VALUE}
        ) as binned
        group by value_bin""")
    if counted is None:
        return None
    bins = pd.DataFrame({"value_bin": range(len(edges) - 1), "lower": edges[:-1],
                         "upper": edges[1:]})
    bins = bins.merge(counted, on="value_bin", how="left").fillna({"customers": 0,
                                                             "predicted_value": 0.0})
    return bins.drop(columns="value_bin").astype({"customers": "int64"})


def read_report_data(warehouse: Warehouse,
                     tables: Mapping[str, Callable[[], Any]]) -> ReportData:
    """The report's data from ``tables`` (name -> a function returning the relation, as a
    dbt Python model's ``dbt.ref``), aggregated in the warehouse where a table is large."""
    data = ReportData()
    reader = _Reader(warehouse, tables, data.problems)
    data.summary = _summary(reader)
    data.summary.update(_recency(reader))
    version = data.summary.get("model_version")
    data.value_bins = _value_bins(reader, data.summary)
    data.segments = reader.query("clv_predictions", f"""
        select
            segment,
            count(*) as customers,
            coalesce(sum(case when {FINITE_VALUE} then predicted_clv end), 0) as predicted_value,
            avg(purchase_probability) as mean_probability
        from {{relation}}
        group by segment""")
    data.segment_ranges = reader.query("clv_segment_summary", """
        select segment, total_predicted_clv_p10, total_predicted_clv_p90
        from {relation}""")
    data.total_range, data.total_range_note = _total_range(reader, data.summary)
    data.gain_curve = _for_model(reader.query("clv_gain_curve", "select * from {relation}"),
                                 version)
    data.calibration = _for_model(reader.query("clv_decile_calibration",
                                               "select * from {relation}"), version)
    data.importance = _for_model(reader.query("clv_feature_importance",
                                              "select * from {relation}"), version)
    history = reader.query("clv_predictions_history", f"""
        select
            as_of_date,
            model_version,
            horizon_days,
            segment,
            max(scored_at) as scored_at,
            count(*) as customers,
            coalesce(sum(case when {FINITE_VALUE} then predicted_clv end), 0) as predicted_value
        from {{relation}}
        group by as_of_date, model_version, horizon_days, segment""")
    history, data.history_later_dates = up_to(history, data.summary.get("as_of_date"))
    data.history = latest_run_per_date(history, data.summary.get("horizon_days"))
    data.history_other_horizons = other_horizon_dates(history, data.summary.get("horizon_days"))
    # the largest count first (the table has no order of its own)
    data.data_quality = reader.query("clv_data_quality",
                                     "select * from {relation} order by rows desc, reason")
    data.level = _first_row(reader.query("clv_model_registry", """
        select horizon_days, is_seasonal_level, level_note
        from {relation}
        where is_current"""))
    data.movements = _movements(reader)
    data.attention, data.top_customers = _with_drivers(reader, [
        _attention(reader),
        reader.query("clv_predictions", f"""
            select customer_id, predicted_clv, purchase_probability, segment
            from {{relation}}
            where {FINITE_VALUE} and predicted_clv > 0
            order by predicted_clv desc, customer_id
            limit {TOP_ROWS}""")], version, data.summary.get("as_of_date"))
    evaluation = _for_model(reader.query(
        "clv_model_evaluation",
        "select * from {relation}"), version)
    if evaluation is not None:
        data.ginis = {str(p): float(g) for p, g in zip(evaluation["predictor"],
                                                        evaluation["normalized_gini"], strict=True)
                      if finite(g)}
        # (a table written before the standard errors were kept has no such column)
        ses = evaluation.get("gini_difference_se", pd.Series(float("nan"), index=evaluation.index))
        data.gini_difference_ses = {str(p): float(se) for p, se in
                                    zip(evaluation["predictor"], ses, strict=True) if finite(se)}
    return data


def _recency(reader: _Reader) -> dict[str, Any]:
    """The last day with a purchase, the days from it to the as-of date and the longest
    quiet spell of the data (int_clv__as_of_date): an as-of date further past the data than it
    was ever quiet reads every customer as gone quiet."""
    frame = reader.query("int_clv__as_of_date", """
        select last_transaction_date, days_since_last_transaction, longest_quiet_days
        from {relation}""")
    return _first_row(frame)


def _movements(reader: _Reader) -> dict[str, Any]:
    """Counts over clv_prediction_changes (no rows: customers 0)."""
    flags = ", ".join(f"count(case when {flag} then 1 end) as {flag}" for flag in MOVE_FLAGS)
    frame = reader.query("clv_prediction_changes", f"""
        select
            count(*) as customers,
            min(previous_as_of_date) as previous_as_of_date,
            max(as_of_date) as as_of_date,
            sum(case when {finite_sql('previous_predicted_clv')} then previous_predicted_clv end)
                as previous_value,
            sum(case when {FINITE_VALUE} then predicted_clv end) as predicted_value,
            count(case when needs_attention then 1 end) as needs_attention,
            {flags},
            count(case when previous_model_version <> model_version then 1 end) as model_changed
        from {{relation}}""")
    return _first_row(frame)


def _attention(reader: _Reader) -> pd.DataFrame | None:
    """The customers of clv_prediction_changes needing attention, the largest drop in value
    first."""
    return reader.query("clv_prediction_changes", f"""
        select customer_id, previous_predicted_clv, predicted_clv, predicted_clv_change,
               previous_purchase_probability, purchase_probability,
               previous_value_decile, value_decile, previous_segment, segment,
               {", ".join(MOVE_FLAGS)}
        from {{relation}}
        where needs_attention
        order by predicted_clv_change nulls last, customer_id
        limit {ATTENTION_ROWS}""")


def _with_drivers(reader: _Reader, frames: list[pd.DataFrame | None], version: str | None,
                  as_of_date: Any) -> list[pd.DataFrame | None]:
    """Each of ``frames`` with its customers' explanation group that sets each one's value
    most apart from the reference customer's (clv_prediction_explanations: driver_1_group,
    driver_1_contribution; null when explanations are off, or explain another as-of date than
    the predictions': a build that left the explanations step out), read in one query for
    all."""
    ids = sorted({str(i) for frame in frames if frame is not None
                  for i in frame["customer_id"]})
    if not ids or version is None:
        return frames
    listed = ", ".join("'" + i.replace("'", "''") + "'" for i in ids)
    quoted = str(version).replace("'", "''")
    drivers = reader.query("clv_prediction_explanations", f"""
        select customer_id, driver_1_group, driver_1_contribution, as_of_date
        from {{relation}}
        where model_version = '{quoted}' and customer_id in ({listed})""")
    if drivers is not None:
        drivers = drivers[_on_date(drivers.as_of_date, as_of_date)].drop(columns="as_of_date")
    else:
        drivers = pd.DataFrame(columns=["customer_id", "driver_1_group", "driver_1_contribution"])
    return [frame if frame is None or frame.empty
            else frame.merge(drivers, on="customer_id", how="left") for frame in frames]


def up_to(history: pd.DataFrame | None, as_of_date: Any) -> tuple[pd.DataFrame | None,
                                                                  list[date]]:
    """The rows of ``history`` on or before ``as_of_date`` (the current predictions'), and the
    later as-of dates, ascending: after a build at an older date, or a date since corrected
    (a row mistyped a year ahead), the report shows the predictions' own date as the last, as
    clv_prediction_changes does."""
    if history is None or history.empty or as_of_date is None or pd.isna(as_of_date):
        return history, []
    dates = pd.to_datetime(history["as_of_date"])
    later = dates > pd.Timestamp(as_of_date)
    return history[~later], sorted(set(dates[later].dt.date))


def other_horizon_dates(history: pd.DataFrame | None, horizon_days: Any) -> list[date]:
    """The as-of dates of ``history`` with no run over ``horizon_days``, ascending."""
    if (history is None or history.empty or "horizon_days" not in history.columns
            or not finite(horizon_days)):
        return []
    dates = pd.to_datetime(history["as_of_date"]).dt.date
    scored = set(dates[history["horizon_days"] == int(horizon_days)])
    return sorted(set(dates) - scored)


def latest_run_per_date(history: pd.DataFrame | None,
                        horizon_days: Any = None) -> pd.DataFrame | None:
    """Per as-of date, the rows of its latest scoring run over ``horizon_days`` (the current
    predictions' horizon; every run when None or without the column): the model version
    scored last at it (newest ``scored_at``; on a tie the largest version), the rule of
    clv_prediction_changes, so the report and the change list read the same run. A backfill
    with an older model after a newer one's build thus shows the backfilled run; values over
    another horizon are not comparable and stay out."""
    if history is None:
        return None
    # dates as datetimes in an empty history too, which the charts read as "no date yet"
    history = history.assign(as_of_date=pd.to_datetime(history["as_of_date"]))
    if history.empty:
        return history
    if "horizon_days" in history.columns and finite(horizon_days):
        history = history[history["horizon_days"] == int(horizon_days)]
    runs = (history.groupby(["as_of_date", "model_version"], as_index=False)["scored_at"].max()
            # a run without scored_at loses, as under `desc nulls last` in SQL
            .sort_values(["as_of_date", "scored_at", "model_version"], na_position="first")
            .drop_duplicates("as_of_date", keep="last"))
    latest = history.set_index(["as_of_date", "model_version"]).index.isin(
        runs.set_index(["as_of_date", "model_version"]).index)
    return (history[latest]
            .sort_values(["as_of_date", "segment"]).reset_index(drop=True))
