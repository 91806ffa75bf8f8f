"""The project installed as a dbt package in another project (integration_tests/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest
from dbt.cli.main import dbtRunner

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_builds_as_a_dependency_of_another_project(tmp_path, monkeypatch):
    root = tmp_path / "root_project"
    shutil.copytree(PROJECT_DIR / "integration_tests", root)
    # The copy sits elsewhere, so point its local package at this checkout.
    (root / "packages.yml").write_text(f"packages:\n  - local: {PROJECT_DIR}\n")
    database = tmp_path / "root.duckdb"
    monkeypatch.setenv("CLV_DUCKDB_PATH", str(database))
    monkeypatch.chdir(root)  # clv_model_dir (default onnx) is relative to where dbt runs
    common = ["--project-dir", str(root), "--profiles-dir", str(root), "--quiet"]
    # One network: this proves the package installs and builds, not the model's accuracy.
    build_vars = "{clv_model_dir: " + str(tmp_path / "m") + ", clv_ensemble_size: 1}"
    for args in (["deps"], ["build", "--vars", build_vars]):
        result = dbtRunner().invoke(args + common)
        if result.exception is not None:
            raise result.exception
        assert result.success, args
    with duckdb.connect(str(database)) as connection:
        segments = connection.sql("select sum(customers) from customer_value_summary").fetchall()
        predictions = connection.sql("select count(*) from clv_predictions").fetchall()
    assert segments[0][0] == predictions[0][0] > 1000
    assert os.path.isdir(tmp_path / "m")
