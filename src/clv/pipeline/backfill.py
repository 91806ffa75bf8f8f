"""``clv-backfill``: score a range of past as-of dates with a saved model, so that
``clv_predictions_history`` starts with history on day one.

Each as-of date is one ``dbt build`` with ``clv_as_of_date`` set to it and ``clv_retrain:
never``: only that date's features are computed (no training cutoffs), the saved model scores,
and the history table takes the date's rows. Every step reads only transactions on or before
its as-of date, as any build does. The source is parsed once, before the first date
(``int_clv__transactions_checked`` does not depend on the as-of date), so every date reads
the same snapshot of it and no date parses it again; dbt parses the project once, too.
Re-running a backfill replaces the same rows: the history never holds duplicates. The
published tables end at the history's latest as-of date: a backfill of the months before the
daily builds rebuilds them at the latest date afterwards, so what users read stays current.
"""

from __future__ import annotations

import argparse
import calendar
import itertools
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from clv import build
from clv.pipeline.history import newest_runs_sql

EVERY = {"day": 1, "week": 7}
# Built by the check before the first date, for every date: the parse of the source.
PARSED_ONCE = ("int_clv__transactions_checked",)
# The data test that warns when clv_predictions is of an earlier date than the history's latest
LATEST_DATE_TEST = "clv_predictions_are_of_the_latest_as_of_date"


class BackfillError(ValueError):
    """A backfill range or setting that cannot work; the message names the option."""


def _date(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BackfillError(f"{option}: expected a date as YYYY-MM-DD, got {text!r}") from None


def months_back(day: date, months: int, day_of_month: int) -> date:
    """The date ``months`` months before ``day``, on ``day_of_month`` (the month's last day when
    it is shorter)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day_of_month, last))


def as_of_dates(start: date, end: date, every: str) -> list[date]:
    """The as-of dates from ``end`` back to ``start`` (both included when they fall on the
    step), oldest first. ``every`` is ``day``, ``week``, ``month`` or ``<N>d``; a monthly step
    keeps ``end``'s day of the month (the month's last day when it is shorter), and from the
    last day of a month takes the last day of every month."""
    if start > end:
        raise BackfillError(f"--start {start} is after --end {end}")
    dates = []
    if every == "month":
        month_end = end.day == calendar.monthrange(end.year, end.month)[1]
        day_of_month = 31 if month_end else end.day
        for k in itertools.count():
            try:
                day = months_back(end, k, day_of_month)
            except ValueError:  # before the year 1, so before any --start
                break
            if day < start:
                break
            dates.append(day)
    else:
        step = EVERY.get(every)
        if step is None:
            if not re.fullmatch(r"[1-9][0-9]*d", every):
                raise BackfillError(f"--every: expected day, week, month or a number of days "
                                    f"like 14d, got {every!r}")
            step = int(every[:-1])
        day = end
        while True:
            dates.append(day)
            if (day - start).days < step:  # the next step is before --start (or the year 1)
                break
            day -= timedelta(days=step)
    return sorted(dates)


def _dates_count(dates: Sequence[date]) -> str:
    return f"{len(dates)} as-of date{'' if len(dates) == 1 else 's'}"


def _invoke(args: list[str]) -> Any:
    from dbt.cli.main import dbtRunner

    try:
        return build.succeeded(dbtRunner().invoke(args), args[0], details=True)
    except build.BuildError as error:
        raise BackfillError(str(error)) from None


def _show_rows(sql: str, common: list[str], run_vars: dict[str, Any]) -> list[Any]:
    result = _invoke(["show", "--inline", sql, "--vars", json.dumps(run_vars, default=str),
                      "--log-level", "none", *common])
    return list(result.result.results[0].agate_table.rows)


def _show(sql: str, common: list[str], run_vars: dict[str, Any]) -> dict[str, Any]:
    return dict(_show_rows(sql, common, run_vars)[0].items())


def check_end(end: date, time_zone: str, today: date | None = None) -> None:
    """Refuse an ``end`` after today in ``time_zone`` (the settings' clv_time_zone, where the
    business is), as the dbt side refuses such a clv_as_of_date."""
    if today is None:
        today = datetime.now(ZoneInfo(time_zone)).date()
    if end > today:
        raise BackfillError(f"--end {end} is after today ({today} in {time_zone}): the as-of "
                            "date must have happened")


def check_history(start: date, first_as_of: date, end: date, first: date | None,
                  window: int) -> None:
    """Refuse a first as-of date before the first usable transaction (``first``) or with less
    history than the sequence window (``window`` days), naming the earliest date that works."""
    if first is None:
        raise BackfillError("no transaction is usable (see clv_data_quality after a build): "
                            "there is nothing to score")
    days = (first_as_of - first).days + 1
    if days >= window:
        return
    earliest = first + timedelta(days=window - 1)
    if earliest <= end:
        fix = f"start on or after {earliest}"
    elif end < first:
        fix = f"the whole range is before it; the first as-of date that works is {earliest}"
    else:
        fits = (end - first).days + 1 if days < 1 else days
        fix = (f"no date up to --end {end} has that much history: lower clv_sequence_periods "
               f"or clv_period_days to a window of at most {fits} days, train a model with "
               "them (a build without clv_retrain: never, since clv-backfill scores with a "
               "saved model), then backfill with the same vars")
    label = f"--start {start}" + ("" if first_as_of == start else
                                  f" (first as-of date {first_as_of})")
    if days < 1:
        raise BackfillError(f"{label} is before the first usable transaction ({first}): "
                            f"there is nothing to score; {fix} (the sequence window of "
                            f"{window} days, clv_period_days x clv_sequence_periods, needs "
                            "that much history)")
    raise BackfillError(
        f"{label} has {days} days of history, shorter than the sequence window of {window} "
        f"days (clv_period_days x clv_sequence_periods): {fix}")


def _settings_check(start: date, first_as_of: date, end: date, common: list[str],
                    run_vars: dict[str, Any], today: date | None = None) -> str:
    """Stop before the first build when ``end`` is after today or the first as-of date has no
    or too little history; the settings' time zone.

    Builds only what does not depend on the as-of date (the parse of the source, the
    customers' and events' inputs, and the settings with ``run_vars``, the user's own), so a
    refused backfill leaves no prediction table at another date than ``clv_predictions``'s;
    the time zone is the settings', from ``--vars`` or the project's vars."""
    # the customers' and events' inputs too: the dates' builds load no seed
    _invoke(["build", "--select", f"+{PARSED_ONCE[0]}", "+stg_clv__customers",
             "+stg_clv__events", "clv_run_settings",
             "--indirect-selection", "cautious", "--vars", json.dumps(run_vars, default=str),
             "--quiet", *common])
    facts = _show("select min(cast(checked.transacted_at as date)) as first_date, "
                  "min(settings.period_days * settings.sequence_periods) as window_days, "
                  "min(settings.time_zone) as time_zone "
                  f"from {{{{ ref('{PARSED_ONCE[0]}') }}}} as checked "
                  "cross join {{ ref('clv_run_settings') }} as settings "
                  "where checked.row_problem is null", common, run_vars)
    check_end(end, str(facts["time_zone"]), today)
    first = facts["first_date"]
    if first is not None and not isinstance(first, date):
        first = date.fromisoformat(str(first)[:10])
    check_history(start, first_as_of, end, first, int(facts["window_days"] or 0))
    return str(facts["time_zone"])


def history_latest(common: list[str], run_vars: dict[str, Any]) -> date | None:
    """The latest as-of date of clv_predictions_history over the settings' horizon (a run over
    another horizon is another table's as far as the movements go); None before its first
    build."""
    runs = _latest_runs(common, run_vars)
    return runs[0][0] if runs else None


def backfill(start: date, end: date, every: str, run_vars: dict[str, Any],
             common: Sequence[str] = (), today: date | None = None,
             scored: Callable[[date], None] | None = None) -> list[date]:
    """Build clv_predictions_history for every as-of date of the range; returns the dates.
    ``scored`` is called after each date of the range is built (before the latest date is
    republished), and may stop the backfill by raising.

    The published tables (clv_predictions and every table read from it) are left at the
    history's latest as-of date: at ``end``, or, when the history already holds a later date
    (a backfill of the year before the daily builds), rebuilt at that date with the model of
    its latest run, which re-scores it as a build at that date would."""
    dates = as_of_dates(start, end, every)
    user_vars, run_vars = run_vars, {**run_vars, "clv_retrain": "never"}
    common = list(common)
    time_zone = _settings_check(start, dates[0], end, common, user_vars, today)
    latest = history_latest(common, user_vars)
    publish = end
    if latest is not None and latest > end:
        try:
            check_end(latest, time_zone, today)
            publish = latest
        except BackfillError:  # a date after today, a clock error: not published again
            print(f"clv-backfill: the history's latest as-of date, {latest}, is after today: "
                  f"the published tables are left at --end {end}", flush=True)
    if publish > end:
        print(f"clv-backfill: {_dates_count(dates)}, then the history's latest, {publish}, "
              "scored again so that the published tables stay at it", flush=True)
    # Every date's build runs on this one parse of the project: the dates differ only in
    # clv_as_of_date, which dbt reads when it compiles (a changed var makes dbt parse the
    # whole project again, a few seconds per date).
    manifest = _invoke(["parse", "--vars", json.dumps({**run_vars, "clv_as_of_date":
                                                      end.isoformat()}, default=str),
                        "--quiet", *common]).result
    builds = [*dates, publish] if publish > end else dates
    for index, day in enumerate(builds, 1):
        began = time.perf_counter()
        # the inputs were loaded and parsed by the check above: no seeds or parse again.
        # Before the last date, only what the history needs, clv_model_registry, whose
        # is_current follows the model of clv_predictions (on PostgreSQL and Spark through clv
        # build, which runs the Python steps there), and int_clv__scoring_run, which saves the
        # date's scoring run when the compiled query scored (onnxruntime's scoring step saves
        # its own), so predict() reproduces every date. The last build (at --end, or at the
        # history's latest date when that is later) builds everything, so every table read
        # from clv_predictions (the movements from the as-of date before it, the segment
        # summary, the explanations, the Parquet hand-off, the report) agrees with it.
        models = (["clv_predictions_history", "clv_model_registry", "int_clv__scoring_run"]
                  if index < len(builds) else None)
        # before the last build, clv_predictions holds each earlier date by design: the test
        # that warns when it is older than the history's latest is the last build's
        quiet = [LATEST_DATE_TEST] if index < len(builds) else []
        day_vars = json.dumps({**run_vars, "clv_as_of_date": day.isoformat()}, default=str)
        try:
            warnings = build.build_with_args(
                [*common, "--vars", day_vars, "--exclude-resource-type", "seed", "unit_test",
                 "--quiet"], models=models, exclude=[*PARSED_ONCE, *quiet], manifest=manifest)
        except build.BuildError as error:
            raise BackfillError(f"as of {day}: {error}; {APART}") from None
        if scored is not None and index <= len(dates):
            scored(day)
        # the builds are quiet: a warning (an as-of date past the data, say) is printed here
        what = (f"{index}/{len(dates)} as of {day} scored" if index <= len(dates) else
                f"as of {day}, the history's latest date: clv_predictions and the tables read "
                "from it rebuilt")
        print(f"clv-backfill: {what} ({time.perf_counter() - began:.1f} s)"
              + (f"; warned: {', '.join(warnings)}" if warnings else ""), flush=True)
    return dates


def _latest_runs(common: list[str], run_vars: dict[str, Any]) -> list[tuple[date, str]]:
    """The history's two latest as-of dates over the settings' horizon, latest first, each
    with the model of its newest run."""
    # both refs outside the branch: dbt finds an inline query's refs before it renders it; the
    # macro named with its package, which an inline query run from a host project needs
    rows = _show_rows(
        "{% set history = load_relation(ref('clv_predictions_history')) %}"
        "{% set settings = ref('clv_run_settings') %}"
        "{% if history is none %}select cast(null as date) as as_of_date, "
        "cast(null as {{ dbt.type_string() }}) as model_version where 1 = 0{% else %}"
        + newest_runs_sql("{{ history }}", "(select min(horizon_days) from {{ settings }})",
                          "{{ clv.clv_collate_binary('model_version') }}") + "{% endif %}",
        common, run_vars)  # dbt show keeps the first rows (5): the two latest are enough
    return [(date.fromisoformat(str(day)[:10]), str(version)) for day, version in rows[:2]]


def _settings_differ(common: list[str], run_vars: dict[str, Any], version: str) -> list[str]:
    """The settings a model's registry row holds that differ from ``run_vars``' (empty when
    the registry does not list the model)."""
    names = ("horizon_days", "period_days", "sequence_periods")
    checks = " union all ".join(
        f"select '{name}' as setting, cast(registry.{name} as {{{{ dbt.type_string() }}}}) as "
        f"model_value, cast(settings.{name} as {{{{ dbt.type_string() }}}}) as run_value "
        "from {{ registry }} as registry "
        "cross join {{ settings }} as settings "
        f"where registry.model_version = '{version}' and registry.{name} <> settings.{name}"
        for name in names)
    rows = _show_rows(
        "{% set registry = load_relation(ref('clv_model_registry')) %}"
        "{% set settings = ref('clv_run_settings') %}"
        "{% if registry is none %}select cast(null as {{ dbt.type_string() }}) as setting "
        "where 1 = 0"
        f"{{% else %}}{checks}{{% endif %}}", common, run_vars)
    return [f"{row[0]} {row[1]} (the vars: {row[2]})" for row in rows]


def rescore_previous(run_vars: dict[str, Any], common: Sequence[str] = (),
                     today: date | None = None) -> list[date]:
    """``--previous``: score the history's as-of date before its latest (over the horizon of
    ``run_vars``) with the model of the latest date's newest run, and republish the latest, as
    any backfill before the latest date does; returns the dates scored (none when the date
    before already has a newest run of that model: nothing to do).

    After a build that trained a new model, the date before holds the earlier model's run, so
    clv_prediction_changes compares two models; scored again, it compares the new model with
    itself. The saved model is chosen as clv_retrain: never chooses it, by ``run_vars``: when
    they are not the vars the model was trained with, another model would score, so settings
    the registry shows differing stop it before any date is scored, and a date scored by
    another model all the same stops it before the latest date is republished."""
    common = list(common)
    # the settings of run_vars (their horizon), not those of the last build
    _invoke(["build", "--select", "clv_run_settings", "--vars",
             json.dumps(run_vars, default=str), "--quiet", *common])
    runs = _latest_runs(common, run_vars)
    if len(runs) < 2:
        raise BackfillError("--previous: clv_predictions_history holds fewer than two as-of "
                            "dates over this horizon, so there is no date before the latest "
                            "to score again")
    (latest, model), (previous, previous_model) = runs
    if previous_model == model:
        print(f"clv-backfill: {previous}, the date before the history's latest ({latest}), "
              f"was scored by model {model} as {latest} was: nothing to do", flush=True)
        return []
    differ = _settings_differ(common, run_vars, model)
    if differ:
        raise BackfillError(
            f"--previous: model {model}, which scored {latest}, was trained with other "
            f"settings than these vars: {', '.join(differ)}; pass the vars of the build that "
            "trained it")
    print(f"clv-backfill: {previous} (scored by model {previous_model}) scored again with "
          f"model {model}, which scored {latest}", flush=True)

    def by_the_model(day: date) -> None:
        # before the latest date is published again: it keeps the model's run
        version = dict(_latest_runs(common, run_vars)).get(day)
        if version != model:
            raise BackfillError(
                f"--previous: {day} was scored by model {version}, not by {model}: these vars "
                f"fit another saved model than the one that scored {latest} (other extra "
                "features, events or windows); the latest date was left as it was, and "
                f"clv_predictions holds {day}: run it again with the vars of the build that "
                f"trained {model}")

    return backfill(previous, previous, "day", run_vars, common, today, scored=by_the_model)


# What a backfill stopped part-way leaves: each date's build replaces clv_predictions, and only
# the last date's rebuilds what is read from it.
APART = ("clv_predictions may hold a date of the range while the tables read from it (the "
         "movements, the segment and total summaries, the explanations, the export, the report) "
         "do not: "
         "run the backfill again, or a build, to bring them together")


def _parser(prog: str = "clv-backfill") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Score past as-of dates with the saved model into clv_predictions_history "
                    "(one dbt build per date, clv_retrain: never).")
    parser.add_argument("--start", help="first as-of date, YYYY-MM-DD")
    parser.add_argument("--end", help="last as-of date, YYYY-MM-DD")
    parser.add_argument("--previous", action="store_true",
                        help="instead of a range: the history's as-of date before its latest, "
                             "scored with the current model (after a retrain, so that the "
                             "movements compare one model at both dates)")
    parser.add_argument("--every", default="month", help="day, week, month (default) or Nd")
    parser.add_argument("--vars", default="{}", help="the same dbt vars as your builds (YAML or "
                                                     "JSON mapping)")
    parser.add_argument("--project-dir", default=build.dbt_env("PROJECT_DIR") or ".",
                        help="the dbt project (default: DBT_PROJECT_DIR, else .)")
    parser.add_argument("--profiles-dir", default=None, help="where profiles.yml is")
    parser.add_argument("--target", default=None, help="dbt target")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "clv-backfill") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        run_vars = build.parse_vars(args.vars)
        # profiles.yml where clv build and dbt find it: --profiles-dir, DBT_PROFILES_DIR, the
        # current directory, then the project
        project_dir = Path(args.project_dir).resolve()
        profiles_dir = Path(args.profiles_dir) if args.profiles_dir else None
        common = ["--project-dir", str(project_dir), "--profiles-dir",
                  str(build.profiles_dir_of(project_dir, profiles_dir))]
        if args.target:
            common += ["--target", args.target]
        if args.previous:
            if args.start or args.end:
                raise BackfillError("--previous names its date itself: leave out --start and "
                                    "--end")
        elif not (args.start and args.end):
            raise BackfillError("name the range with --start and --end (or use --previous)")
        else:
            start, end = _date("--start", args.start), _date("--end", args.end)
            as_of_dates(start, end, args.every)  # the range's own errors before Spark starts
        build.start_engine(project_dir, profiles_dir, args.target, run_vars)
        if args.previous:
            dates = rescore_previous(run_vars, common)
            if not dates:
                return 0
        else:
            dates = backfill(start, end, args.every, run_vars, common)
    except (BackfillError, build.BuildError) as error:
        print(f"clv-backfill: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"clv-backfill: interrupted; the dates reported as scored are in the history; "
              f"{APART}", file=sys.stderr)
        return 130
    print(f"clv-backfill: {_dates_count(dates)} scored into clv_predictions_history, "
          f"{dates[0]} to {dates[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
