"""What `dbt build` says: a quiet console, the detail in the dbt log, errors that say where.

One build of generated transactions with bad rows mixed in runs as its own process, as a user
runs it, with every data test, unit test and the report; its console (stdout and stderr) and
its log file (logs/dbt.log) are read:

- the console holds no Python warning (agate's, PyTorch's, any library's) and no warning from
  dbt but the data-quality test's, which counts the rows left out, and, this shop being small
  (its validation cutoff holds fewer than 200 customers), the one that says so, and, its
  history being under two years, the one that says its 60-day level sees no season;
- the console holds no per-epoch or per-batch line, while the dbt log holds every epoch's
  losses, the scoring batches with the customers done and the rate, the export's duration and
  the report's path;
- a Python step that fails names its model and the var to change.
"""

from __future__ import annotations

import re
import shutil
from datetime import date

import pandas as pd
import pytest
from production import Build, query, write_transactions

from clv.synthetic import GeneratorSettings, generate

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# How Python prints a warning (warnings.showwarning), whatever the category or library.
PYTHON_WARNING = re.compile(r"\b[A-Z]\w*Warning: |warnings\.warn\(")
EPOCH = re.compile(r"epoch +\d+  train_loss \d+\.\d+  validation_loss \d+\.\d+")
SCORED_BATCH = re.compile(r"scored [\d,]+ of [\d,]+ customers \(\d+%\), [\d,]+ customers/s")
EXPORTED = re.compile(r"exported clv_model_\S+\.onnx in \d+\.\d s \(\w+ exporter")
DATA_QUALITY = "clv_data_quality_excluded_rows"
FEW_CUSTOMERS = "clv_model_validated_on_enough_customers"
NO_SEASON = "clv_level_is_adjusted_for_the_season"  # 60 days ahead on 18 months of history


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Build:
    workdir = tmp_path_factory.mktemp("console")
    frame = generate(GeneratorSettings(
        n_customers=200, start_date=date(2022, 1, 1), end_date=date(2023, 6, 30), seed=8,
        with_events=False, bad_rows=True)).transactions
    # two more rows without a customer: the warning counts rows, not exclusion reasons
    no_customer = frame.head(2).assign(transaction_id=["X1", "X2"], customer_id="")
    write_transactions(workdir, pd.concat([frame, no_customer], ignore_index=True))
    return Build(workdir, workdir / "target", args=[]).run()


def _console(build: Build) -> list[str]:
    return [ANSI.sub("", line) for line in build.lines]


def _dbt_log(build: Build) -> str:
    return ANSI.sub("", (build.workdir / "logs" / "dbt.log").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_the_console_has_no_warning_but_the_data_quality_count(build):
    console = _console(build)
    assert [line for line in console if PYTHON_WARNING.search(line)] == []
    assert not [line for line in console if "does not match the name of any column" in line]
    reasons = query(build.workdir / "clv.duckdb", "select * from clv_data_quality")
    excluded = int(reasons.rows.sum())
    assert excluded > (reasons.rows > 0).sum()
    assert any(f"WARN {excluded} {DATA_QUALITY}" in line for line in console)
    assert any(f"WARN 1 {FEW_CUSTOMERS}" in line for line in console)
    assert any(f"WARN 1 {NO_SEASON}" in line for line in console)
    # every other line that says "warn" is dbt's summary of those three tests
    summary = ("Completed with 3 warnings:", f"Got {excluded} results, configured to warn if",
               "Got 1 result, configured to warn if", " WARN=3 ")
    others = [line for line in console if re.search("warn", line, re.IGNORECASE)
              and not any(name in line for name in (DATA_QUALITY, FEW_CUSTOMERS, NO_SEASON))]
    assert others and all(any(text in line for text in summary) for line in others), others


@pytest.mark.slow
def test_progress_detail_is_in_the_dbt_log_not_on_the_console(build):
    console = "\n".join(_console(build))
    assert not EPOCH.search(console) and not SCORED_BATCH.search(console)
    assert EXPORTED.search(console), "the export's duration is on the console"
    log = _dbt_log(build)
    assert len(EPOCH.findall(log)) >= 2
    assert SCORED_BATCH.search(log)
    assert EXPORTED.search(log)
    report = (build.workdir / "reports" / "clv_report.html").resolve()
    assert f"written to {report}" in log


@pytest.mark.slow
def test_a_failing_step_names_its_model_and_the_var(build, tmp_path):
    # a copy of the warehouse, with no saved model where clv_retrain 'never' looks for one
    workdir = tmp_path / "copy"
    shutil.copytree(build.workdir, workdir, ignore=shutil.ignore_patterns("logs", "target"))
    failing = Build(workdir, workdir / "target",
                    vars={"clv_retrain": "never", "clv_model_dir": "no_models_here"},
                    args=["--select", "clv_run_settings", "int_clv__model_registry"])
    assert failing.start().wait() != 0
    console = "\n".join(_console(failing))
    assert "Runtime Error in model int_clv__model_registry" in console, console[-3000:]
    assert ("clv_retrain is 'never' but no_models_here holds no model; run once with "
            "clv_retrain 'auto' or 'always'") in console
