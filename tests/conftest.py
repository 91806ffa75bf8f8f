"""Shared fixtures: run this dbt project against a throw-away DuckDB file."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from dbt.cli.main import dbtRunner
from dbt_common.tests import enable_test_caching

PROJECT_DIR = Path(__file__).resolve().parent.parent

# As dbt's own test fixtures do: a Jinja source is parsed once per process and reused by every
# later dbt invocation, which each parse the whole project again (every test's vars and database
# differ, so dbt's saved parse never applies).
enable_test_caching()

# Everything that does not need the network: the SQL layer up to the example tables.
FEATURE_MODELS = ("+clv_training_examples +clv_scoring_examples clv_customer_features "
                  "clv_customer_sequences +clv_data_quality")


@contextlib.contextmanager
def duckdb_path(database: Path) -> Iterator[None]:
    """Point the profile's DuckDB target (env CLV_DUCKDB_PATH) at ``database`` meanwhile."""
    previous = os.environ.get("CLV_DUCKDB_PATH")
    os.environ["CLV_DUCKDB_PATH"] = str(database)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("CLV_DUCKDB_PATH", None)
        else:
            os.environ["CLV_DUCKDB_PATH"] = previous


def failing_after_first_batch(score_batches: Callable, calls: list | None = None) -> Callable:
    """A stand-in for ``clv.pipeline.scoring.score_batches`` whose stream raises after its first
    batch (the calls' arguments are appended to ``calls``)."""
    import pyarrow as pa

    def fail(*args, **kwargs):
        if calls is not None:
            calls.append(args)
        scores = score_batches(*args, **kwargs)

        def batches():
            for batch in scores:
                yield batch
                raise RuntimeError("injected failure while scoring")
        return pa.RecordBatchReader.from_batches(scores.schema, batches())
    return fail


# The files that start Spark. With ``--dist loadfile`` they run in one test process
# (:func:`pytest_xdist_make_scheduler`): it starts the Java runtime once, and the later files'
# Spark builds run on its warmed-up session instead of a second one.
SPARK_FILES = ("tests/test_engines.py", "tests/test_spark_input.py", "tests/test_time_zones.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with the cross-engine builds first, then the other files with slow tests, then the
    quick ones, each file's tests in their own order. ``--dist loadfile`` hands files to the
    test processes in this order (``--no-loadscope-reorder`` in pyproject.toml), so the long
    files start early and the quick ones even out the processes' ends."""
    rank: dict[Path, int] = {}
    for item in items:
        marks = {mark.name for mark in item.iter_markers()}
        own = 0 if "engines" in marks else 1 if "slow" in marks else 2
        rank[item.path] = min(rank.get(item.path, 2), own)
        if "spark_dir" in getattr(item, "fixturenames", ()):
            name = item.path.relative_to(config.rootpath).as_posix()
            assert name in SPARK_FILES, f"{name} starts Spark: add it to SPARK_FILES"
    items.sort(key=lambda item: rank[item.path])


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile`` with the files of SPARK_FILES as one unit."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SparkTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return "spark" if scope in SPARK_FILES else scope

    return SparkTogether(config, log)


# Vars that dbt reads only when it compiles a node, never while it parses the project: two
# parses that differ in them give the same nodes, with the same dependencies on other nodes,
# configs and enablement, and the same exposures (tests/test_vars.py checks it; the macros a
# node calls may differ, which only state selection reads). A command whose vars differ from
# an earlier one's only in these runs on that parse (:func:`parse_key`). So an invalid value of
# one is reported when a node compiles, not as the parse's exception: tests of a var's
# validation run `parse`.
COMPILE_TIME_VARS = frozenset({
    "clv_as_of_date", "clv_columns", "clv_csv_encoding", "clv_cutoff_spacing_days",
    "clv_decimal_separator", "clv_ensemble_size", "clv_explanations", "clv_extra_features",
    "clv_horizon_days", "clv_keep_models", "clv_max_train_rows", "clv_max_validation_rows",
    "clv_missing_customer_ids", "clv_model_dir", "clv_period_days", "clv_retrain", "clv_seed",
    "clv_seasonal_backtests", "clv_sequence_periods", "clv_time_zone", "clv_timestamp_format",
    "clv_training_cutoffs",
})
# Inputs: whether one is set changes the parse (the sample seeds), and so does a ref or source
# in one; which file or table it names does not.
INPUT_VARS = frozenset({"clv_transactions", "clv_customers", "clv_events"})
# Commands that run on a parsed project (the others parse, or need no project).
ON_A_PARSE = frozenset({"build", "run", "test", "compile", "show", "seed", "ls", "list",
                        "run-operation", "docs"})


def parse_key(vars: dict | None) -> str:
    """What of ``vars`` dbt's parse of this project depends on."""
    key = {}
    for name, value in (vars or {}).items():
        if name in COMPILE_TIME_VARS:
            continue
        named = isinstance(value, str) and value.strip() and "{{" not in value
        key[name] = "set" if name in INPUT_VARS and named else value
    return json.dumps(key, sort_keys=True, default=str)


# parse_key (and database name) -> the parsed manifest, in this test process
_PARSES: dict[tuple[str, str], object] = {}


class DbtProject:
    """One throw-away database and target directory for the project under test. Its commands
    run on a parse of the project shared with every earlier command of this test process whose
    vars parse the same (:func:`parse_key`): each parse costs about 1.5 s."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.database = workdir / "clv.duckdb"

    def run(self, command: str, vars: dict | None = None, select: str | None = None,
            extra: list[str] | None = None) -> object:
        args = [
            command,
            "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(self.workdir / "target"),
            "--log-path", str(self.workdir / "logs"),
            "--quiet",
        ]
        if vars:
            args += ["--vars", json.dumps(vars)]
        if select:
            args += ["--select", *select.split()]
        args += extra or []
        with duckdb_path(self.database):
            result = self._runner(command, args, vars, extra).invoke(args)
        if result.exception is not None:
            raise result.exception
        return result

    def _runner(self, command: str, args: list[str], vars: dict | None,
                extra: list[str] | None) -> dbtRunner:
        """A runner on the shared parse for ``vars``, parsing first when there is none yet. A
        command naming another project, profile or target, or an inline query, parses as
        usual."""
        # another project, profile or target; an inline query, which dbt adds to the manifest
        # (and leaves there when it fails)
        own = {"--project-dir", "--profiles-dir", "--target", "-t", "--profile", "--inline"}
        given = {arg.split("=", 1)[0] for arg in extra or []}
        environment = {"CLV_SCHEMA", "DBT_TARGET", "DBT_PROFILE", "DBT_PROJECT_DIR",
                       "DBT_PROFILES_DIR"}
        if command not in ON_A_PARSE or own & given or environment & set(os.environ):
            return dbtRunner()
        # dbt-duckdb names the database after the file
        key = (parse_key(vars), self.database.stem)
        if key not in _PARSES:
            parse = ["parse", *args[1:args.index("--quiet") + 1]]
            if vars:
                parse += ["--vars", json.dumps(vars)]
            parsed = dbtRunner().invoke(parse)
            if not parsed.success:
                return dbtRunner()  # the command reports the parse's error itself
            _PARSES[key] = parsed.result
        return dbtRunner(manifest=_PARSES[key])

    def build(self, vars: dict | None = None, select: str | None = FEATURE_MODELS,
              expect_success: bool = True) -> object:
        result = self.run("build", vars=vars, select=select)
        if expect_success:
            failures = [
                f"{r.node.name}: {r.status} {r.message}"
                for r in (result.result or [])
                if str(r.status) in ("error", "fail", "runtime error")
            ]
            assert result.success, "dbt build failed:\n" + "\n".join(failures)
        return result

    def query(self, sql: str) -> pd.DataFrame:
        # dbt-duckdb may still hold the file in this process: open it with the same
        # (default) configuration.
        with duckdb.connect(str(self.database)) as connection:
            return connection.sql(sql).df()


def small_shop(workdir: Path, run_vars: dict) -> DbtProject:
    """A project on 200 generated customers (2022-01-01 to 2023-06-30, no events or bad rows)
    in ``workdir``, its model directory and Parquet export there too: ``project.vars``."""
    from clv.synthetic import GeneratorSettings, generate

    data = generate(GeneratorSettings(n_customers=200, start_date=date(2022, 1, 1),
                                      end_date=date(2023, 6, 30), seed=8, with_events=False,
                                      bad_rows=False))
    path = workdir / "transactions.csv"
    data.transactions.to_csv(path, index=False)
    project = DbtProject(workdir)
    project.export = workdir / "exports" / "clv_predictions.parquet"
    project.vars = {**run_vars, "clv_transactions": str(path),
                    "clv_model_dir": str(workdir / "models"),
                    "clv_export_path": str(project.export)}
    return project


@pytest.fixture
def dbt_project(tmp_path: Path) -> DbtProject:
    return DbtProject(tmp_path)


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[pd.DataFrame, str], str]:
    def write(frame: pd.DataFrame, name: str = "transactions.csv") -> str:
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return str(path)

    return write


@pytest.fixture(scope="session", autouse=True)
def _working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs in a directory of its own session, not the checkout: a build's outputs
    whose paths are relative to where dbt runs (the report, the Parquet export, the model
    directory by default) never land in the developer's own."""
    previous = Path.cwd()
    directory = tmp_path_factory.mktemp("cwd")
    os.chdir(directory)
    try:
        yield directory
    finally:
        os.chdir(previous)


@pytest.fixture(scope="session")
def spark_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Spark warehouse and metastore for the whole session (one SparkSession per
    process), shared by the cross-engine tests."""
    return tmp_path_factory.mktemp("spark")
