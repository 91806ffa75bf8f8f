"""``clv build``: the whole DAG on any supported target, in one command.

Where dbt runs Python models (DuckDB; Databricks, Snowflake and BigQuery in the cloud) this is
``dbt build``. Where it does not (PostgreSQL; Spark through dbt-spark's ``session`` method), it
runs the same DAG in stages, in dependency order:

1. the dbt SQL models and their tests upstream of the Python models (``dbt build``);
2. the Python models (training, scoring, evaluation, explanations), each called exactly as dbt
   would call it, with a ``dbt`` object whose ``ref()`` returns the relation and the engine's
   connection as ``session``; the result is written to the model's relation through
   :class:`clv.warehouse.Warehouse`; then their dbt tests;
3. the SQL models downstream of them, and so on until every model is built.

The vars, the retrain policy and the artifacts are those of ``dbt build``: the Python steps
read the settings from ``clv_run_settings``, which the first stage builds with the given vars.
On Spark the process creates the SparkSession first, so dbt-spark's session and the Python
steps share it (and its executors run the scoring).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import sys
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# dbt adapters that run the project's Python models themselves.
PYTHON_ADAPTERS = {"duckdb", "databricks", "snowflake", "bigquery"}
# Adapters for which clv build runs the Python models, and what to install for each.
STAGED_ADAPTERS = {"postgres": "dbt-postgres", "spark": "dbt-spark[session] and pyspark"}
# dbt options that choose nodes: on the staged engines each stage chooses its own
SELECTION_OPTIONS = {"--select", "-s", "-m", "--models", "--model", "--exclude", "--selector",
                     "--resource-type", "--resource-types"}
MODEL_OPTIONS = {"-m", "--models", "--model"}
EXTRAS = {"postgres": "postgres", "spark": "spark"}
# The build's start, read by the macro clv_today in every dbt command of a build in stages
STARTED_AT = "CLV_BUILD_STARTED_AT"
PACKAGE_DIR = Path(__file__).resolve().parent


class BuildError(RuntimeError):
    """A build that cannot start or did not finish; the message is one line for the user."""


@dataclass(frozen=True)
class Node:
    """A model of the project, as the manifest describes it."""

    unique_id: str
    name: str
    language: str
    schema: str
    alias: str
    path: Path
    parents: tuple[str, ...]
    # the node's resolved config (vars rendered): what ``dbt.config.get()`` reads
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.alias}"


def stages(nodes: Sequence[Node]) -> list[tuple[str, list[Node]]]:
    """The models in dependency order, grouped into alternating runs of SQL and Python models:
    each group needs only models of earlier groups and of its own, listed before them (dbt
    orders a SQL group itself)."""
    known = {node.unique_id for node in nodes}
    done: set[str] = set()
    remaining = list(nodes)
    result: list[tuple[str, list[Node]]] = []
    while remaining:
        progress = False
        for language in ("sql", "python"):
            group: list[Node] = []
            grew = True
            while grew:  # a model may wait on models of the same group
                grew = False
                for node in remaining:
                    if node.language != language or node in group:
                        continue
                    waiting = {p for p in node.parents if p in known and p not in done}
                    if not waiting - {n.unique_id for n in group}:
                        group.append(node)
                        grew = True
            if group:
                result.append((language, group))
                done |= {node.unique_id for node in group}
                remaining = [node for node in remaining if node not in group]
                progress = True
        if not progress:
            raise BuildError("the model graph has a cycle: "
                             + ", ".join(sorted(node.name for node in remaining)))
    return result


class _Dbt:
    """The ``dbt`` object a Python model receives: ``ref()``, ``config()``, ``this``."""

    def __init__(self, node: Node, relations: dict[str, Any], run_vars: dict[str, Any]) -> None:
        self._relations = relations
        self.this = node.relation
        self._vars = run_vars
        self.config = _Config(node.config)

    def ref(self, name: str, *_: Any, **__: Any) -> Any:
        if name not in self._relations:
            raise BuildError(f"ref('{name}') is not a model of this project")
        return self._relations[name]()


class _Config:
    """``dbt.config``: calls are no-ops (the manifest already holds the config), ``get``
    reads the node's resolved config."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __call__(self, *_: Any, **__: Any) -> None:
        return None

    def get(self, key: str, default: Any = None) -> Any:
        value = self._values.get(key)
        return default if value is None else value


def _load_model_function(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"clv_python_model_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise BuildError(f"cannot load the Python model {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.model


class Runner:
    """Runs dbt commands in this process, stopping at the first failure with one line.

    ``manifest``: the parsed project the commands run on; None lets dbt parse it (re-using its
    saved parse when the vars have not changed). Assign it to run the next commands on it.
    ``warnings`` collects the nodes that warned (:func:`warned`)."""

    def __init__(self, common: Sequence[str], run_vars: dict[str, Any],
                 manifest: Any = None) -> None:
        self.common = list(common)
        self.vars = run_vars
        self.manifest = manifest
        self.warnings: list[str] = []

    def invoke(self, command: Sequence[str], quiet: bool = False) -> Any:
        from dbt.cli.main import dbtRunner

        args = [*command, *accepted_options(command[0], self.common)]
        if self.vars:
            args += ["--vars", json.dumps(self.vars, default=str)]
        if quiet:
            args += ["--quiet"]
        result = succeeded(dbtRunner(manifest=self.manifest).invoke(args), command[0])
        self.warnings += warned(result)
        return result


def warned(result: Any) -> list[str]:
    """The nodes of a dbt result that warned (data tests of severity warn), each as
    ``name (N rows)``: what a quiet run does not print."""
    return [f"{r.node.name} ({r.failures or 0:,} row{'' if r.failures == 1 else 's'})"
            for r in getattr(getattr(result, "result", None), "results", None) or []
            if str(r.status) == "warn"]


def succeeded(result: Any, command: str, details: bool = False) -> Any:
    """``result`` of ``dbt <command>`` (a dbtRunnerResult) when it succeeded; else BuildError
    in one line naming the failed nodes, with ``details`` each one's first message line (for
    a quiet run, which printed none). A Ctrl-C that dbt caught is raised again."""
    if isinstance(result.exception, KeyboardInterrupt):
        raise result.exception
    if result.exception is not None:
        raise BuildError(f"dbt {command} failed: {first_line(result.exception)}")
    if not result.success:
        failed = [r for r in (result.result or [])
                  if str(r.status) in ("error", "fail", "runtime error")]
        if details:
            raise BuildError(f"dbt {command} failed: " + "; ".join(
                [f"{r.node.name}: {first_line(r.message or 'failed')}" for r in failed]
                or ["see the dbt log"]))
        raise BuildError(f"dbt {command} failed"
                         + (f" at {', '.join(r.node.name for r in failed)}" if failed else "")
                         + " (details above)")
    return result


def accepted_options(command: str, args: Sequence[str]) -> list[str]:
    """The options of ``args`` (with their values) that ``dbt <command>`` accepts: a build's
    ``--full-refresh`` or ``--exclude-resource-type`` goes to its build stages, not to the
    ``dbt parse`` and ``dbt test`` around them, which would refuse it. An option no dbt
    command knows (a misspelling) is kept, so dbt refuses it."""
    from dbt.cli.main import cli

    def names(name: str) -> set[str]:
        return {option for param in cli.commands[name].params
                for option in (*param.opts, *param.secondary_opts)}

    accepted = names(command)
    known = set().union(*(names(name) for name in cli.commands))
    kept, keep = [], True
    for arg in args:
        if arg.startswith("-"):
            option = arg.split("=", 1)[0]
            keep = option in accepted or option not in known
        if keep:
            kept.append(arg)
    return kept


def dbt_env(name: str) -> str | None:
    """The value of dbt's environment variable ``DBT_<name>`` as dbt reads it: the
    ``DBT_ENGINE_<name>`` spelling first (dbt 1.11), then the older one; None when unset or
    empty."""
    return os.environ.get(f"DBT_ENGINE_{name}") or os.environ.get(f"DBT_{name}") or None


def profiles_dir_of(project_dir: Path, profiles_dir: Path | None) -> Path:
    """Where profiles.yml is read from, as dbt looks for it (--profiles-dir, then
    DBT_PROFILES_DIR, then the current directory), then in the project, then ~/.dbt; the
    builds are told the same directory."""
    for candidate in (profiles_dir, dbt_env("PROFILES_DIR")):
        if candidate:
            chosen = Path(candidate).expanduser().resolve()  # `--profiles-dir=~/.dbt` too
            if not chosen.is_dir():
                raise BuildError(f"the profiles directory {str(candidate)!r} does not exist "
                                 "(--profiles-dir or DBT_PROFILES_DIR)")
            return chosen
    for directory in (Path.cwd(), project_dir):
        if (directory / "profiles.yml").is_file():
            return directory.resolve()
    return Path.home() / ".dbt"


# dbt's headers above a message: "Compilation Error", "Compilation Error in model x (path)"
_DBT_HEADER = re.compile(r"(Runtime|Compilation|Database|Parsing) Error( in .*)?")


def first_line(error: BaseException | str) -> str:
    """The message of ``error`` in one line: its first line after dbt's headers, with the
    list that follows a line ending in a colon (the valid target names, say)."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not _DBT_HEADER.fullmatch(line)] or lines
    if not useful:
        return type(error).__name__
    first = useful[0]
    listed = [line.removeprefix("- ") for line in useful[1:6] if line.startswith("- ")]
    if first.endswith(":") and listed:
        first += " " + ", ".join(listed)
    return first


def _profile_name(dbt_args: Sequence[str]) -> str | None:
    """The profile dbt will use when the options or DBT_PROFILE name one (else None: the
    project's)."""
    for index, arg in enumerate(dbt_args):
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
        if arg == "--profile" and index + 1 < len(dbt_args):
            return dbt_args[index + 1]
    return dbt_env("PROFILE")


def profile_of(project_dir: Path, profiles_dir: Path | None, target: str | None,
             run_vars: dict[str, Any], profile_name: str | None = None) -> Any:
    """The rendered profile (adapter type and credentials) of ``target`` in ``profile_name``
    (the project's profile by default), the one dbt reads."""
    from dbt.config.runtime import load_profile
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_invocation_context(os.environ)
    profiles = profiles_dir_of(project_dir, profiles_dir)
    set_from_args(argparse.Namespace(PROFILES_DIR=str(profiles)), None)
    try:
        return load_profile(str(project_dir), run_vars, profile_name, target)
    except Exception as error:  # noqa: BLE001 dbt raises several kinds; all end the build
        message = first_line(error)
        if "dbt-spark[session]" in str(error):  # dbt-spark's check that pyspark is there
            raise BuildError(_install_hint("spark")) from None
        if "Could not find adapter type" in str(error):
            kind = str(error).rsplit("Could not find adapter type", 1)[1].strip(" !\n")
            raise BuildError(_install_hint(kind)) from None
        if "does not have a target named" in message:
            names = [line.strip(" -") for line in str(error).splitlines()
                     if line.strip().startswith("- ")]
            raise BuildError(f"no target {target!r} in profiles.yml; its targets are: "
                             f"{', '.join(names)}") from None
        raise BuildError(message) from None


def _install_hint(kind: str) -> str:
    if kind in EXTRAS:
        return (f"the {kind} target needs {STAGED_ADAPTERS[kind]}: "
                f"pip install -e '.[{EXTRAS[kind]}]'")
    supported = ", ".join(["duckdb", *STAGED_ADAPTERS])
    return f"targets of type {kind!r} are not supported; supported: {supported}"


def _open_warehouse(credentials: Any) -> Any:
    """The warehouse for a staged target, checked to be reachable."""
    kind = credentials.type
    if kind == "postgres":
        from clv.warehouse.postgres import PostgresWarehouse

        if importlib.util.find_spec("psycopg2") is None:
            raise BuildError(_install_hint("postgres"))
        try:
            return PostgresWarehouse.open(credentials)
        except ConnectionError as error:
            raise BuildError(str(error)) from None
    if kind == "spark":
        from clv.warehouse.spark import SparkWarehouse

        if str(getattr(credentials, "method", "")).rsplit(".", 1)[-1].lower() != "session":
            raise BuildError("clv build runs Spark targets with method: session (a Spark "
                             "session in this process); the thrift, http and odbc methods and "
                             "Databricks are not supported yet (README: Running on Spark / "
                             "PostgreSQL)")
        if importlib.util.find_spec("pyspark") is None:
            raise BuildError(_install_hint("spark"))
        return SparkWarehouse.start(credentials.server_side_parameters, credentials.schema)
    raise BuildError(_install_hint(kind))


def start_engine(project_dir: Path, profiles_dir: Path | None, target: str | None,
                 run_vars: dict[str, Any]) -> None:
    """Before a command that runs dbt itself on a Spark target (clv-backfill): start the
    SparkSession as :func:`build` does, so that dbt-spark finds it, its Python workers run
    this interpreter (which has the package; dbt-spark's own session would start them with
    the first `python3` on PATH) and Spark logs errors only. Other targets: nothing."""
    profile = profile_of(project_dir, profiles_dir_of(project_dir, profiles_dir),
                         target or dbt_env("TARGET"), run_vars)
    if profile.credentials.type == "spark":
        _open_warehouse(profile.credentials)


def _model_path(project_dir: Path, node: Any) -> Path:
    """The model's file: in the project, or in an installed package (dbt_packages/)."""
    own = project_dir / node.original_file_path
    return own if own.is_file() else (project_dir / "dbt_packages" / node.package_name
                                      / node.original_file_path)


def _nodes(manifest: Any, project_dir: Path) -> list[Node]:
    nodes = []
    for node in manifest.nodes.values():
        if str(node.resource_type) not in {"model", "NodeType.Model"}:
            continue
        nodes.append(Node(unique_id=node.unique_id, name=node.name,
                          language=str(node.language).rsplit(".", 1)[-1].lower(),
                          schema=node.schema, alias=node.alias or node.name,
                          path=_model_path(project_dir, node),
                          parents=tuple(p for p in node.depends_on.nodes
                                        if p.startswith("model.")),
                          config=node.config.to_dict(omit_none=True)))
    return nodes


def selected_models(runner: Runner, selection: Sequence[str]) -> set[str]:
    """The unique ids of the models dbt selects with ``selection`` (``dbt ls``, whose list is
    not printed): ids, so a versioned model or a name two packages share is the one meant."""
    # -m and --models are --select for models, which dbt ls refuses beside --select
    options = [("--select" if arg.startswith("--") else "-s") + arg[len(_option_name(arg)):]
               if _option_name(arg) in MODEL_OPTIONS else arg for arg in selection]
    with contextlib.redirect_stdout(io.StringIO()):
        listed = runner.invoke(["ls", "--output", "json", "--output-keys", "unique_id",
                                "resource_type", *options], quiet=True).result or []
    entries = [json.loads(line) for line in listed]
    return {entry["unique_id"] for entry in entries if entry.get("resource_type") == "model"}


def split_selection(dbt_args: Sequence[str]) -> tuple[list[str], list[str]]:
    """dbt's node selection in ``dbt_args`` (each option of SELECTION_OPTIONS with its values:
    ``--select a b``, ``--select=a``, ``-sa``), and the other arguments, each in order."""
    selection: list[str] = []
    rest: list[str] = []
    values_follow = False
    for arg in dbt_args:
        if _option_name(arg) in SELECTION_OPTIONS:
            selection.append(arg)
            values_follow = True  # dbt reads more values after --select=a or -sa too
        elif values_follow and not arg.startswith("-"):
            selection.append(arg)
        else:
            values_follow = False
            rest.append(arg)
    return selection, rest


def _option_name(arg: str) -> str:
    """The option an argument gives: ``--select`` of ``--select=x``, ``-s`` of ``-sx`` (a short
    option joined to its value); the argument itself otherwise."""
    if arg.startswith("--"):
        return arg.split("=", 1)[0]
    if arg.startswith("-") and len(arg) > 2:
        return arg[:2]
    return arg


# The packages whose exceptions are the database's answer (not a bug of the step).
DATABASE_ERROR_MODULES = frozenset({"psycopg2", "pyspark", "py4j"})


def run_python_model(node: Node, warehouse: Any, relations: dict[str, Any],
                     run_vars: dict[str, Any]) -> int:
    """Call the Python model of ``node`` as dbt would and write its result; returns rows. An
    error the steps raise to say what to fix (a ValueError naming a var or input; the
    hand-off's RuntimeError or OSError: a table to build first, a full disk, a file held open)
    is one line naming the model, as dbt reports a Python model's error, and so is the
    database's refusal to write the result; any other (a library's, a bug's) keeps its
    traceback."""
    function = _load_model_function(node.path)
    try:
        result = function(_Dbt(node, relations, run_vars), warehouse.session_object)
    except (ValueError, RuntimeError, OSError) as error:
        if not _raised_on_purpose(error, node.path):
            raise
        raise BuildError(f"{node.name} failed: {first_line(error)}") from error
    try:
        return warehouse.write_table(node.relation, result)
    except Exception as error:
        if type(error).__module__.split(".")[0] not in DATABASE_ERROR_MODULES:
            raise
        # the server's refusal (no permission on the schema, a full disk, a lost connection):
        # one line, as dbt reports a database error in a model
        raise BuildError(f"{node.name} failed writing {node.relation}: "
                         f"{first_line(error)}") from error


def _raised_on_purpose(error: BaseException, model_path: Path) -> bool:
    """Whether ``error`` comes from a ``raise`` statement of this package or of the model's
    file, not from inside a library (numpy's broadcast error, a bug)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    path = Path(last.filename).resolve()
    ours = path.is_relative_to(PACKAGE_DIR) or path == Path(model_path).resolve()
    return ours and (last.line or "").lstrip().startswith("raise ")


def _ancestors(nodes: Sequence[Node], names: Sequence[str]) -> list[Node]:
    """``names`` and every model upstream of them (dbt's ``+name``)."""
    by_id = {node.unique_id: node for node in nodes}
    wanted = [node.unique_id for node in nodes if node.name in set(names)]
    missing = set(names) - {by_id[uid].name for uid in wanted}
    if missing:
        raise BuildError(f"no model named {', '.join(sorted(missing))} in the project")
    keep: set[str] = set()
    while wanted:
        uid = wanted.pop()
        if uid not in keep and uid in by_id:
            keep.add(uid)
            wanted.extend(by_id[uid].parents)
    return [node for node in nodes if node.unique_id in keep]


def _seeds_read(manifest: Any, nodes: Sequence[Node] | None = None) -> list[str]:
    """The names of the seeds that ``nodes`` read; with no ``nodes``, of every enabled seed (a
    disabled one is not in ``manifest.nodes``: the sample's, when clv_load_sample turns it off,
    which ``--select resource_type:seed`` would answer with dbt's warning that it matches no
    enabled node)."""
    if nodes is None:
        return sorted({node.name for unique_id, node in manifest.nodes.items()
                       if unique_id.startswith("seed.")})
    return sorted({manifest.nodes[parent].name for node in nodes
                   for parent in manifest.nodes[node.unique_id].depends_on.nodes
                   if parent.startswith("seed.")})


def build(target: str | None, run_vars: dict[str, Any], project_dir: Path,
          profiles_dir: Path | None, dbt_args: Sequence[str] = (),
          models: Sequence[str] | None = None, exclude: Sequence[str] = (),
          tests: bool = True, manifest: Any = None) -> list[str]:
    """Build every model of the project on ``target`` (see the module docstring), or only
    ``models`` and what they need; never the nodes named in ``exclude`` (models already
    built, or data tests).
    ``tests=False`` builds the models and seeds without dbt's data and unit tests.
    ``manifest``: the project as ``dbt parse`` returned it, for builds that differ from it
    only in vars dbt reads when it compiles (``clv_as_of_date``, ``clv_retrain``), so dbt
    does not parse the project again; by default dbt parses it (re-using its saved parse
    when the vars have not changed). Returns the nodes that warned (:func:`warned`)."""
    skip_tests = [] if tests else ["--exclude-resource-type", "test", "unit_test"]
    target = target or dbt_env("TARGET")  # as dbt reads it
    profiles_dir = profiles_dir_of(project_dir, profiles_dir)
    profile = profile_of(project_dir, profiles_dir, target, run_vars, _profile_name(dbt_args))
    kind = profile.credentials.type
    def options(args: Sequence[str]) -> list[str]:
        return ["--project-dir", str(project_dir), *args, "--profiles-dir", str(profiles_dir),
                *(["--target", target] if target else [])]

    common = options(dbt_args)
    if kind in PYTHON_ADAPTERS:
        select = (["--select", *[f"+{name}" for name in models], "--indirect-selection",
                   "cautious"] if models else [])
        runner = Runner(common, run_vars, manifest)
        runner.invoke(
            ["build", *select, *(["--exclude", *exclude] if exclude else []), *skip_tests])
        return runner.warnings
    if kind not in STAGED_ADAPTERS:
        raise BuildError(_install_hint(kind))
    selection, dbt_args = split_selection(dbt_args)
    if selection and models is not None:
        raise BuildError(f"{_option_name(selection[0])} is not supported here: the models are "
                         "chosen for you (each stage selects its own nodes)")
    common = options(dbt_args)

    warehouse = _open_warehouse(profile.credentials)
    try:
        with one_start():
            return _build_in_stages(warehouse, common, run_vars, project_dir, manifest,
                                    selection, models, exclude, tests, skip_tests)
    finally:
        warehouse.close()


@contextlib.contextmanager
def one_start() -> Iterator[None]:
    """Every dbt command inside reads the same today (the macro ``clv_today``): the build's
    start, in the environment variable ``STARTED_AT`` (ISO 8601, UTC), whatever it held
    before, which is restored after. One dbt command reads its own start
    (``run_started_at``); a build in stages runs several, and one that runs past midnight
    would read ``clv_as_of_date: yesterday`` as two dates."""
    before = os.environ.get(STARTED_AT)
    os.environ[STARTED_AT] = datetime.now(UTC).isoformat()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(STARTED_AT, None)
        else:
            os.environ[STARTED_AT] = before


def _build_in_stages(warehouse: Any, common: list[str], run_vars: dict[str, Any],
                     project_dir: Path, manifest: Any, selection: list[str],
                     models: Sequence[str] | None, exclude: Sequence[str], tests: bool,
                     skip_tests: list[str]) -> list[str]:
    """The stages of :func:`build` on PostgreSQL and Spark."""
    runner = Runner(common, run_vars, manifest)
    if manifest is None:
        # each stage runs on this parse instead of reading dbt's saved one
        manifest = runner.manifest = runner.invoke(["parse"], quiet=True).result
    nodes = _nodes(manifest, project_dir)
    # every model's relation, selected or not: a Python step reads its inputs by name
    relations = {node.name: (lambda node=node: warehouse.relation(node.relation))
                 for node in nodes}
    if selection:
        # dbt's own selection syntax, answered by dbt; the stages build exactly the models
        # it selects, as dbt build would (`+` for what they read)
        chosen = selected_models(runner, selection)
        if not chosen:
            raise BuildError(f"{' '.join(selection)} selects no model")
        nodes = [node for node in nodes if node.unique_id in chosen]
    # every enabled seed; with models named, only they, what they need and the seeds it
    # reads
    if models:
        nodes = _ancestors(nodes, models)
    seeds = _seeds_read(manifest, nodes if models or selection else None)
    # a name in exclude that is no model (a data test) is left out of every stage's dbt
    # command, which would select it otherwise
    models_named = {node.name for node in nodes}
    other = [name for name in exclude if name not in models_named]
    leave_out = ["--exclude", *other] if other else []
    nodes = [node for node in nodes if node.name not in exclude]
    first = True
    for language, group in stages(nodes):
        names = [node.name for node in group]
        if language == "sql":
            # seeds ride along with the first stage; every stage runs the tests whose
            # parents are all built by then
            select = ["--select", *names] + (seeds if first else [])
            runner.invoke(["build", *select, "--indirect-selection", "buildable",
                           *leave_out, *skip_tests])
        else:
            for node in group:
                began = time.perf_counter()
                rows = run_python_model(node, warehouse, relations, run_vars)
                print(f"clv build: {node.name}: {rows:,} rows "
                      f"({time.perf_counter() - began:.1f} s)", flush=True)
            if tests:
                runner.invoke(["test", "--select", *names, "--indirect-selection",
                               "buildable", *leave_out])
        first = False
    return runner.warnings


def parse_vars(text: str) -> dict[str, Any]:
    """The ``--vars`` option as dbt reads it: a YAML or JSON mapping (empty: no vars).
    Raises BuildError for anything else."""
    import yaml

    try:
        run_vars = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BuildError(f"--vars is not YAML: {first_line(error)}") from None
    run_vars = {} if run_vars is None else run_vars
    if not isinstance(run_vars, dict):
        raise BuildError(f"--vars: expected a mapping, got {text!r}")
    return run_vars


def build_with_args(argv: Sequence[str], models: Sequence[str] | None = None,
                    exclude: Sequence[str] = (), tests: bool = True,
                    manifest: Any = None) -> list[str]:
    """:func:`build` from command-line style arguments (those of ``clv build``; the others go
    to dbt); the nodes that warned. Raises BuildError."""
    args, dbt_args = _parser().parse_known_args(argv)
    return build(args.target, parse_vars(args.vars), Path(args.project_dir).resolve(),
          Path(args.profiles_dir) if args.profiles_dir else None, dbt_args, models,
          exclude, tests, manifest)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clv build", allow_abbrev=False,
        description="Build every model of the project on a dbt target: dbt build where dbt runs "
                    "the Python models (DuckDB), otherwise the same DAG in stages (PostgreSQL, "
                    "Spark). Other options are passed to dbt.")
    parser.add_argument("--target", "-t", default=None,
                        help="dbt target (default: DBT_TARGET, else the profile's)")
    parser.add_argument("--vars", default="{}", help="dbt vars (YAML or JSON mapping)")
    parser.add_argument("--project-dir", default=dbt_env("PROJECT_DIR") or ".",
                        help="the dbt project (default: DBT_PROJECT_DIR, else .)")
    parser.add_argument("--profiles-dir", default=None,
                        help="where profiles.yml is (default: DBT_PROFILES_DIR, the current "
                             "directory, the project, else ~/.dbt)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    began = time.perf_counter()
    try:
        warnings = build_with_args(sys.argv[1:] if argv is None else argv)
    except BuildError as error:
        print(f"clv build: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("clv build: interrupted", file=sys.stderr)
        return 130
    # the stages' summaries each count their own warnings: the last may say WARN=0
    print(f"clv build: done in {time.perf_counter() - began:.1f} s"
          + (f"; warned: {', '.join(warnings)}" if warnings else ""), flush=True)
    return 0
