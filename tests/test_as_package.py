"""The project installed as a dbt package in another project (integration_tests/): built on
that project's own data (a ref in var clv_transactions), its outputs for hand-made customers
equal the expected values the integration project's dbt tests compare them with, and none of
the package's sample seeds is built into that project's warehouse."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner

from clv.pipeline import backfill

PROJECT_DIR = Path(__file__).resolve().parent.parent
INTEGRATION_PROJECT = "clv_integration_tests"
# The integration project's tests: actual against expected (seeds/_seeds.yml) and the rules
# every prediction follows (tests/*.sql).
EXPECTED_TESTS = {
    "expected_data_quality_match_clv_data_quality",
    "expected_customer_features_match_clv_customer_features",
    "expected_segments_match_clv_predictions",
    "assert_each_customer_predicted_once",
    "assert_segments_follow_the_rules",
}
SAMPLE_SEEDS = {"clv_sample_transactions", "clv_sample_customers", "clv_sample_events"}
GUEST_SEEDS = {"generated_transactions", "known_transactions", "expected_data_quality",
               "expected_customer_features", "expected_segments"}
# seeds/generated_transactions.csv has 300 customers, known_transactions.csv 12 with a usable row.
SCORED_CUSTOMERS = 312


def _invoke(args: list[str]):
    result = dbtRunner().invoke(args)
    if result.exception is not None:
        raise result.exception
    return result


def _failures(database: Path, results) -> dict[str, object]:
    """Each node that failed, with dbt's message; a failed test of the integration project
    with the rows its query returns (key, missing side, differing columns)."""
    failed = [r for r in results if r.status in ("error", "fail")]
    if not failed:
        return {}
    with duckdb.connect(str(database)) as connection:
        return {r.node.name: connection.sql(r.node.compiled_code).fetchall()
                if r.status == "fail" and r.node.package_name == INTEGRATION_PROJECT
                else r.message for r in failed}


def _guest_project(tmp_path: Path, monkeypatch) -> tuple[Path, list[str]]:
    """A copy of integration_tests/ with this checkout installed (dbt deps) and a database in
    tmp_path; returns the database and the arguments every dbt command needs."""
    root = tmp_path / "root_project"
    shutil.copytree(PROJECT_DIR / "integration_tests", root,
                    ignore=shutil.ignore_patterns("target", "dbt_packages", "logs", "*.duckdb"))
    # The copy sits elsewhere, so point its local package at this checkout.
    (root / "packages.yml").write_text(f"packages:\n  - local: {PROJECT_DIR}\n")
    database = tmp_path / "root.duckdb"
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(database))
    monkeypatch.chdir(root)  # clv's output paths (export, report) are relative to where dbt runs
    common = ["--project-dir", str(root), "--profiles-dir", str(root), "--quiet"]
    _invoke(["deps", *common])
    return database, common


@pytest.mark.slow
def test_builds_as_a_dependency_with_the_expected_outputs(tmp_path, monkeypatch, capsys):
    database, common = _guest_project(tmp_path, monkeypatch)
    build = _invoke(["build", "--vars", f"{{clv_model_dir: {tmp_path / 'm'}}}", *common])

    results = build.result.results
    assert _failures(database, results) == {}
    ran = {r.node.name for r in results
           if r.node.resource_type == "test" and r.node.package_name == INTEGRATION_PROJECT}
    assert ran == EXPECTED_TESTS
    assert build.success
    seeds = {r.node.name for r in results if r.node.resource_type == "seed"}
    assert seeds == GUEST_SEEDS
    with duckdb.connect(str(database)) as connection:
        sample_tables = connection.sql(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_name like 'clv_sample%'").fetchall()
        summarized = connection.sql("select sum(customers) from customer_value_summary").fetchall()
        predicted = connection.sql("select count(*) from clv_predictions").fetchall()
    assert sample_tables == []
    assert summarized[0][0] == predicted[0][0] == SCORED_CUSTOMERS

    # the backfill command, from the guest project (the settings it checks are clv's)
    assert backfill.main(["--start", "2023-11-30", "--end", "2023-12-31", "--every", "month",
                          "--project-dir", str(common[1]), "--profiles-dir", str(common[3]),
                          "--vars", f"{{clv_model_dir: {tmp_path / 'm'}}}"]) == 0
    with duckdb.connect(str(database)) as connection:
        dates = connection.sql("select distinct as_of_date from clv_predictions_history "
                               "order by 1").fetchall()
    assert [d.isoformat() for (d,) in dates] == ["2023-11-30", "2023-12-31"]
    # --previous reads the history's newest runs with an inline query of clv's macros
    assert backfill.main(["--previous", "--project-dir", str(common[1]),
                          "--profiles-dir", str(common[3]),
                          "--vars", f"{{clv_model_dir: {tmp_path / 'm'}}}"]) == 0
    assert "nothing to do" in capsys.readouterr().out


@pytest.mark.slow
def test_a_guest_without_transactions_is_told_to_set_them(tmp_path, monkeypatch):
    _, common = _guest_project(tmp_path, monkeypatch)
    run = _invoke(["run", "--select", "stg_clv__transactions",
                   "--vars", "{clv_transactions: ''}", *common])
    assert not run.success
    [result] = [r for r in run.result.results if r.node.name == "stg_clv__transactions"]
    assert "point clv_transactions at your transactions" in result.message
    assert "clv_load_sample: true" in result.message


@pytest.mark.slow
@pytest.mark.parametrize(("vars", "enabled"), [
    ({}, True),  # the root project on its sample
    ({"clv_transactions": "analytics.orders"}, False),  # the root project on the user's data
    ({"clv_transactions": "analytics.orders", "clv_load_sample": True}, True),
    ({"clv_load_sample": False}, False),
], ids=["sample", "user_data", "user_data_and_load_sample", "load_sample_false"])
def test_sample_seeds_are_built_only_for_the_sample(dbt_project, vars, enabled):
    listed = dbt_project.run("ls", vars=vars, extra=["--resource-type", "seed", "--output", "name"])
    assert set(listed.result) == (SAMPLE_SEEDS if enabled else set())


@pytest.mark.slow
def test_marts_in_another_database_are_where_the_registry_reads_them(tmp_path, monkeypatch):
    """With `+database` on clv's models, the training step must read the previous
    clv_predictions (to prefer and keep its model) where dbt writes it, not in the target's
    database."""

    _, common = _guest_project(tmp_path, monkeypatch)
    root = Path.cwd()
    profile = root / "profiles.yml"
    profile.write_text(profile.read_text().rstrip("\n") + "\n      attach:\n"
                       f"        - path: {tmp_path / 'marts.duckdb'}\n          alias: marts\n")
    project = root / "dbt_project.yml"
    project.write_text(project.read_text() + "\nmodels:\n  clv:\n    +database: marts\n")
    _invoke(["compile", "--select", "clv_run_settings", *common])
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    written = {node["name"]: node["relation_name"].replace('"', "")
               for node in manifest["nodes"].values()
               if node["name"] in ("clv_predictions", "clv_predictions_history")}
    compiled = next((root / "target" / "compiled").rglob("clv_run_settings.sql")).read_text()
    read = dict(reversed(pair) for pair in re.findall(
        r"'([^']*)' as (predictions_relation|history_relation)", compiled))
    assert written == {"clv_predictions": "marts.main.clv_predictions",
                       "clv_predictions_history": "marts.main.clv_predictions_history"}
    assert read == {"predictions_relation": written["clv_predictions"],
                    "history_relation": written["clv_predictions_history"]}


@pytest.mark.slow
@pytest.mark.parametrize(("flags", "transactions", "message"), [
    (["--empty"], None, "clv's models do not run with dbt's --empty or --sample"),
    ([], "{{ ref('clv_integration_tests', 'ephemeral_orders') }}",
     "Invalid value for var 'clv_transactions': it refers to an ephemeral model"),
], ids=["empty_run", "ephemeral_model"])
def test_an_input_that_cannot_be_read_whole_is_named(tmp_path, monkeypatch, flags, transactions,
                                                      message):
    """dbt renders a ref to an ephemeral model as a CTE name, and any ref under --empty as an
    empty subquery: the error says so instead of a catalog error or 'expected a relation
    name'."""
    _, common = _guest_project(tmp_path, monkeypatch)
    (Path.cwd() / "models" / "ephemeral_orders.sql").write_text(
        "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('transactions') }}\n")
    vars_ = ["--vars", json.dumps({"clv_transactions": transactions})] if transactions else []
    result = dbtRunner().invoke(["compile", "--select", "stg_clv__transactions", *flags,
                                 *vars_, *common])
    assert not result.success
    assert message in str(result.exception or result.result)


@pytest.mark.slow
def test_the_installing_projects_docs_blocks_leave_clvs_descriptions(tmp_path, monkeypatch):
    """dbt resolves doc('<name>') in the root project first: a project with its own
    col_customer_id and segment_rules docs blocks would silently replace clv's column texts,
    which name the package's blocks in full."""
    _, common = _guest_project(tmp_path, monkeypatch)
    root = Path.cwd()
    (root / "models" / "host_docs.md").write_text(
        "{% docs col_customer_id %}HOST: our CRM account number.{% enddocs %}\n"
        "{% docs segment_rules %}HOST: marketing segments.{% enddocs %}\n")
    manifest = _invoke(["parse", *common]).result
    predictions = manifest.nodes["model.clv.clv_predictions"]
    texts = [predictions.columns["customer_id"].description,
             predictions.columns["segment"].description]
    assert all(text and "HOST" not in text for text in texts), texts


@pytest.mark.slow
def test_compile_and_docs_work_before_the_input_is_built(tmp_path, monkeypatch):
    """In a fresh environment (CI, a new clone) the installing project's transactions model
    is not built yet: dbt compile and dbt docs generate of the whole project still work, clv's
    staging compiling as an empty relation and saying why, instead of stopping on columns it
    cannot read. A run still stops on the missing input, naming the var."""
    _, common = _guest_project(tmp_path, monkeypatch)
    root = Path.cwd()
    for command in (["compile"], ["docs", "generate"]):
        assert _invoke([*command, *common]).success, command
    log = (root / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert re.search(r"clv: clv_transactions \('.*transactions.*'\) is not in the warehouse \(not "
                     r"built yet, or misspelled\), so stg_clv__transactions compiles as an empty "
                     r"relation", log)
    staged = next((root / "target" / "compiled").rglob("stg_clv__transactions.sql")).read_text()
    assert "where 1 = 0" in staged
    assert (root / "target" / "catalog.json").exists()
    run = dbtRunner().invoke(["run", "--select", "stg_clv__transactions", *common])
    assert not run.success
    [staging] = [r for r in run.result.results if r.node.name == "stg_clv__transactions"]
    assert "Invalid value for var 'clv_transactions': no table or view" in staging.message


@pytest.mark.slow
def test_a_build_with_empty_stops_at_its_start_on_the_sample(tmp_path, monkeypatch):
    """dbt build --empty renders the sample seed as an empty subquery: the run stops before any
    node, saying the flag is why, instead of clv reporting 'has no rows' for 26,885 rows."""
    from dbt.exceptions import CompilationError

    _, common = _root_copy(tmp_path, monkeypatch)
    with pytest.raises(CompilationError, match=re.escape(
            "clv's models do not run with dbt's --empty, which renders every ref and source as "
            "a subquery of no rows (the selection holds ")) as stopped:
        _invoke(["build", "--empty", *common])
    assert "--exclude package:clv" not in str(stopped.value)  # clv is the root project here
    # staging compiled alone says the same of the sample seed
    result = dbtRunner().invoke(["compile", "--select", "stg_clv__transactions", "--empty",
                                 *common])
    assert ("which renders clv_transactions as '(select * from"
            in str(result.exception or result.result))


@pytest.mark.slow
@pytest.mark.parametrize(("config", "selected", "message"), [
    ("+materialized: table", "clv_predictions_history",
     ("clv: clv_predictions_history is materialized as 'table', not 'incremental': each build "
      "would replace the prediction history")),
    ("+materialized: view", "int_clv__model_registry",
     ("clv: int_clv__model_registry (a Python model) is materialized as 'view': Python models "
      "run as tables only")),
    # (at the top, dbt itself refuses incremental contracted marts; a folder of clv's has none)
    ("clv:\n    2_intermediate:\n      +materialized: incremental", "int_clv__cutoffs",
     "clv: int_clv__cutoffs is materialized as 'incremental': each build would add its rows again"),
], ids=["table", "view", "incremental"])
def test_a_materialization_set_for_every_package_stops_before_it_loses_the_history(
        tmp_path, monkeypatch, config, selected, message):
    """A `+materialized` at the top of the installing project's `models:` applies to clv's
    models too (dbt puts it over clv's own configs): as a table the history would be replaced
    by every build, without a word. The run stops at its start, saying where to set it."""
    from dbt.exceptions import CompilationError

    _, common = _guest_project(tmp_path, monkeypatch)
    project = Path.cwd() / "dbt_project.yml"
    project.write_text(project.read_text() + f"\nmodels:\n  {config}\n")
    with pytest.raises(CompilationError, match=re.escape(message)):
        _invoke(["build", "--select", selected, *common])
    # the installing project's own models still build when clv is left out of the run
    assert _invoke(["build", "--select", "+transactions", *common]).success


def _root_copy(tmp_path: Path, monkeypatch) -> tuple[Path, list[str]]:
    """This project copied as the root project (its dbt files only), a database in tmp_path;
    returns the copy and the arguments every dbt command needs."""
    root = tmp_path / "clv"
    root.mkdir()
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(PROJECT_DIR / name, root / name)
    for name in ("models", "python_models", "macros", "seeds", "data_tests"):
        shutil.copytree(PROJECT_DIR / name, root / name)
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(tmp_path / "clv.duckdb"))
    monkeypatch.chdir(root)
    return root, ["--project-dir", str(root), "--profiles-dir", str(root), "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize(("where", "message"), [
    ("", None),
    ("where false", "No usable transactions: clv_transactions"),
], ids=["rows", "no_rows"])
def test_a_ref_to_a_model_of_the_root_project_builds_with_its_unit_tests(tmp_path, monkeypatch,
                                                                         where, message):
    """A model the user adds to this project (a join of orders and payments, say) as
    clv_transactions: the unit tests that set vars of their own build too (dbt gives them no
    input for that ref, so no model they test may read the var), and a model with no usable
    row stops at the cutoffs with the line that names the input."""
    root, common = _root_copy(tmp_path, monkeypatch)
    (root / "models" / "my_orders.sql").write_text(
        f"select * from read_csv('{PROJECT_DIR / 'seeds' / 'clv_sample_transactions.csv'}', "
        f"all_varchar = true) {where}\n")
    result = dbtRunner().invoke([
        "build", "--select", "+int_clv__cutoffs", "--indirect-selection", "cautious", "--vars",
        json.dumps({"clv_transactions": "{{ ref('clv', 'my_orders') }}",
                    "clv_model_dir": str(tmp_path / "models")}), *common])
    unit_tests = [r for r in result.result if r.node.resource_type == "unit_test"]
    assert {r.node.name for r in unit_tests} >= {"as_of_date_from_the_var"}
    assert all(str(r.status) == "pass" for r in unit_tests), [
        (r.node.name, str(r.message)) for r in unit_tests if str(r.status) != "pass"]
    if message is None:
        assert result.success
    else:
        failed = {r.node.name: str(r.message) for r in result.result if str(r.status) == "error"}
        assert list(failed) == ["int_clv__cutoffs"], failed
        assert message in failed["int_clv__cutoffs"]


def test_the_lowest_dbt_the_package_accepts_is_the_one_it_is_tested_on():
    """The lowest dbt-core a project that installs clv as a package may run (its
    `require-dbt-version`) is the lowest the Python package pins, which the suite runs on. On
    dbt-core 1.10, which the package once accepted, its unit tests failed to compile (1.10
    renders a model for its unit tests without the project's macros) and every model after
    int_clv__cutoffs was skipped."""
    import tomllib

    pinned = next(requirement for requirement in tomllib.loads(
        (PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
        if requirement.startswith("dbt-core"))
    lowest = re.search(r">=\s*([\d.]+)", pinned).group(1)
    for project in (PROJECT_DIR / "dbt_project.yml",
                    PROJECT_DIR / "integration_tests" / "dbt_project.yml"):
        text = project.read_text(encoding="utf-8")
        required = re.search(r'require-dbt-version: \[">=([\d.]+)"', text).group(1)
        assert tuple(map(int, required.split("."))) == tuple(
            map(int, (lowest + ".0.0").split(".")[:3])), project
