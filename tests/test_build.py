"""clv build: stage planning, and one clear line for every set-up mistake (fast; no engine)."""

from __future__ import annotations

import os
import socket
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from clv import build, cli

PROJECT_DIR = Path(__file__).resolve().parent.parent


def _node(name: str, language: str, *parents: str) -> build.Node:
    return build.Node(f"model.clv.{name}", name, language, "s", name, Path(f"{name}.py"),
                      tuple(f"model.clv.{p}" for p in parents))


def test_stages_alternate_sql_and_python_in_dependency_order():
    nodes = [
        _node("export", "python", "predictions"),
        _node("predictions", "sql", "scores", "features"),
        _node("scores", "python", "registry", "features"),
        _node("registry", "python", "examples"),
        _node("examples", "sql", "features"),
        _node("features", "sql", "staging"),
        _node("staging", "sql"),
        _node("history", "sql", "predictions"),
    ]
    plan = [(language, [node.name for node in group]) for language, group in build.stages(nodes)]
    assert [language for language, _ in plan] == ["sql", "python", "sql", "python"]
    assert set(plan[0][1]) == {"staging", "features", "examples"}
    assert plan[1][1] == ["registry", "scores"]  # parents first within a group
    assert set(plan[2][1]) == {"predictions", "history"}
    assert plan[3][1] == ["export"]


def _staged_on(monkeypatch, runner: type, nodes: list) -> list[str]:
    """A staged (PostgreSQL) build of ``nodes`` with ``runner`` for dbt and no warehouse; the
    Python steps it runs are appended to the list returned."""
    ran: list[str] = []
    monkeypatch.setattr(build, "Runner", runner)
    monkeypatch.setattr(build, "profile_of", lambda *args: SimpleNamespace(
        credentials=SimpleNamespace(type="postgres")))
    monkeypatch.setattr(build, "_open_warehouse", lambda credentials: SimpleNamespace(
        close=lambda: None, relation=lambda relation: relation))
    monkeypatch.setattr(build, "_nodes", lambda manifest, project_dir: nodes)
    monkeypatch.setattr(build, "run_python_model", lambda node, *args: ran.append(node.name) or 0)
    return ran


def test_staged_builds_leave_out_an_excluded_data_test(monkeypatch):
    """On PostgreSQL and Spark each stage selects its nodes with --indirect-selection
    buildable, which takes a data test whose parents the stage builds: a test named in
    ``exclude`` (a backfill's earlier dates leave out the one that warns of their own date) is
    excluded from every stage's dbt command, as `dbt build --exclude` does on DuckDB."""
    commands = []

    class Recording:
        def __init__(self, common, run_vars, manifest=None):
            self.manifest, self.warnings = manifest, []

        def invoke(self, command, quiet=False):
            commands.append(list(command))

    _staged_on(monkeypatch, Recording, [
        _node("staging", "sql"), _node("registry", "python", "staging"),
        _node("predictions", "sql", "registry")])
    build.build("postgres", {}, PROJECT_DIR, PROJECT_DIR, manifest=SimpleNamespace(nodes={}),
                exclude=["staging", "a_warning_test"])
    dbt_commands = [c for c in commands if c[0] in ("build", "test")]
    assert dbt_commands and all(c[c.index("--exclude") + 1:] == ["a_warning_test"]
                                for c in dbt_commands), dbt_commands
    assert not any("staging" in c for c in dbt_commands)


def test_every_dbt_command_of_a_staged_build_reads_the_builds_start(monkeypatch):
    """A build in stages runs several dbt commands: each reads the build's start as today
    (the macro clv_today), not its own, so one that runs past midnight holds one date. A value
    left in the environment is not the build's start; it is put back after."""
    seen = []

    class Recording:
        def __init__(self, common, run_vars, manifest=None):
            self.manifest, self.warnings = manifest, []

        def invoke(self, command, quiet=False):
            seen.append(os.environ.get(build.STARTED_AT))

    nodes = [_node("staging", "sql"), _node("registry", "python", "staging"),
             _node("predictions", "sql", "registry")]
    _staged_on(monkeypatch, Recording, nodes)
    monkeypatch.delenv(build.STARTED_AT, raising=False)
    build.build("postgres", {}, PROJECT_DIR, PROJECT_DIR, manifest=SimpleNamespace(nodes={}))
    assert len(seen) >= 3 and len(set(seen)) == 1 and seen[0], seen
    assert datetime.fromisoformat(seen[0]).tzinfo is not None
    assert build.STARTED_AT not in os.environ
    first = seen[0]
    seen.clear()
    monkeypatch.setenv(build.STARTED_AT, "2023-07-01T23:55:00+00:00")
    build.build("postgres", {}, PROJECT_DIR, PROJECT_DIR, manifest=SimpleNamespace(nodes={}))
    assert len(set(seen)) == 1 and seen[0] >= first, seen
    assert os.environ[build.STARTED_AT] == "2023-07-01T23:55:00+00:00"


def test_a_spark_target_other_than_a_session_is_refused_as_not_supported():
    """Only dbt-spark's session method runs the stages here; the README says Databricks is not
    supported yet, and the refusal says so instead of sending the user to dbt-databricks."""
    with pytest.raises(build.BuildError, match=r"method: session .*the thrift, http and odbc "
                                               r"methods and Databricks are not supported yet"):
        build._open_warehouse(SimpleNamespace(type="spark", method="thrift"))


def test_stages_refuse_a_cycle():
    with pytest.raises(build.BuildError, match="cycle: a, b"):
        build.stages([_node("a", "python", "b"), _node("b", "python", "a")])


def test_ancestors_keep_what_a_model_needs():
    nodes = [_node("a", "sql"), _node("b", "python", "a"), _node("c", "sql", "b"),
             _node("d", "sql", "a")]
    assert [n.name for n in build._ancestors(nodes, ["c"])] == ["a", "b", "c"]
    with pytest.raises(build.BuildError, match="no model named zzz"):
        build._ancestors(nodes, ["zzz"])


def test_named_models_load_only_the_seeds_they_read_and_the_project_the_enabled_ones():
    def manifest_node(name: str, *parents: str) -> SimpleNamespace:
        return SimpleNamespace(name=name, depends_on=SimpleNamespace(nodes=list(parents)))

    manifest = SimpleNamespace(nodes={
        "model.clv.a": manifest_node("a", "seed.clv.sample"),
        "model.clv.b": manifest_node("b", "model.clv.a"),
        "model.clv.c": manifest_node("c", "seed.clv.other"),
        "seed.clv.sample": manifest_node("sample"),
        "seed.clv.other": manifest_node("other"),
    })
    nodes = [_node("a", "sql"), _node("b", "sql", "a"), _node("c", "sql")]
    assert build._seeds_read(manifest, build._ancestors(nodes, ["b"])) == ["sample"]
    assert build._seeds_read(manifest, [nodes[1]]) == []
    # the whole project: every enabled seed, by name; none when they are disabled (a selection
    # that matches no enabled node makes dbt warn)
    assert build._seeds_read(manifest) == ["other", "sample"]
    models_only = SimpleNamespace(nodes={name: node for name, node in manifest.nodes.items()
                                         if name.startswith("model.")})
    assert build._seeds_read(models_only) == []


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_unknown_target_names_the_targets(capsys):
    code = build.main(["--target", "nope", "--project-dir", str(PROJECT_DIR),
                       "--profiles-dir", str(PROJECT_DIR)])
    assert code == 1
    assert _one_error_line(capsys) == ("clv build: no target 'nope' in profiles.yml; its "
                                       "targets are: duckdb, postgres, spark")


@pytest.mark.parametrize("how", ["-t", "DBT_TARGET", "DBT_ENGINE_TARGET"])
def test_the_target_is_read_as_dbt_reads_it(capsys, monkeypatch, how):
    """``-t``, ``DBT_ENGINE_TARGET`` (dbt 1.11's name, read first) and ``DBT_TARGET`` choose
    the target for clv build as they do for dbt."""
    args = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    if how == "-t":
        args += ["-t", "nope"]
    elif how == "DBT_TARGET":
        monkeypatch.setenv("DBT_TARGET", "nope")
    else:
        monkeypatch.setenv("DBT_TARGET", "duckdb")
        monkeypatch.setenv("DBT_ENGINE_TARGET", "nope")
    assert build.main(args) == 1
    assert _one_error_line(capsys).startswith("clv build: no target 'nope' in profiles.yml")


def test_profiles_are_looked_for_where_dbt_looks_then_in_the_project(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "profiles.yml").write_text("clv: {}\n")
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.chdir(elsewhere)
    assert build.profiles_dir_of(project, None) == project.resolve()
    (elsewhere / "profiles.yml").write_text("clv: {}\n")
    assert build.profiles_dir_of(project, None) == elsewhere.resolve()
    monkeypatch.setenv("DBT_PROFILES_DIR", str(tmp_path))
    assert build.profiles_dir_of(project, None) == tmp_path.resolve()
    assert build.profiles_dir_of(project, project) == project.resolve()
    monkeypatch.setenv("DBT_ENGINE_PROFILES_DIR", str(elsewhere))  # dbt 1.11's name first
    assert build.profiles_dir_of(project, None) == elsewhere.resolve()
    # ~ is the home directory wherever it stands; a directory that is not there is named
    monkeypatch.setenv("HOME", str(tmp_path))
    assert build.profiles_dir_of(project, Path("~/project")) == project.resolve()
    with pytest.raises(build.BuildError, match=r"the profiles directory '.*missing' does not"):
        build.profiles_dir_of(project, tmp_path / "missing")


def test_each_dbt_command_gets_the_options_it_accepts():
    """A build's --full-refresh goes to the build stages, not to dbt parse or dbt test."""
    args = ["--project-dir", "p", "--full-refresh", "--exclude-resource-type", "seed",
            "unit_test", "--target-path=t", "--quiet"]
    assert build.accepted_options("build", args) == args
    assert build.accepted_options("test", args) == [
        "--project-dir", "p", "--exclude-resource-type", "seed", "unit_test", "--target-path=t",
        "--quiet"]
    assert build.accepted_options("parse", args) == ["--project-dir", "p", "--target-path=t",
                                                     "--quiet"]
    # an option no dbt command knows stays, so dbt refuses it rather than it silently going
    assert build.accepted_options("parse", ["--full-refersh", "--selct", "x"]) == [
        "--full-refersh", "--selct", "x"]


def test_the_profile_is_the_one_dbt_reads(capsys, monkeypatch):
    args = ["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    assert build.main([*args, "--profile", "shop"]) == 1
    assert "shop" in _one_error_line(capsys)
    monkeypatch.setenv("DBT_PROFILE", "other_shop")
    assert build.main(args) == 1
    assert "other_shop" in _one_error_line(capsys)
    monkeypatch.setenv("DBT_ENGINE_PROFILE", "third_shop")
    assert build.main(args) == 1
    assert "third_shop" in _one_error_line(capsys)


@pytest.mark.parametrize(("args", "selection", "rest"), [
    (["--select", "a", "b+", "--threads", "2"], ["--select", "a", "b+"], ["--threads", "2"]),
    (["--full-refresh", "--select=a", "--exclude", "c", "-x"], ["--select=a", "--exclude", "c"],
     ["--full-refresh", "-x"]),
    (["-sa", "--selector", "daily", "--quiet"], ["-sa", "--selector", "daily"], ["--quiet"]),
    (["--select=a", "b", "-m", "@c", "--quiet"], ["--select=a", "b", "-m", "@c"], ["--quiet"]),
    (["--threads", "2"], [], ["--threads", "2"]),
])
def test_selection_is_told_from_the_other_dbt_options(args, selection, rest):
    assert build.split_selection(args) == (selection, rest)


def test_a_staged_build_builds_what_dbt_selects(monkeypatch):
    """On PostgreSQL and Spark, dbt answers the selection (``dbt ls``, -m as --select); the
    stages build exactly the models it lists, by unique id, with no selection of their own left
    in the options."""
    import json

    commands, options = [], []
    listed = ["model.clv.registry", "model.clv.predictions", "test.clv.a_test"]

    class Recording:
        def __init__(self, common, run_vars, manifest=None):
            self.manifest, self.warnings = manifest, []
            options.append(list(common))

        def invoke(self, command, quiet=False):
            commands.append(list(command))
            return SimpleNamespace(result=[json.dumps({
                "unique_id": uid, "resource_type": uid.split(".")[0]}) for uid in listed]
                if command[0] == "ls" else None)

    nodes = [_node("staging", "sql"), _node("registry", "python", "staging"),
             _node("predictions", "sql", "registry"), _node("host_mart", "sql")]
    ran = _staged_on(monkeypatch, Recording, nodes)
    manifest = SimpleNamespace(nodes={node.unique_id: SimpleNamespace(
        name=node.name, depends_on=SimpleNamespace(nodes=[])) for node in nodes})
    build.build("postgres", {}, PROJECT_DIR, PROJECT_DIR,
                ["-m", "package:clv", "--exclude", "staging", "--threads", "1"],
                manifest=manifest)
    assert commands[0] == ["ls", "--output", "json", "--output-keys", "unique_id",
                           "resource_type", "-s", "package:clv", "--exclude", "staging"]
    built = [name for c in commands if c[0] == "build"
             for name in c[2:c.index("--indirect-selection")]]
    assert built == ["predictions"] and ran == ["registry"]
    assert options and all("--select" not in o and "--threads" in o for o in options)


def test_a_selection_that_selects_no_model_says_so(monkeypatch, capsys):
    class Empty:
        def __init__(self, common, run_vars, manifest=None):
            self.manifest, self.warnings = manifest, []

        def invoke(self, command, quiet=False):
            return SimpleNamespace(result=SimpleNamespace(nodes={}) if command[0] == "parse"
                                   else [])

    monkeypatch.setattr(build, "Runner", Empty)
    monkeypatch.setattr(build, "_open_warehouse", lambda credentials: SimpleNamespace(
        close=lambda: None))
    code = build.main(["--target", "postgres", "--select", "nothing_here", "--project-dir",
                       str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)])
    assert code == 1
    assert _one_error_line(capsys) == "clv build: --select nothing_here selects no model"


def test_a_dbt_option_is_not_read_as_an_abbreviation_of_ours():
    args, passed = build._parser().parse_known_args(["--profile", "shop"])
    assert args.profiles_dir is None and passed == ["--profile", "shop"]


def _python_step(tmp_path, monkeypatch, source: str, warehouse=None):
    """``clv build`` made to run one Python model, int_clv__model_registry, of ``source``
    (its result written to ``warehouse``); returns the model's file."""
    path = tmp_path / "int_clv__model_registry.py"
    path.write_text(source)
    node = build.Node("model.clv.int_clv__model_registry", "int_clv__model_registry",
                      "python", "s", "int_clv__model_registry", path, ())
    monkeypatch.setattr(build, "build_with_args", lambda argv: build.run_python_model(
        node, warehouse or SimpleNamespace(session_object=None), {}, {}))
    return path


def test_the_servers_refusal_to_write_a_steps_table_is_one_line(tmp_path, capsys, monkeypatch):
    """The database refuses the result (no permission on the schema, a lost connection): one
    line naming the model and its table, as dbt reports a database error; an error of the
    write's own code keeps its traceback."""
    refusal = type("InsufficientPrivilege", (Exception,), {"__module__": "psycopg2.errors"})

    def refuse(name, data):
        raise refusal("permission denied for schema s\nLINE 1: create table ...")

    _python_step(tmp_path, monkeypatch, "def model(dbt, session):\n    return [1]\n",
                 SimpleNamespace(session_object=None, write_table=refuse))
    assert build.main([]) == 1
    assert _one_error_line(capsys) == ("clv build: int_clv__model_registry failed writing "
                                       "s.int_clv__model_registry: permission denied for schema s")

    def bug(name, data):
        raise TypeError("a bug")

    _python_step(tmp_path, monkeypatch, "def model(dbt, session):\n    return [1]\n",
                 SimpleNamespace(session_object=None, write_table=bug))
    with pytest.raises(TypeError, match="a bug"):
        build.main([])


def test_a_python_steps_error_is_one_line_naming_the_model(tmp_path, capsys, monkeypatch):
    """On the staged engines clv build calls the Python models itself: a step's ValueError
    (what to fix) ends the build with one line, as dbt reports a Python model's error."""
    _python_step(tmp_path, monkeypatch,
                 "def model(dbt, session):\n"
                 "    raise ValueError('clv_training_examples is empty: lower "
                 "clv_horizon_days\\nmore detail')\n")
    assert build.main([]) == 1
    assert _one_error_line(capsys) == ("clv build: int_clv__model_registry failed: "
                                       "clv_training_examples is empty: lower clv_horizon_days")


def test_a_hand_off_error_in_a_python_step_is_one_line(tmp_path, capsys, monkeypatch):
    """The hand-off's errors (a public table to build first, a full disk) end the build in one
    line on the staged engines too."""
    _python_step(tmp_path, monkeypatch,
                 "def model(dbt, session):\n"
                 "    raise RuntimeError('cannot read the public table clv_predictions for the "
                 "BI database copy: build it first')\n")
    assert build.main([]) == 1
    assert _one_error_line(capsys) == (
        "clv build: int_clv__model_registry failed: cannot read the public table "
        "clv_predictions for the BI database copy: build it first")


def test_a_librarys_error_in_a_python_step_keeps_its_traceback(tmp_path, capsys, monkeypatch):
    """A ValueError from inside a library (numpy's shapes, a bug) is not a message to the user:
    it propagates with its traceback instead of being cut to one line."""
    path = _python_step(tmp_path, monkeypatch,
                        "import numpy as np\n\n"
                        "def model(dbt, session):\n"
                        "    return np.zeros(3) + np.zeros(4)\n")
    with pytest.raises(ValueError, match="could not be broadcast") as raised:
        build.main([])
    assert raised.traceback[-1].path == path


def test_an_interrupt_ends_with_the_shells_status(capsys, monkeypatch):
    """dbt catches Ctrl-C and returns it as the invocation's exception: clv build passes it on
    and exits as an interrupted command does (130), as clv-backfill does."""
    from clv.pipeline import backfill

    interrupted = SimpleNamespace(exception=KeyboardInterrupt(), success=False, result=None)
    monkeypatch.setattr("dbt.cli.main.dbtRunner.invoke", lambda self, args: interrupted)
    with pytest.raises(KeyboardInterrupt):
        build.Runner(["--project-dir", str(PROJECT_DIR)], {}).invoke(["parse"])
    monkeypatch.setattr(build, "build_with_args", lambda argv: build.Runner(
        ["--project-dir", str(PROJECT_DIR)], {}).invoke(["parse"]))
    assert build.main([]) == 130
    assert _one_error_line(capsys) == "clv build: interrupted"
    monkeypatch.setattr(backfill, "backfill", lambda *args, **kwargs: backfill._invoke(["parse"]))
    assert backfill.main(["--start", "2023-01-31", "--end", "2023-02-28",
                          "--project-dir", str(PROJECT_DIR)]) == 130
    # a backfill stopped part-way says what it leaves apart
    assert _one_error_line(capsys) == ("clv-backfill: interrupted; the dates reported as scored "
                                       f"are in the history; {backfill.APART}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_postgres_is_one_line_with_the_variables_to_set(capsys, monkeypatch):
    pytest.importorskip("psycopg2")
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(_free_port()))  # nothing listens there
    code = build.main(["--target", "postgres", "--project-dir", str(PROJECT_DIR),
                       "--profiles-dir", str(PROJECT_DIR)])
    assert code == 1
    line = _one_error_line(capsys)
    assert line.startswith("clv build: cannot connect to PostgreSQL at 127.0.0.1:")
    assert "refused" in line.lower() and line.endswith("PGPASSWORD and PGDATABASE")


def test_missing_driver_says_what_to_install(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if pyspark were not installed
    monkeypatch.setattr(build.importlib.util, "find_spec",
                        lambda name: None if name == "pyspark" else object())
    code = build.main(["--target", "spark", "--project-dir", str(PROJECT_DIR),
                       "--profiles-dir", str(PROJECT_DIR)])
    assert code == 1
    assert _one_error_line(capsys) == ("clv build: the spark target needs dbt-spark[session] "
                                       "and pyspark: pip install -e '.[spark]'")


def test_unsupported_adapter_type(tmp_path, capsys):
    (tmp_path / "profiles.yml").write_text(
        "clv:\n  target: other\n  outputs:\n    other:\n      type: duckdb\n"
        "      path: ':memory:'\n", encoding="utf-8")
    assert build._install_hint("sqlserver").startswith(
        "targets of type 'sqlserver' are not supported")
    assert build._install_hint("postgres") == ("the postgres target needs dbt-postgres: "
                                               "pip install -e '.[postgres]'")


@pytest.mark.parametrize("value", ["[1, 2]", "[]", "0", "false"])
def test_bad_vars_are_one_line(capsys, value):
    assert build.main(["--vars", value, "--project-dir", str(PROJECT_DIR)]) == 1
    assert "--vars: expected a mapping" in _one_error_line(capsys)


def test_cli_lists_commands(capsys):
    assert cli.main([]) == 2
    assert "build" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["backfill", "generate"])
def test_a_command_of_clv_names_itself_in_its_usage(capsys, command):
    """`clv backfill --help` reads `usage: clv backfill`, not the other entry point's name."""
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert capsys.readouterr().out.startswith(f"usage: clv {command} ")


@pytest.mark.slow
def test_python_models_read_their_resolved_config(tmp_path):
    """dbt.config.get() in a Python model run by clv build sees the node's config as dbt
    resolved it, vars included (the report's path and currency reach clv_report this way)."""
    runner = build.Runner(["--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                           "--target-path", str(tmp_path / "target"), "--log-path",
                           str(tmp_path / "logs")],
                          {"clv_report_path": "elsewhere/report.html", "clv_currency": "EUR"})
    nodes = {node.name: node for node in build._nodes(runner.invoke(["parse"], quiet=True).result,
                                                      PROJECT_DIR)}
    dbt = build._Dbt(nodes["clv_report"], {}, {})
    assert dbt.config.get("meta", {})["clv_report_path"] == "elsewhere/report.html"
    assert dbt.config.get("meta", {})["clv_currency"] == "EUR"
    assert dbt.config.get("no_such_key", 7) == 7


@pytest.mark.parametrize(("message", "line"), [
    (("Compilation Error in model clv_run_settings (models/clv_run_settings.sql)\n"
     "  Unknown var 'clv_horizon_dayz'"), "Unknown var 'clv_horizon_dayz'"),
    ("Runtime Error\n  no such table", "no such table"),
    (("The profile 'clv' does not have a target named 'nosuch'. The valid target names for this "
     "profile are:\n - duckdb\n - postgres\n - spark\n"),
     ("The profile 'clv' does not have a target named 'nosuch'. The valid target names for this "
     "profile are: duckdb, postgres, spark")),
    ("Compilation Error", "Compilation Error"),
    ("Python model failed:\nTraceback (most recent call last):\n  File x", "Python model failed:"),
])
def test_first_line_skips_dbt_headers_and_keeps_a_list(message, line):
    assert build.first_line(message) == line


def test_warned_names_the_nodes_that_warned():
    def result(name, status, failures):
        return SimpleNamespace(node=SimpleNamespace(name=name), status=status,
                               failures=failures)

    outcome = SimpleNamespace(result=SimpleNamespace(results=[
        result("a", "pass", 0), result("b", "warn", 1), result("c", "warn", 1234)]))
    assert build.warned(outcome) == ["b (1 row)", "c (1,234 rows)"]
    assert build.warned(SimpleNamespace(result=None)) == []
    assert build.warned(SimpleNamespace(result=object())) == []  # dbt parse: a manifest


def test_the_last_line_names_the_stages_warnings(monkeypatch, capsys):
    """A staged build's last dbt summary counts only its own stage's warnings (WARN=0 after a
    first stage that warned): the final line names every warned node."""
    monkeypatch.setattr(build, "build_with_args",
                        lambda argv: ["clv_data_quality_excluded_rows (135 rows)"])
    assert build.main([]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("clv build: done in ")
    assert last.endswith("; warned: clv_data_quality_excluded_rows (135 rows)")
