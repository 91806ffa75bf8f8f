"""The benchmark scripts whose figures the README quotes run on a tiny input: a change to the
package they import breaks them here, not when someone next measures."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import PROJECT_DIR

pytestmark = pytest.mark.slow


def test_scoring_benchmark_runs_on_a_tiny_model():
    done = subprocess.run(
        [sys.executable, "bench/bench_scoring.py", "--rows", "1000", "--runs", "1",
         "--batch-sizes", "1000", "--train-customers", "2000", "--epochs", "1"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "calibration knots" in done.stdout
    assert "| clv.score.score_batches" in done.stdout
