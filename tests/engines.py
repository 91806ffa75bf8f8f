"""Helpers for the cross-engine tests: reaching PostgreSQL and Spark, building the project there
with ``clv build``, and comparing tables across engines.

Locally an engine that is not there skips its tests; with ``CLV_TEST_ENGINES=required`` (set
by .ci/run) it fails them, so CI cannot pass without running them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


def unavailable(reason: str) -> None:
    """Skip (locally) or fail (CI) a test whose engine is not there."""
    if os.environ.get("CLV_TEST_ENGINES") == "required":
        pytest.fail(f"{reason} (CLV_TEST_ENGINES=required)")
    pytest.skip(reason)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def postgres_settings() -> dict[str, str]:
    """libpq variables for the test server (the environment's, else a local default).

    The builds' sessions start with a server default that writes dates as 31/12/2023: the md5
    sample buckets and the training data's digest cast dates to text, so every PostgreSQL build
    that matches DuckDB's tables shows they do not depend on it (psycopg2, under dbt-postgres
    and clv.warehouse, sets ISO output when a session starts otherwise).
    """
    return {"PGHOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PGPORT": os.environ.get("PGPORT", "5432"),
            "PGUSER": os.environ.get("PGUSER", "clv"),
            "PGPASSWORD": os.environ.get("PGPASSWORD", "clv"),
            "PGDATABASE": os.environ.get("PGDATABASE", "clv"),
            "PGOPTIONS": "-c DateStyle=SQL,DMY"}


def postgres_connection() -> Any:
    if importlib.util.find_spec("psycopg2") is None:
        unavailable("dbt-postgres (psycopg2) is not installed: pip install -e '.[postgres]'")
    import psycopg2

    settings = postgres_settings()
    try:
        return psycopg2.connect(host=settings["PGHOST"], port=settings["PGPORT"],
                                user=settings["PGUSER"], password=settings["PGPASSWORD"],
                                dbname=settings["PGDATABASE"], connect_timeout=5)
    except psycopg2.OperationalError as error:
        unavailable(f"no PostgreSQL server for the tests: {str(error).strip()}")
        raise


def drop_postgres_schemas(prefix: str) -> None:
    """Drop the schemas this process made with :func:`schema_name` whose names start with
    ``prefix`` (nothing when there is no server); another test process's are left alone."""
    if importlib.util.find_spec("psycopg2") is None:
        return
    import psycopg2

    settings = postgres_settings()
    try:
        connection = psycopg2.connect(host=settings["PGHOST"], port=settings["PGPORT"],
                                      user=settings["PGUSER"], password=settings["PGPASSWORD"],
                                      dbname=settings["PGDATABASE"], connect_timeout=5)
    except psycopg2.OperationalError:
        return
    try:
        with connection.cursor() as cursor:
            for name in sorted(n for n in _SCHEMAS if n.startswith(prefix)):
                # with the sample seeds' schema dbt derives from it (+schema: clv_sample)
                for schema in (name, f"{name}_clv_sample"):
                    cursor.execute(f'drop schema if exists "{schema}" cascade')
                _SCHEMAS.discard(name)
        connection.commit()
    finally:
        connection.close()


def spark_available() -> None:
    if importlib.util.find_spec("pyspark") is None:
        unavailable("pyspark is not installed: pip install -e '.[spark]'")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        unavailable("Spark needs a Java runtime (java on PATH or JAVA_HOME)")


def spark_session(spark_dir: Path) -> Any:
    """This process's SparkSession; started, when no build has started it yet, with the
    profile's spark target (warehouse and metastore under ``spark_dir``)."""
    spark_available()
    from clv.build import profile_of
    from clv.warehouse import SparkWarehouse

    with environment(CLV_SPARK_DIR=str(spark_dir)):
        profile = profile_of(PROJECT_DIR, PROJECT_DIR, "spark", {})
    return SparkWarehouse.start(profile.credentials.server_side_parameters, None).session


_SCHEMAS: set[str] = set()  # the schemas schema_name() handed out in this process


def schema_name(prefix: str) -> str:
    """A new schema name (``<prefix>_<random>``), remembered for drop_postgres_schemas."""
    name = f"{prefix}_{secrets.token_hex(3)}"
    _SCHEMAS.add(name)
    return name


def clv_build(target: str, run_vars: dict[str, Any], workdir: Path, env: dict[str, str],
              models: list[str] | None = None, tests: bool = True,
              dbt_args: Sequence[str] = ()) -> None:
    """``clv build --target <target>`` on this project (only ``models`` and what they need,
    when given; without dbt's data and unit tests with ``tests=False``; ``dbt_args`` added to
    the command line, a selection for one), in this process; fails the test with clv's own
    message when it fails."""
    import json

    from clv import build

    args = ["--target", target, "--project-dir", str(PROJECT_DIR), "--profiles-dir",
            str(PROJECT_DIR), "--vars", json.dumps(run_vars), "--target-path",
            str(workdir / "target"), "--log-path", str(workdir / "logs"), "--quiet", *dbt_args]
    with environment(**env):
        if models or not tests:
            build.build_with_args(args, models=models, tests=tests)
            return
        code = build.main(args)
    assert code == 0, f"clv build --target {target} failed (see the output above)"


def _normalized(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        dated = values.dtype == object and values.map(lambda v: hasattr(v, "isoformat")).any()
        if pd.api.types.is_datetime64_any_dtype(values) or dated:
            out[column] = values.map(lambda v: None if v is None or v is pd.NaT
                                     else pd.Timestamp(v).isoformat())
    return out


def assert_same_table(reference: pa.Table, other: pa.Table, name: str, rtol: float = 1e-9,
                      atol: float = 1e-12) -> None:
    """``other`` holds the rows of ``reference``: text, dates and integers equal, floats within
    ``rtol`` relative (``atol`` near zero), whatever the row order."""
    left, right = reference.to_pandas(), other.to_pandas()
    assert sorted(left.columns) == sorted(right.columns), f"{name}: columns differ"
    assert len(left) == len(right), f"{name}: {len(right)} rows, DuckDB has {len(left)}"
    right = right[list(left.columns)]
    floats = [c for c in left.columns
              if pa.types.is_floating(reference.schema.field(c).type)]
    keys = [c for c in left.columns if c not in floats]
    left, right = _normalized(left), _normalized(right)
    left = left.sort_values(keys, na_position="first").reset_index(drop=True)
    right = right.sort_values(keys, na_position="first").reset_index(drop=True)
    for column in keys:
        numeric = pd.api.types.is_numeric_dtype(left[column])

        def value(v: Any, numeric: bool = numeric) -> Any:
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                return None
            return int(v) if numeric else str(v)

        a = [value(v) for v in left[column].tolist()]
        b = [value(v) for v in right[column].tolist()]
        differs = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
        assert not differs, (f"{name}.{column}: {len(differs)} rows differ, first: "
                             f"{differs[0][0]!r} vs {differs[0][1]!r}")
    for column in floats:
        a = left[column].astype(float).to_numpy()
        b = right[column].astype(float).to_numpy()
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, equal_nan=True,
                                   err_msg=f"{name}.{column}")
