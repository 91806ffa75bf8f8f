"""Shared benchmark helpers: run a command as a child process, report wall time and peak memory."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = PROJECT_DIR / "bench" / "out"
PYTHON = sys.executable
DBT = str(Path(sys.executable).with_name("dbt"))


@dataclass(frozen=True)
class Measurement:
    seconds: float
    peak_mb: float


def measure(command: Sequence[str], env: dict[str, str] | None = None,
            cwd: Path = PROJECT_DIR) -> Measurement:
    """Run ``command`` to completion; wall seconds and the child's peak resident memory."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command), cwd=cwd, env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(output.decode(errors="replace")[-4000:])
        raise SystemExit(f"benchmark command failed: {' '.join(command)}")
    return Measurement(seconds, usage.ru_maxrss / 1024)


def repeat(command: Sequence[str], runs: int, env: dict[str, str] | None = None,
           before=None) -> list[Measurement]:
    """``runs`` measurements of ``command``; ``before()`` runs ahead of each (e.g. a clean-up)."""
    results = []
    for _ in range(runs):
        if before is not None:
            before()
        results.append(measure(command, env=env))
    return results


def median_seconds(results: list[Measurement]) -> float:
    return statistics.median(r.seconds for r in results)


def median_peak_mb(results: list[Measurement]) -> float:
    return statistics.median(r.peak_mb for r in results)


def dbt_command(*args: str) -> list[str]:
    return [DBT, *args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]


def generate(customers: int) -> str:
    """Path of the generator's transactions for `customers` customers (no events), cached in
    bench/out."""
    path = OUT_DIR / f"transactions_{customers}.parquet"
    if not path.exists():
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([PYTHON, "-m", "clv.synthetic.cli", "--customers", str(customers),
                        "--no-events", "--out", str(path)], check=True)
    return str(path)
