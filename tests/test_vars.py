"""Every var is validated before any SQL runs, with an error that names the var, reported in the
model the var is about (clv_run_settings, or the staging model of the transactions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dbt.exceptions import CompilationError

BAD_VARS = [
    ({"clv_horizon_days": -5}, "clv_horizon_days"),
    ({"clv_horizon_days": 100000}, "clv_horizon_days"),
    ({"clv_horizon_days": "ninety"}, "clv_horizon_days"),
    ({"clv_horizon_days": True}, "clv_horizon_days"),
    ({"clv_as_of_date": "2023-02-30"}, "clv_as_of_date"),
    ({"clv_as_of_date": "06/30/2023"}, "clv_as_of_date"),
    ({"clv_as_of_date": "2023-01-01'; drop table x; --"}, "clv_as_of_date"),
    ({"clv_training_cutoffs": 0}, "clv_training_cutoffs"),
    ({"clv_cutoff_spacing_days": 1.5}, "clv_cutoff_spacing_days"),
    ({"clv_period_days": 0}, "clv_period_days"),
    ({"clv_sequence_periods": 1000}, "clv_sequence_periods"),
    ({"clv_retrain": "sometimes"}, "clv_retrain"),
    ({"clv_transactions": "main.tx; drop table clv_predictions"}, "clv_transactions"),
    ({"clv_transactions": "/data/x.csv'); drop table y; --.csv"}, "clv_transactions"),
    ({"clv_transactions": '"main"."tx"; drop table y'}, "clv_transactions"),
    ({"clv_load_sample": "sometimes"}, "clv_load_sample"),
    ({"clv_columns": {"amount": "1; drop table x"}}, "clv_columns"),
    ({"clv_columns": {"amount": "price -- comment"}}, "clv_columns"),
    ({"clv_columns": {"spend": "price"}}, "clv_columns"),
    ({"clv_columns": "customer_id"}, "clv_columns"),
    ({"clv_timestamp_format": "%Y'); drop table x; --"}, "clv_timestamp_format"),
    ({"clv_csv_encoding": "cp1252"}, "clv_csv_encoding"),
    ({"clv_decimal_separator": ";"}, "clv_decimal_separator"),
    ({"clv_model_dir": ""}, "clv_model_dir"),
    ({"clv_ensemble_size": 11}, "clv_ensemble_size"),
    ({"clv_export_path": ""}, "clv_export_path"),
    ({"clv_export_path": "exports/predictions.csv"}, "clv_export_path"),
    ({"clv_report_path": "reports/clv_report.pdf"}, "clv_report_path"),
    ({"clv_report_path": "reports/"}, "clv_report_path"),
    ({"clv_currency": "Euros of the euro area"}, "clv_currency"),
    ({"clv_currency": 978}, "clv_currency"),
    ({"clv_extra_features": ["loyalty score"]}, "clv_extra_features"),
    ({"clv_extra_features": ["x; drop table y"]}, "clv_extra_features"),
    ({"clv_extra_features": ["seq_orders_lag_01"]}, "clv_extra_features"),
    ({"clv_extra_features": {"a": 1}}, "clv_extra_features"),
    ({"clv_extra_features": ["frequency"]}, "clv_extra_features"),  # a feature clv computes
    ({"clv_extra_features": ["order"]}, "clv_extra_features"),  # an SQL keyword
    ({"clv_extra_features": ["btyd_expected_spend"]}, "clv_extra_features"),
    ({"clv_segment_bounds": [0.5, 0.2]}, "clv_segment_bounds"),
    ({"clv_segment_bounds": {"active": 0.4}}, "clv_segment_bounds"),
    ({"clv_segment_bounds": {"active_probability": 1.5}},
     "clv_segment_bounds.active_probability"),
    ({"clv_segment_bounds": {"at_risk_probability": "low"}},
     "clv_segment_bounds.at_risk_probability"),
    ({"clv_segment_bounds": {"high_value_deciles": 11}}, "clv_segment_bounds.high_value_deciles"),
    ({"clv_segment_bounds": {"new_days": 30.5}}, "clv_segment_bounds.new_days"),
    ({"clv_segment_bounds": {"at_risk_probability": 0.6}}, "clv_segment_bounds"),
]
INPUT_VARS = {"clv_transactions", "clv_columns"}
PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(("vars", "name"), BAD_VARS, ids=[str(v) for v, _ in BAD_VARS])
def test_bad_var_is_rejected_before_sql_runs(dbt_project, vars, name):
    with pytest.raises(CompilationError, match=f"Invalid value for var '{name}'") as raised:
        dbt_project.run("parse", vars=vars)
    assert not dbt_project.database.exists(), "no SQL may run for an invalid var"
    # reported in the model the var is about, not in whichever model dbt parsed first: the
    # input's vars in the staging model that reads the input, the others in the settings row
    model = ("stg_clv__transactions (models/1_staging/stg_clv__transactions.sql)"
             if name in INPUT_VARS else "clv_run_settings (models/clv_run_settings.sql)")
    assert f"Error in model {model}" in str(raised.value)


@pytest.mark.slow
def test_a_name_that_is_neither_a_relation_nor_a_file_says_what_a_file_looks_like(dbt_project):
    """On this engine (DuckDB): the file endings it reads (tests/test_input_shapes.py, and the
    PostgreSQL and Spark files, read the same hint after a relation that is missing)."""
    with pytest.raises(CompilationError, match=r"got 'orders 2024' \(a file path must end in "
                                               r"\.csv, \.tsv, \.txt or \.parquet\)"):
        dbt_project.run("parse", vars={"clv_transactions": "orders 2024"})


@pytest.mark.slow
def test_an_extra_feature_listed_twice_says_so(dbt_project):
    """Not that it is the name of a feature clv computes (the list's own repeat counted)."""
    with pytest.raises(CompilationError, match="'loyalty' is listed twice"):
        dbt_project.run("parse", vars={"clv_extra_features": ["loyalty", "Loyalty"]})


@pytest.mark.slow
def test_a_misspelled_var_is_rejected_naming_the_one_meant(dbt_project):
    """A clv_* var clv does not read would leave the build on the default without a word."""
    with pytest.raises(CompilationError, match=r"Unknown var 'clv_horizon_dayz'.*did you mean "
                                               r"'clv_horizon_days'"):
        dbt_project.run("parse", vars={"clv_horizon_dayz": 91})
    assert not dbt_project.database.exists()
    # a clv var without its prefix would be ignored just as silently
    with pytest.raises(CompilationError, match=r"Unknown var 'as_of_date': clv's vars start "
                                               r"with clv_ \(did you mean 'clv_as_of_date'"):
        dbt_project.run("parse", vars={"as_of_date": "2023-06-30"})
    assert not dbt_project.database.exists()


@pytest.mark.slow
def test_segment_bounds_may_be_written_as_text(dbt_project):
    """An env_var gives text: a probability written as "0.3" reads as 0.3, as a whole number of
    deciles written as "3" reads as 3."""
    dbt_project.run("parse", vars={"clv_segment_bounds": {"active_probability": "0.3",
                                                          "at_risk_probability": "0.05",
                                                          "high_value_deciles": "3"}})


def test_the_known_vars_are_the_declared_vars():
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    declared = yaml.safe_load((root / "dbt_project.yml").read_text())["vars"]
    macro = (root / "macros" / "clv_var_names.sql").read_text()
    body = re.search(r"macro clv_known_vars\(\) %\}(.*?)endmacro", macro, re.S).group(1)
    assert re.findall(r"'(clv_[a-z_]+)'", body) == sorted(declared)


@pytest.mark.slow
def test_the_as_of_date_yesterday_is_the_day_before_today_in_the_time_zone(dbt_project):
    """A scheduled job's vars stay the same every day with clv_as_of_date: yesterday."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    zone = "Pacific/Kiritimati"  # UTC+14: its yesterday is UTC's today for most of the day
    days = {(datetime.now(ZoneInfo(zone)) - timedelta(days=1)).date()}
    dbt_project.run("build", select="clv_run_settings",
                    vars={"clv_as_of_date": "Yesterday", "clv_time_zone": zone})
    days.add((datetime.now(ZoneInfo(zone)) - timedelta(days=1)).date())  # midnight passed
    [as_of] = dbt_project.query("select as_of_date from clv_run_settings").as_of_date
    assert as_of.date() in days


@pytest.mark.slow
def test_today_is_the_day_the_invocation_started(dbt_project, monkeypatch):
    """Every model of one build reads the same today, the day dbt started (run_started_at),
    whatever the clock says when each compiles: a build that runs past midnight holds one date.
    Started on 2023-07-01 (13:30 in UTC, already the 2nd in Kiritimati), by the clock years
    later."""
    from datetime import UTC, datetime

    import dbt.tracking

    started = datetime(2023, 7, 1, 13, 30, tzinfo=UTC)

    class StartedThen(datetime):
        @classmethod
        def now(cls, tz=None):
            return started.astimezone(tz)

    monkeypatch.setattr(dbt.tracking, "datetime", StartedThen)
    for zone, yesterday in [("UTC", "2023-06-30"), ("Pacific/Kiritimati", "2023-07-01")]:
        dbt_project.run("build", select="clv_run_settings",
                        vars={"clv_as_of_date": "yesterday", "clv_time_zone": zone})
        [as_of] = dbt_project.query("select as_of_date from clv_run_settings").as_of_date
        assert f"{as_of:%Y-%m-%d}" == yesterday, zone
    with pytest.raises(CompilationError, match=r"2023-07-02 is after today \(2023-07-01 in UTC\)"):
        dbt_project.run("parse", vars={"clv_as_of_date": "2023-07-02"})
    # a command of `clv build`'s stages, started after midnight: the build's start decides
    started = datetime(2023, 7, 2, 0, 5, tzinfo=UTC)  # (StartedThen.now reads it when called)
    monkeypatch.setenv("CLV_BUILD_STARTED_AT", "2023-07-01T23:55:00+00:00")
    dbt_project.run("build", select="clv_run_settings", vars={"clv_as_of_date": "yesterday"})
    [as_of] = dbt_project.query("select as_of_date from clv_run_settings").as_of_date
    assert f"{as_of:%Y-%m-%d}" == "2023-06-30"
    # one left in a shell, weeks old, or after the command's start: stops, naming it
    for left in ["2023-06-01T10:00:00+00:00", "2023-07-03T10:00:00+00:00", "2023-07-01"]:
        monkeypatch.setenv("CLV_BUILD_STARTED_AT", left)
        stale = dbt_project.run("build", select="clv_run_settings",
                                vars={"clv_as_of_date": "yesterday"})
        messages = " ".join(str(r.message) for r in stale.result)
        assert not stale.success and f"CLV_BUILD_STARTED_AT is {left}: clv build sets" in messages


def _parsed(project, vars: dict) -> dict:
    """What a parse fixes for every node: its dependencies and configuration, whether it is
    enabled, and the exposures' targets."""
    from conftest import duckdb_path
    from dbt.cli.main import dbtRunner

    with duckdb_path(project.database):
        parsed = dbtRunner().invoke(
            ["parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
             "--target-path", str(project.workdir / "target"),
             "--log-path", str(project.workdir / "logs"), "--quiet",
             "--vars", json.dumps(vars)])
    assert parsed.success, parsed.exception
    manifest = parsed.result
    nodes = {**manifest.nodes, **manifest.unit_tests, **manifest.exposures, **manifest.sources}
    return {
        "disabled": sorted(manifest.disabled),
        **{uid: (sorted(getattr(node, "depends_on", None).nodes) if hasattr(node, "depends_on")
                 else None, node.config.to_dict(), getattr(node, "url", None))
           for uid, node in nodes.items()},
    }


@pytest.mark.slow
def test_the_vars_the_tests_share_a_parse_over_are_read_only_when_compiling(dbt_project):
    """The tests' builds re-use one parse of the project across the vars that dbt reads only when
    it compiles a node (tests/conftest.py, COMPILE_TIME_VARS) and across which file or table an
    input names: a var that changed what dbt parses would leave those builds on a stale parse."""
    from conftest import COMPILE_TIME_VARS, INPUT_VARS

    first = {"clv_transactions": "shop/orders.csv", "clv_customers": "shop/customers.parquet",
             "clv_events": "main.events"}
    other = {
        "clv_transactions": "main.orders", "clv_customers": "other/people.csv",
        "clv_events": "other/events.parquet", "clv_as_of_date": "2023-06-30",
        "clv_columns": {"customer_id": "client", "amount": "price * quantity"},
        "clv_csv_encoding": "latin-1", "clv_cutoff_spacing_days": 30,
        "clv_decimal_separator": ",", "clv_ensemble_size": 1, "clv_explanations": False,
        "clv_extra_features": ["loyalty"], "clv_horizon_days": 90, "clv_keep_models": 2,
        "clv_max_train_rows": 1000, "clv_max_validation_rows": 1000,
        "clv_missing_customer_ids": ["x"], "clv_model_dir": "elsewhere", "clv_period_days": 7,
        "clv_retrain": "never", "clv_seasonal_backtests": 0, "clv_seed": 7,
        "clv_sequence_periods": 6,
        "clv_time_zone": "Europe/Berlin", "clv_timestamp_format": "%d/%m/%Y",
        "clv_training_cutoffs": 3,
    }
    assert set(other) == COMPILE_TIME_VARS | INPUT_VARS
    baseline = _parsed(dbt_project, first)
    changed = _parsed(dbt_project, other)
    assert changed == baseline, [uid for uid in baseline if changed.get(uid) != baseline[uid]]
    # and the check sees a var that does change the parse
    assert _parsed(dbt_project, {**first, "clv_scoring_engine": "sql"}) != baseline


@pytest.mark.slow
def test_a_report_path_error_names_both_endings_it_takes(dbt_project):
    with pytest.raises(CompilationError, match=r"a file name ending in \.html or \.htm, got "
                                               r"'reports/clv_report\.pdf'"):
        dbt_project.run("parse", vars={"clv_report_path": "reports/clv_report.pdf"})
