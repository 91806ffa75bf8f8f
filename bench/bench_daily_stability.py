"""How much daily re-scores move customers who did nothing: the churn early-warning list's noise.

    python bench/bench_daily_stability.py [--days 30] [--only sample cdnow retail]

For each data set: a full `dbt build` at its first as-of date (fresh DuckDB file and model
directory), then one build per following day with the saved model (`clv_retrain: never`),
each building the history, the registry and `clv_prediction_changes`, as a daily job does.
After each day it reads `clv_prediction_changes` (the movements since the day before): the
share of customers flagged `needs_attention`, among all and among the idle ones (no
transaction of any kind and no event since the day before: nothing new to learn from). At
the end, over every pair of consecutive days in the history, the daily change of the idle
customers' values: the network's `predicted_clv` beside BG/NBD + Gamma-Gamma's
`btyd_expected_spend` (its inputs, recency and age, move continuously with the date), as the
median and the 99th percentile of the relative change, and the share that moved by more than
20% in a day, among the customers in the upper half of each predictor's values the day before
(a relative change of a value near zero says little).

Data sets: `sample` (the shipped sample), `cdnow` (the CDNOW master file the `lifetimes`
package ships, as in bench/bench_accuracy.py), `retail` (the Online Retail invoices, as in
bench/bench_accuracy.py; skipped without the file), `subscription` (bench/subscription.py: a
subscription business, whose customers share a few values and whose value dips a little each
time a subscriber pays, as a year's window holds one bill fewer).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from datetime import date, timedelta

import duckdb
from bench_accuracy import RETAIL_FILE, cdnow_set, retail
from bench_soak import parsed_build
from common import OUT_DIR
from subscription import simulate, write_csv

DAILY = ["--select", "+clv_predictions_history", "+clv_model_registry", "clv_prediction_changes",
         "--exclude-resource-type", "test", "unit_test", "seed"]
MOVED = 0.2  # a relative change in a day counted as a jump


def idle(row: str, after: str, until: str) -> str:
    """SQL: customer ``row``.customer_id has no transaction (purchase, refund or zero amount)
    and no event in the days after ``after`` up to ``until``: nothing new to learn from."""
    day, event_day = "days.activity_date", "cast(events.event_at as date)"
    return (f"not exists (select 1 from int_clv__customer_days as days "
            f"where days.customer_id = {row}.customer_id "
            f"and {day} > {after} and {day} <= {until}) "
            f"and not exists (select 1 from stg_clv__events as events "
            f"where events.customer_id = {row}.customer_id "
            f"and {event_day} > {after} and {event_day} <= {until})")


# per consecutive pair of as-of dates in the history: each idle customer's relative change of
# one value column ({value}), among those in the upper half of that column the day before
CHANGES_SQL = """
with runs as (
    select customer_id, as_of_date, {value} as value
    from clv_predictions_history
),
pairs as (
    select today.customer_id, today.as_of_date, yesterday.value as before, today.value as after,
           percent_rank() over (partition by today.as_of_date order by yesterday.value) as rank
    from runs as today
    inner join runs as yesterday
        on today.customer_id = yesterday.customer_id
        and yesterday.as_of_date = today.as_of_date - interval 1 day
)
select
    quantile_cont(abs(after / before - 1), 0.5) as median_change,
    quantile_cont(abs(after / before - 1), 0.99) as p99_change,
    avg(case when abs(after / before - 1) > {moved} then 1.0 else 0.0 end) as moved_share,
    count(*) as customer_days
from pairs
where rank >= 0.5 and before > 0 and """ + idle("pairs", "pairs.as_of_date - interval 1 day",
                                                  "pairs.as_of_date") + "\n"

FLAGGED_SQL = """
select
    count(*) as customers,
    avg(case when needs_attention then 1.0 else 0.0 end) as flagged,
    avg(case when needs_attention then 1.0 else 0.0 end) filter (where idle) as flagged_idle
from (
    select changes.needs_attention, """ + idle("changes", "changes.previous_as_of_date",
                                               "changes.as_of_date") + """ as idle
    from clv_prediction_changes as changes
)
"""


def data_sets(only: list[str] | None = None) -> dict[str, tuple[dict, str]]:
    """name -> (vars, first as-of date), for the sets in ``only`` (default: all available);
    a set left out is not prepared (no file written for it)."""
    def wanted(name: str) -> bool:
        return not only or name in only

    sets = {"sample": ({}, "2023-11-30")} if wanted("sample") else {}
    if wanted("cdnow"):
        cdnow = cdnow_set()
        sets["cdnow"] = ({"clv_transactions": str(cdnow.transactions),
                          "clv_horizon_days": cdnow.horizon_days}, cdnow.as_of)
    if wanted("retail") and RETAIL_FILE.exists():
        shop = retail()
        sets["retail"] = ({**shop.vars, "clv_transactions": str(shop.transactions),
                           "clv_horizon_days": shop.horizon_days}, shop.as_of)
    if wanted("subscription"):
        # bench/subscription.py: many customers share a value, and paying moves it a little
        subscriptions = write_csv(simulate(), OUT_DIR / "subscription.csv")
        sets["subscription"] = ({"clv_transactions": str(subscriptions)}, "2023-11-30")
    return sets


def run(name: str, run_vars: dict, first: date, days: int) -> None:
    workdir = OUT_DIR / f"daily_stability_{name}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    database = workdir / "clv.duckdb"
    base = {**run_vars, "clv_model_dir": str(workdir / "onnx"),
            "clv_export_path": str(workdir / "predictions.parquet"),
            "clv_report_path": str(workdir / "report.html")}
    paths = ["--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs")]
    build = parsed_build(workdir, database)
    seconds = build(["--vars", json.dumps({**base, "clv_as_of_date": first.isoformat()}),
                     *paths], database)
    print(f"\n#### {name}: full build as of {first} ({seconds:.0f} s), then {days} daily "
          "re-scores with the saved model\n")
    flagged, quiet, ever = [], [], set()
    for k in range(1, days + 1):
        day_vars = {**base, "clv_retrain": "never",
                    "clv_as_of_date": (first + timedelta(days=k)).isoformat()}
        build([*DAILY, "--vars", json.dumps(day_vars), *paths], database)
        with duckdb.connect(str(database), read_only=True) as connection:
            customers, share, share_idle = connection.execute(FLAGGED_SQL).fetchone()
            ever.update(row[0] for row in connection.execute(
                "select customer_id from clv_prediction_changes where needs_attention"
            ).fetchall())
        flagged.append(share)
        quiet.append(share_idle)
    print(f"customers in clv_prediction_changes: {customers:,} (the last day)")
    print(f"flagged needs_attention per day: median {statistics.median(flagged):.2%} "
          f"(range {min(flagged):.2%} to {max(flagged):.2%}); among customers with no "
          f"transaction or event that day: median {statistics.median(quiet):.2%}; flagged on "
          f"at least one of the {days} days: {len(ever):,} customers "
          f"({len(ever) / max(customers, 1):.1%} of the last day's)")
    print("\n| daily change of idle customers, upper half by value | median | 99th percentile "
          f"| moved more than {MOVED:.0%} | customer-days |")
    print("|---|---|---|---|---|")
    with duckdb.connect(str(database), read_only=True) as connection:
        for label, column in (("network (predicted_clv)", "predicted_clv"),
                              ("BG/NBD + Gamma-Gamma (btyd_expected_spend)",
                               "btyd_expected_spend")):
            median, p99, moved, count = connection.execute(
                CHANGES_SQL.format(value=column, moved=MOVED)).fetchone()
            print(f"| {label} | {median:.2%} | {p99:.1%} | {moved:.2%} | {count:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="daily re-scores per data set")
    parser.add_argument("--only", nargs="*", help="data sets to run (default: all available)")
    args = parser.parse_args()
    for name, (run_vars, first) in data_sets(args.only).items():
        run(name, run_vars, date.fromisoformat(first), args.days)


if __name__ == "__main__":
    main()
