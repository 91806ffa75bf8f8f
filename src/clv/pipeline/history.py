"""The prediction history's scoring runs, as the daily job and the backfill read them.

A run is one model's rows at one as-of date. Several runs can share a date (a re-run with a
retrained model, a backfill with an older one); the date's run is the newest by ``scored_at``.
Runs over another horizon than the settings' are another job's (a weekly 90-day value beside a
daily year's) and are left out.
"""

from __future__ import annotations


def newest_runs_sql(history: str, horizon_days: str, version_order: str = "model_version") -> str:
    """Select ``as_of_date, model_version`` of each as-of date's newest run in ``history`` over
    the horizon ``horizon_days`` (a SQL expression), latest date first. Ties in ``scored_at``
    go to the larger ``version_order`` (the model version, or its binary collation where
    engines sort text differently)."""
    return ("select as_of_date, model_version from (select as_of_date, model_version, "
            "row_number() over (partition by as_of_date order by max(scored_at) desc nulls last, "
            f"{version_order} desc) as run_rank from {history} "
            f"where horizon_days = {horizon_days} group by as_of_date, model_version) as runs "
            "where run_rank = 1 order by as_of_date desc")
