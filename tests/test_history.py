"""Dynamic CLV: the prediction history, the changes from the as-of date before the predictions'
own, cheap daily re-scores with a saved model, and the backfill command."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow.parquet as pq
import pytest

from clv.pipeline import backfill
from clv.synthetic import GeneratorSettings, generate

FIRST_AS_OF, SECOND_AS_OF = "2023-10-31", "2023-11-30"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import DbtProject

    workdir = tmp_path_factory.mktemp("history")
    data = generate(GeneratorSettings(n_customers=400, start_date=date(2021, 1, 1),
                                      end_date=date(2023, 12, 31), seed=8, bad_rows=False))
    data.transactions.to_csv(workdir / "transactions.csv", index=False)
    project = DbtProject(workdir)
    project.vars = {"clv_transactions": str(workdir / "transactions.csv"),
                    "clv_horizon_days": 180, "clv_model_dir": str(workdir / "models"),
                    "clv_ensemble_size": 1, "clv_export_path": str(workdir / "p.parquet")}
    project.build(vars={**project.vars, "clv_as_of_date": FIRST_AS_OF}, select=None)
    return project


LOST_CUSTOMERS = "clv_predictions_keep_the_previous_customers"


def _status(result, name: str) -> tuple[str, int]:
    [test] = [r for r in result.result if r.node.name == name]
    return str(test.status), test.failures


def _history(project):
    return project.query("select as_of_date, model_version, count(*) as customers "
                         "from clv_predictions_history group by all order by all")


@pytest.mark.slow
def test_a_rebuild_at_the_same_date_replaces_its_rows(project):
    before = _history(project)
    assert len(before) == 1
    project.build(vars={**project.vars, "clv_as_of_date": FIRST_AS_OF}, select=None)
    assert _history(project).equals(before)


@pytest.mark.slow
def test_a_daily_rescore_builds_only_the_scoring_cutoff_and_appends(project):
    vars_ = {**project.vars, "clv_as_of_date": SECOND_AS_OF, "clv_retrain": "never"}
    result = project.build(vars=vars_, select=None)
    assert _status(result, LOST_CUSTOMERS) == ("pass", 0)  # the customers are all still there
    cutoffs = project.query("select cutoff_role from int_clv__cutoffs")
    assert list(cutoffs.cutoff_role) == ["scoring"]
    assert project.query("select count(*) as n from clv_training_examples").n[0] == 0
    history = _history(project)
    assert [str(d)[:10] for d in history.as_of_date] == [FIRST_AS_OF, SECOND_AS_OF]
    assert history.model_version.nunique() == 1
    predictions = project.query("select count(*) as n from clv_predictions").n[0]
    assert history.customers.iloc[-1] == predictions
    grain = project.query("select customer_id, as_of_date, model_version, count(*) as n "
                          "from clv_predictions_history group by all having count(*) > 1")
    assert grain.empty


@pytest.mark.slow
def test_a_source_that_lost_customers_warns(project, tmp_path):
    """A reload that lost a tenth of the customers' rows: the next build warns, one count per
    customer of the date before that is gone."""
    import shutil

    import pandas as pd
    from conftest import DbtProject
    from production import close_database

    close_database()
    shutil.copy(project.database, tmp_path / "clv.duckdb")
    shutil.copytree(project.workdir / "models", tmp_path / "models")
    source = pd.read_csv(project.workdir / "transactions.csv", dtype=str)
    gone = set(sorted(source.customer_id.unique())[::10])
    source[~source.customer_id.isin(gone)].to_csv(tmp_path / "transactions.csv", index=False)
    copy = DbtProject(tmp_path)
    latest = copy.query("select max(as_of_date) as d from clv_predictions_history").d[0]
    before = set(copy.query(f"select customer_id from clv_predictions_history "
                            f"where as_of_date = date '{str(latest)[:10]}'").customer_id)
    result = copy.build(vars={**project.vars, "clv_as_of_date": "2023-12-15",
                              "clv_retrain": "never", "clv_model_dir": str(tmp_path / "models"),
                              "clv_transactions": str(tmp_path / "transactions.csv")},
                        select=None)
    assert len(before & gone) > 0.05 * len(before)
    assert _status(result, LOST_CUSTOMERS) == ("warn", len(before & gone))


@pytest.mark.slow
def test_a_full_refresh_keeps_the_history(project):
    """dbt's --full-refresh rebuilds tables from scratch; the history holds runs that no
    rebuild could reproduce (older models, older as-of dates), so it ignores the flag."""
    before = _history(project)
    vars_ = {**project.vars, "clv_as_of_date": SECOND_AS_OF, "clv_retrain": "never"}
    result = project.run("build", vars=vars_, select="clv_predictions_history",
                         extra=["--full-refresh"])
    assert result.success
    assert _history(project).equals(before)


@pytest.mark.slow
def test_changes_compare_the_predictions_date_with_the_one_before(project):
    changes = project.query("select * from clv_prediction_changes")
    both = project.query("""
        select count(*) as n from (
            select customer_id from clv_predictions_history
            group by customer_id having count(distinct as_of_date) = 2)""").n[0]
    assert len(changes) == both > 0
    assert {str(d)[:10] for d in changes.as_of_date} == {SECOND_AS_OF}
    assert {str(d)[:10] for d in changes.previous_as_of_date} == {FIRST_AS_OF}
    assert (changes.predicted_clv_change
            == changes.predicted_clv - changes.previous_predicted_clv).all()
    assert (changes.purchase_probability_change
            == changes.purchase_probability - changes.previous_purchase_probability).all()
    # both sides are the history's rows of their dates (one run each here)
    history = project.query("select customer_id, as_of_date, predicted_clv, "
                            "purchase_probability, value_decile, segment "
                            "from clv_predictions_history")
    assert not history.duplicated(["customer_id", "as_of_date"]).any()
    history["as_of_date"] = history.as_of_date.astype(str).str[:10]
    for side, day in (("previous_", FIRST_AS_OF), ("", SECOND_AS_OF)):
        rows = history[history.as_of_date == day].set_index("customer_id")
        for column in ("predicted_clv", "purchase_probability", "value_decile", "segment"):
            expected = rows.loc[changes.customer_id, column].to_numpy()
            assert (changes[side + column].to_numpy() == expected).all(), side + column
    # the ranking's flags need the value to have fallen by a fifth
    fallen = ((changes.previous_predicted_clv > 0)
              & (changes.predicted_clv <= 0.8 * changes.previous_predicted_clv))
    dropped = (changes.value_decile - changes.previous_value_decile >= 2) & fallen
    assert (changes.is_dropping_two_deciles == dropped).all()
    halved = ((changes.previous_value_decile <= 2) & (changes.previous_predicted_clv > 0)
              & (changes.predicted_clv <= changes.previous_predicted_clv / 2))
    assert (changes.is_halving_value == halved).all()
    left = (changes.previous_segment == "high_value") & (changes.segment != "high_value") & fallen
    assert (changes.is_leaving_high_value == left).all()
    # the probability crossed the segment's bound (the segment rules of clv_predictions)
    at_risk = (changes.previous_purchase_probability >= 0.5) & (changes.segment == "at_risk")
    assert (changes.is_becoming_at_risk == at_risk).all()
    dormant = (changes.previous_purchase_probability >= 0.2) & (changes.segment == "dormant")
    assert (changes.is_becoming_dormant == dormant).all()
    assert (changes.needs_attention == (dropped | halved | left | at_risk | dormant)).all()



@pytest.mark.slow
def test_a_missing_segment_fails_the_history_and_changes_tests(project, tmp_path):
    """accepted_values passes a null, as does a row rule whose operands are null: the
    segments are checked for null apart."""
    import shutil

    import duckdb
    from conftest import DbtProject

    copy = DbtProject(tmp_path)
    with duckdb.connect(str(project.database)) as connection:
        connection.execute("checkpoint")  # the builds' tables into the file, not its log
    shutil.copy(project.database, copy.database)
    with duckdb.connect(str(copy.database)) as connection:
        for table in ("clv_predictions_history", "clv_prediction_changes"):
            connection.execute(f"update main.{table} set segment = null where customer_id = "
                               f"(select min(customer_id) from main.{table})")
        connection.execute("update main.clv_prediction_changes set previous_segment = null "
                           "where customer_id = (select max(customer_id) "
                           "from main.clv_prediction_changes)")
    result = copy.run("test", vars=project.vars,
                      select="clv_predictions_history clv_prediction_changes",
                      extra=["--exclude-resource-type", "unit_test"])
    failed = sorted(r.node.name for r in result.result if str(r.status) == "fail")
    assert failed == ["clv_predictions_history_values_are_in_range",
                      "not_null_clv_prediction_changes_previous_segment",
                      "not_null_clv_prediction_changes_segment"]

def readme_sql_statements() -> list[str]:
    """Every statement of the README's ```sql blocks (each ends with ; at the end of a line),
    with its leading comments."""
    from conftest import PROJECT_DIR

    blocks = re.findall(r"^```sql\n(.*?)^```", (PROJECT_DIR / "README.md").read_text(),
                        flags=re.MULTILINE | re.DOTALL)
    return [statement.strip() for block in blocks
            for statement in re.split(r";$", block, flags=re.MULTILINE) if statement.strip()]


def test_the_readme_holds_sql_examples():
    statements = readme_sql_statements()
    assert len(statements) >= 8
    assert any("from clv_prediction_changes" in s for s in statements)


@pytest.mark.slow
def test_the_readme_sql_examples_run_on_two_as_of_dates(project):
    """The README's example queries, as printed, on a sample with a history of two dates: each
    runs, and the list of movements and the explanations of high-value customers have rows."""
    results = {statement: project.query(statement) for statement in readme_sql_statements()}
    for statement, result in results.items():
        if "from clv_prediction_changes" in statement or "explanations.driver_1_group" in statement:
            assert not result.empty, statement
            assert result.notna().all().all(), statement
    assert sum(len(result) for result in results.values()) > 100


@pytest.mark.slow
def test_lost_customers_are_counted_against_the_previous_dates_newest_run(project):
    """An older run at the date before, of other customers (another data set built into the
    same schema, a run before the source was cleaned), is not the customer base the build
    replaced: the test compares with that date's newest run, as the movements do."""
    older = ("insert into clv_predictions_history select * replace (customer_id || '-old' as "
             "customer_id, 'older_run' as model_version, timestamp '2000-01-01' as scored_at) "
             f"from clv_predictions_history where as_of_date = date '{FIRST_AS_OF}'")
    with duckdb.connect(str(project.database)) as connection:
        connection.execute(older)
    try:
        result = project.run("test", vars={**project.vars, "clv_as_of_date": SECOND_AS_OF},
                             select=LOST_CUSTOMERS)
        assert _status(result, LOST_CUSTOMERS) == ("pass", 0)
    finally:
        with duckdb.connect(str(project.database)) as connection:
            connection.execute("delete from clv_predictions_history "
                               "where model_version = 'older_run'")


@pytest.mark.slow
def test_a_new_model_version_keeps_the_old_rows_readable(project):
    vars_ = {**project.vars, "clv_as_of_date": SECOND_AS_OF, "clv_retrain": "always",
             "clv_seed": 7}
    project.build(vars=vars_, select=None)
    history = _history(project)
    assert len(history) == 3 and history.model_version.nunique() == 2
    changes = project.query("select distinct model_version from clv_prediction_changes")
    newest = project.query("select model_version from clv_model_registry where is_current")
    assert list(changes.model_version) == list(newest.model_version)


@pytest.mark.slow
def test_previous_scores_the_date_before_with_the_new_model(project, monkeypatch, capsys):
    """After the retrain above, the movements compare the new model at the second date with
    the old one at the first; clv-backfill --previous scores the first date with the new model
    and republishes the second, so they compare the new model with itself. Run again, it has
    nothing to do; with vars of other settings than the model's, it stops before any build."""
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(project.database))
    before = project.query("select distinct previous_model_version, model_version "
                           "from clv_prediction_changes")
    assert len(before) == 1 and before.previous_model_version[0] != before.model_version[0]
    new_model = before.model_version[0]
    other = {**project.vars, "clv_sequence_periods": 6}
    with pytest.raises(backfill.BackfillError, match=(
            f"model {new_model}, which scored {SECOND_AS_OF}, was trained with other settings "
            r"than these vars: sequence_periods 12 \(the vars: 6\)")):
        backfill.rescore_previous(other, _common(project))
    assert _history(project).shape[0] == 3
    capsys.readouterr()
    assert backfill.rescore_previous(project.vars, _common(project)) == [
        date.fromisoformat(FIRST_AS_OF)]
    assert (f"{FIRST_AS_OF} (scored by model {before.previous_model_version[0]}) scored again "
            f"with model {new_model}") in capsys.readouterr().out
    after = project.query("select distinct previous_as_of_date, as_of_date, "
                          "previous_model_version, model_version from clv_prediction_changes")
    assert [(str(a)[:10], str(b)[:10]) for a, b in zip(
        after.previous_as_of_date, after.as_of_date, strict=True)] == [(FIRST_AS_OF, SECOND_AS_OF)]
    assert list(after.previous_model_version) == list(after.model_version) == [new_model]
    history = _history(project)
    assert len(history) == 4 and history.model_version.nunique() == 2
    assert backfill.rescore_previous(project.vars, _common(project)) == []
    assert "nothing to do" in capsys.readouterr().out
    assert len(_history(project)) == 4


def _common(project) -> list[str]:
    from conftest import PROJECT_DIR

    return ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(project.workdir / "target"),
            "--log-path", str(project.workdir / "logs")]


@pytest.mark.slow
def test_backfill_fills_monthly_dates_once(project, monkeypatch, capsys):
    """Five monthly dates end to end (the dates themselves, month ends included, are
    test_backfill_dates_and_option_errors'), the latest of them again, then one before it."""
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(project.database))
    capsys.readouterr()
    dates = backfill.backfill(date(2023, 7, 30), date(2023, 11, 30), "month", project.vars,
                              _common(project))
    # the earlier dates' clv_predictions are older than the history's latest by design: no
    # warning says so
    assert "clv_predictions_are_of_the_latest" not in capsys.readouterr().out
    # from a month's last day, every month's last day
    assert dates == [date(2023, 7, 31), date(2023, 8, 31), date(2023, 9, 30), date(2023, 10, 31),
                     date(2023, 11, 30)]
    history = project.query("select distinct as_of_date from clv_predictions_history")
    assert {str(d)[:10] for d in history.as_of_date} >= {d.isoformat() for d in dates}
    # the early-warning list compares the two latest as-of dates of the filled history
    changes = project.query("select distinct previous_as_of_date, as_of_date "
                            "from clv_prediction_changes")
    assert len(changes) == 1
    latest = sorted({str(d)[:10] for d in history.as_of_date})[-2:]
    assert [str(changes.previous_as_of_date[0])[:10], str(changes.as_of_date[0])[:10]] == latest
    # every public table read from clv_predictions is left at the last as-of date with it
    for table in ("clv_predictions", "clv_segment_summary", "clv_total_summary"):
        built = project.query(f"select distinct as_of_date from {table}")
        assert [str(d)[:10] for d in built.as_of_date] == ["2023-11-30"], table
    exported = pq.read_table(project.vars["clv_export_path"], columns=["as_of_date"])
    exported = exported.column(0).unique()
    assert [str(d)[:10] for d in exported.to_pylist()] == ["2023-11-30"]
    # the source was parsed once, before the first date: the last date's build did not
    built = json.loads((project.workdir / "target" / "run_results.json").read_text())
    names = {result["unique_id"] for result in built["results"]}
    assert "model.clv.clv_predictions" in names
    assert "model.clv.int_clv__transactions_checked" not in names
    rows = project.query("select count(*) as n from clv_predictions_history").n[0]
    backfill.backfill(date(2023, 11, 30), date(2023, 11, 30), "month", project.vars,
                      _common(project))
    assert project.query("select count(*) as n from clv_predictions_history").n[0] == rows
    # a backfill that ends before the history's latest date adds its dates to the history and
    # leaves the published tables at the latest date, rebuilt with the model of its run
    history = project.query("select * from clv_predictions_history "
                            "where as_of_date = date '2023-09-30' order by customer_id")
    with duckdb.connect(str(project.database)) as connection:
        connection.execute("delete from clv_predictions_history "
                           "where as_of_date = date '2023-09-30'")
    capsys.readouterr()
    backfill.backfill(date(2023, 9, 30), date(2023, 9, 30), "month", project.vars,
                      _common(project))
    out = capsys.readouterr().out
    assert "clv-backfill: 1 as-of date, then the history's latest, 2023-11-30, scored" in out
    assert "as of 2023-11-30, the history's latest date: clv_predictions" in out
    assert "clv_predictions_are_of_the_latest_as_of_date" not in out
    changes = project.query("select distinct previous_as_of_date, as_of_date "
                            "from clv_prediction_changes")
    assert [(str(a)[:10], str(b)[:10]) for a, b in changes.itertuples(index=False)] == [
        ("2023-10-31", "2023-11-30")]
    for table in ("clv_predictions", "clv_segment_summary", "clv_total_summary"):
        built = project.query(f"select distinct as_of_date from {table}")
        assert [str(d)[:10] for d in built.as_of_date] == ["2023-11-30"], table
    assert project.query("select count(*) as n from clv_predictions_history").n[0] == rows
    again = project.query("select * from clv_predictions_history "
                          "where as_of_date = date '2023-09-30' order by customer_id")
    assert again.predicted_clv.tolist() == history.predicted_clv.tolist()


@pytest.mark.slow
def test_a_sql_engine_backfill_saves_every_dates_scoring_run(project, monkeypatch):
    """With the compiled query (PostgreSQL's default) the scoring run is saved by
    int_clv__scoring_run, which clv_predictions now follows: a backfill's earlier dates, which
    build only what the history needs, have their runs too, so predict() and the compiled
    query reproduce their rows."""
    from pathlib import Path

    from clv.pipeline import scoring

    monkeypatch.setenv("CLV_DUCKDB_PATH", str(project.database))
    run_vars = {**project.vars, "clv_scoring_engine": "sql", "clv_retrain": "never"}
    backfill.backfill(date(2023, 5, 31), date(2023, 6, 30), "month", run_vars, _common(project))
    history = project.query("select distinct model_version from clv_predictions_history "
                            "where as_of_date = date '2023-05-31'")
    path = scoring.find_run(Path(project.vars["clv_model_dir"]), history.model_version[0],
                            "2023-05-31")
    assert scoring.ScoringRun.load(path).scoring_engine == "sql"


@pytest.mark.slow
@pytest.mark.parametrize(("start", "end", "problem"), [
    ("2020-06-30", "2022-06-30", ("before the first usable transaction .*start on or after "
                                  "202[12]-[0-9-]+ ")),
    ("2021-03-31", "2022-06-30", ("shorter than the sequence window .*start on or after "
                                  "202[12]-[0-9-]+$")),
    ("2021-03-31", "2021-06-30", ("shorter than the sequence window .*no date up to --end "
                                  "2021-06-30 .*lower clv_sequence_periods")),
])
def test_backfill_refuses_dates_without_enough_history(project, monkeypatch, start, end,
                                                       problem):
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(project.database))
    rows = project.query("select count(*) as n from clv_predictions_history").n[0]
    with pytest.raises(backfill.BackfillError, match=rf"--start .*{problem}"):
        backfill.backfill(date.fromisoformat(start), date.fromisoformat(end), "month",
                          project.vars, _common(project))
    assert project.query("select count(*) as n from clv_predictions_history").n[0] == rows
    # the check built nothing at another as-of date than clv_predictions'
    assert _scoring_cutoffs(project) == _predictions_dates(project)


@pytest.mark.slow
def test_backfill_refuses_an_end_after_today_in_the_settings_time_zone(project, monkeypatch):
    """The end is checked against today in the settings' clv_time_zone (read through dbt, so
    from --vars or the project's vars), after the parse and the settings: nothing is scored."""
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(project.database))
    rows = project.query("select count(*) as n from clv_predictions_history").n[0]
    end = datetime.now(UTC).date() + timedelta(days=2)
    with pytest.raises(backfill.BackfillError, match=rf"^--end {end} is after today .* in UTC\)"):
        backfill.backfill(date(2023, 7, 31), end, "month", project.vars, _common(project))
    assert project.query("select count(*) as n from clv_predictions_history").n[0] == rows
    assert _scoring_cutoffs(project) == _predictions_dates(project)


@pytest.mark.slow
def test_backfill_into_a_new_database_says_a_date_past_the_data_warned(project, monkeypatch,
                                                                        tmp_path, capsys):
    """A warehouse that never had a build (the same data and model directory: a dev copy
    beside prod) is backfilled: the check loads the customers' and events' inputs too. A date
    the data does not reach is scored, as a build scores it, and its line says it warned."""
    from conftest import PROJECT_DIR

    monkeypatch.setenv("CLV_DUCKDB_PATH", str(tmp_path / "fresh.duckdb"))
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "logs"))
    assert backfill.main(["--start", "2024-06-30", "--end", "2024-06-30", "--vars",
                          json.dumps(project.vars), "--project-dir", str(PROJECT_DIR),
                          "--profiles-dir", str(PROJECT_DIR)]) == 0
    lines = capsys.readouterr().out.splitlines()
    scored = [line for line in lines if line.startswith("clv-backfill: 1/1 as of 2024-06-30")]
    assert len(scored) == 1 and scored[0].endswith(
        "; warned: clv_as_of_date_follows_the_data (1 row)"), lines


def _scoring_cutoffs(project) -> list[str]:
    cutoffs = project.query("select cutoff_date from int_clv__cutoffs "
                            "where cutoff_role = 'scoring'")
    return [str(d)[:10] for d in cutoffs.cutoff_date]


def _predictions_dates(project) -> list[str]:
    return [str(d)[:10] for d in
            project.query("select distinct as_of_date from clv_predictions").as_of_date]


@pytest.mark.slow
def test_backfill_command_from_another_directory_names_the_range(project, monkeypatch, tmp_path,
                                                                 capsys):
    """Run from elsewhere, clv-backfill finds the project's profiles.yml as clv build does; a
    range wholly before the data is refused by --start, in one line, not by dbt's check of
    clv_as_of_date."""
    from conftest import PROJECT_DIR

    monkeypatch.setenv("CLV_DUCKDB_PATH", str(project.database))
    monkeypatch.setenv("DBT_TARGET_PATH", str(project.workdir / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(project.workdir / "logs"))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert backfill.main(["--start", "2020-01-31", "--end", "2020-06-30", "--project-dir",
                          str(PROJECT_DIR), "--vars", json.dumps(project.vars)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("clv-backfill: --start 2020-01-31 is before the first usable "
                            "transaction"), error
    assert "\n" not in error
    assert _scoring_cutoffs(project) == _predictions_dates(project)


def test_backfill_dates_and_option_errors():
    # from a month's last day, every month's last day; else the end's day, shortened to fit
    assert backfill.as_of_dates(date(2023, 1, 15), date(2023, 4, 30), "month") == [
        date(2023, 1, 31), date(2023, 2, 28), date(2023, 3, 31), date(2023, 4, 30)]
    assert backfill.as_of_dates(date(2023, 1, 15), date(2023, 4, 29), "month") == [
        date(2023, 1, 29), date(2023, 2, 28), date(2023, 3, 29), date(2023, 4, 29)]
    assert backfill.as_of_dates(date(2023, 11, 1), date(2024, 2, 29), "month") == [
        date(2023, 11, 30), date(2023, 12, 31), date(2024, 1, 31), date(2024, 2, 29)]
    monthly = backfill.as_of_dates(date(2022, 12, 31), date(2023, 12, 31), "month")
    assert len(monthly) == 13
    assert monthly[1] == date(2023, 1, 31) and monthly[2] == date(2023, 2, 28)
    assert backfill.as_of_dates(date(2023, 1, 1), date(2023, 1, 15), "week") == [
        date(2023, 1, 1), date(2023, 1, 8), date(2023, 1, 15)]
    assert backfill.as_of_dates(date(2023, 1, 1), date(2023, 1, 3), "day") == [
        date(2023, 1, 1), date(2023, 1, 2), date(2023, 1, 3)]
    assert len(backfill.as_of_dates(date(2023, 1, 1), date(2023, 1, 29), "14d")) == 3
    with pytest.raises(backfill.BackfillError, match=r"--start .* is after --end"):
        backfill.as_of_dates(date(2023, 2, 1), date(2023, 1, 1), "month")
    for every in ["fortnight", "0d", "d", "\u00b2d", "\u0661\u0664d", " 14d", "-3d"]:
        with pytest.raises(backfill.BackfillError, match="--every"):
            backfill.as_of_dates(date(2023, 1, 1), date(2023, 2, 1), every)
    # the year 1 and steps beyond any range end the dates instead of overflowing
    assert backfill.as_of_dates(date.min, date(2023, 12, 31), "month")[0] == date(1, 1, 31)
    assert backfill.as_of_dates(date.min, date(1, 1, 3), "day") == [
        date(1, 1, 1), date(1, 1, 2), date(1, 1, 3)]
    assert backfill.as_of_dates(date.min, date(2023, 12, 31), "1000000000d") == [
        date(2023, 12, 31)]
    with pytest.raises(backfill.BackfillError, match=(r"^--end 2026-01-02 is after today "
                                                      r"\(2026-01-01 in Pacific/Kiritimati\)")):
        backfill.check_end(date(2026, 1, 2), "Pacific/Kiritimati", today=date(2026, 1, 1))
    backfill.check_end(date(2026, 1, 1), "UTC", today=date(2026, 1, 1))


def test_backfill_history_errors_name_a_start_that_works():
    """Data from 2023-01-01 and a sequence window of 360 days: 2023-12-26 is the first as-of
    date with that much history, and the refusals of earlier starts name it (or, when --end is
    before it, the window that would fit)."""
    first, window, end = date(2023, 1, 1), 360, date(2024, 6, 30)
    for start in [date(2022, 6, 30), date(2023, 1, 1), date(2023, 12, 25)]:
        with pytest.raises(backfill.BackfillError, match=r"start on or after 2023-12-26"):
            backfill.check_history(start, start, end, first, window)
    backfill.check_history(date(2023, 12, 26), date(2023, 12, 26), end, first, window)
    with pytest.raises(backfill.BackfillError,
                       match=(r"^--start 2022-06-30 is before the first usable transaction "
                              r"\(2023-01-01\): .*no date up to --end 2023-06-30 .* window of "
                              r"at most 181 days")):
        backfill.check_history(date(2022, 6, 30), date(2022, 6, 30), date(2023, 6, 30), first,
                               window)
    with pytest.raises(backfill.BackfillError,
                       match=r"^--start 2023-03-01 has 60 days of history, .* at most 60 days"):
        backfill.check_history(date(2023, 3, 1), date(2023, 3, 1), date(2023, 6, 30), first,
                               window)
    with pytest.raises(backfill.BackfillError,
                       match=r"before the first usable transaction .*the whole range is before"):
        backfill.check_history(date(2022, 1, 31), date(2022, 1, 31), date(2022, 6, 30), first,
                               window)
    with pytest.raises(backfill.BackfillError, match="no transaction is usable"):
        backfill.check_history(date(2023, 3, 1), date(2023, 3, 1), end, None, window)


@pytest.mark.parametrize(("latest", "builds"), [
    (None, ["2023-05-31", "2023-06-30"]),  # no history yet
    (date(2023, 6, 30), ["2023-05-31", "2023-06-30"]),  # --end is the latest
    (date(2024, 1, 2), ["2023-05-31", "2023-06-30", "2024-01-02"]),  # daily builds after it
    (date(2031, 1, 1), ["2023-05-31", "2023-06-30"]),  # a clock error: not scored again
])
def test_backfill_leaves_the_published_tables_at_the_historys_latest_date(
        monkeypatch, capsys, latest, builds):
    """Which dates a backfill builds, and which one builds everything (the published tables):
    the last, at --end or at the history's latest date when that is later and not after
    today."""
    from types import SimpleNamespace

    from clv import build

    built = []
    monkeypatch.setattr(backfill, "_settings_check", lambda *args, **kwargs: "UTC")
    monkeypatch.setattr(backfill, "history_latest", lambda *args: latest)
    monkeypatch.setattr(backfill, "_invoke", lambda args: SimpleNamespace(result=None))
    monkeypatch.setattr(build, "build_with_args", lambda argv, models, exclude, manifest: (
        built.append((json.loads(argv[argv.index("--vars") + 1])["clv_as_of_date"], models))
        or []))
    dates = backfill.backfill(date(2023, 5, 31), date(2023, 6, 30), "month", {},
                              today=date(2026, 12, 6))
    assert [str(d) for d in dates] == ["2023-05-31", "2023-06-30"]
    assert [day for day, _ in built] == builds
    assert [models is None for _, models in built] == [False] * (len(builds) - 1) + [True]
    if latest == date(2031, 1, 1):
        assert "2031-01-01, is after today" in capsys.readouterr().out


def test_backfill_on_spark_starts_the_session_before_dbt_does(monkeypatch, tmp_path):
    """dbt-spark's own session starts Python workers with the first `python3` on PATH, which
    lacks the package's dependencies (ModuleNotFoundError: pandas, from the scoring step): the
    backfill starts the session as clv build does, before its first dbt command."""
    from types import SimpleNamespace

    from clv import build

    calls = []
    monkeypatch.setattr(build, "profile_of", lambda *args, **kwargs: SimpleNamespace(
        credentials=SimpleNamespace(type="spark")))
    monkeypatch.setattr(build, "_open_warehouse", lambda credentials: calls.append("session"))
    monkeypatch.setattr(backfill, "backfill",
                        lambda *args, **kwargs: calls.append("dbt") or [date(2023, 1, 31)])
    assert backfill.main(["--start", "2023-01-31", "--end", "2023-01-31", "--target", "spark",
                          "--project-dir", str(tmp_path)]) == 0
    assert calls == ["session", "dbt"]


def test_backfill_command_reports_option_errors_in_one_line(capsys):
    assert backfill.main(["--start", "2023-02-30", "--end", "2023-03-31"]) == 2
    assert capsys.readouterr().err.strip() == (
        "clv-backfill: --start: expected a date as YYYY-MM-DD, got '2023-02-30'")
    assert backfill.main(["--start", "2023-02-28"]) == 2
    assert capsys.readouterr().err.strip() == (
        "clv-backfill: name the range with --start and --end (or use --previous)")
    assert backfill.main(["--previous", "--end", "2023-03-31"]) == 2
    assert capsys.readouterr().err.strip() == (
        "clv-backfill: --previous names its date itself: leave out --start and --end")


@pytest.mark.parametrize(("value", "message"), [
    ("[]", "--vars: expected a mapping, got '[]'"),
    ("{clv_seed: [", "--vars is not YAML: "),
])
def test_backfill_command_reads_vars_as_clv_build_does(capsys, value, message):
    assert backfill.main(["--start", "2023-01-31", "--end", "2023-03-31", "--vars", value]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"clv-backfill: {message}")


def test_previous_stops_before_republishing_when_another_model_scored(monkeypatch):
    """Vars that fit another saved model than the latest date's (other extra features, which
    the registry's settings do not show): the date before is scored by it, and --previous
    stops there, before the latest date is built again with that model."""
    from types import SimpleNamespace

    latest, previous = date(2023, 11, 30), date(2023, 10, 31)
    runs = {latest: "new", previous: "old"}
    built: list[str] = []

    def build_with_args(args, models, exclude, manifest):
        day = json.loads(args[args.index("--vars") + 1])["clv_as_of_date"]
        built.append(day)
        if day == previous.isoformat():
            runs[previous] = "other"  # what clv_retrain: never chose for these vars
        return []

    monkeypatch.setattr(backfill, "_invoke", lambda args: SimpleNamespace(result=None))
    monkeypatch.setattr(backfill, "_latest_runs", lambda common, run_vars: sorted(
        runs.items(), reverse=True))
    monkeypatch.setattr(backfill, "_settings_differ", lambda common, run_vars, version: [])
    monkeypatch.setattr(backfill, "_settings_check", lambda *args: "UTC")
    monkeypatch.setattr(backfill, "history_latest", lambda common, run_vars: latest)
    monkeypatch.setattr(backfill.build, "build_with_args", build_with_args)
    with pytest.raises(backfill.BackfillError, match=(
            r"--previous: 2023-10-31 was scored by model other, not by new: .*the latest date "
            r"was left as it was")):
        backfill.rescore_previous({}, [], today=date(2024, 1, 1))
    assert built == ["2023-10-31"]
    # with the model that scored the latest date, it goes on to republish that date
    runs[previous] = "old"
    built.clear()

    def by_the_new_model(args, models, exclude, manifest):
        day = json.loads(args[args.index("--vars") + 1])["clv_as_of_date"]
        built.append(day)
        runs[date.fromisoformat(day)] = "new"
        return []

    monkeypatch.setattr(backfill.build, "build_with_args", by_the_new_model)
    assert backfill.rescore_previous({}, [], today=date(2024, 1, 1)) == [previous]
    assert built == ["2023-10-31", "2023-11-30"]
