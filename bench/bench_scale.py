"""Scale benchmark: the whole `dbt build` at 100k, 1M and 10M customers, per node.

    python bench/bench_scale.py --customers 100000 1000000 10000000

The data is a real data set replicated with distinct customer ids: the CDNOW master file
(23,570 customers, 69,659 transactions, 1997-01 to 1998-06) that the `lifetimes` package ships,
repeated ``round(customers / 23,570)`` times with the copy number appended to each id
(``00001-0``, ``00001-1``, ...), so every size has the same shape of behaviour and 10x the
customers is exactly 10x the rows. `--source generated` uses the project's generator instead
(9 transactions per customer instead of 3).

For each size: a fresh DuckDB file and model directory, `dbt build` with the profile's default
settings (no memory limit or other tuning passed), and prints

- wall time and the dbt process's peak resident memory,
- the peak disk use while it ran (the database file plus DuckDB's spill directory next to it,
  sampled every 0.2 s) and the database file's size at the end,
- every node's time from dbt's run_results.json side by side across sizes, with its growth
  from the previous size, so the steps that grow faster than the data stand out.

The targets (issue "Ten million customers on one small machine") are printed at the end: at
10M customers at most 10x the 1M time and at most 600 s, peak memory at most 8 GB; at 1M
customers at most 90 s and 4 GB.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common import OUT_DIR, PYTHON, dbt_command, generate

CDNOW_CUSTOMERS = 23_570
CDNOW_VARS = {"clv_as_of_date": "1998-06-30", "clv_horizon_days": 91,
              "clv_period_days": 14, "clv_sequence_periods": 12, "clv_training_cutoffs": 6}
GENERATED_VARS = {"clv_as_of_date": "2023-12-31"}

# Written in a child process: the replicated table must never live in this one, whose resident
# memory a child started later would count in its own peak.
REPLICATE = """
import importlib.util
import sys
from pathlib import Path
import duckdb
import pandas as pd

source, copies, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
package = Path(importlib.util.find_spec("lifetimes").submodule_search_locations[0])
cdnow = pd.read_csv(package / "datasets" / source, header=0, sep=r"\\s+",
                    dtype={0: str, 1: str}, names=["customer_id", "day", "cds", "dollars"])
with duckdb.connect() as connection:
    connection.execute("set enable_progress_bar = false")
    connection.register("cdnow", cdnow)
    connection.execute(f'''
        copy (
            select customer_id || '-' || copies.k as customer_id,
                   strptime(day, '%Y%m%d') as transacted_at,
                   dollars as amount
            from cdnow cross join range({copies}) as copies(k)
        ) to '{out}' (format parquet)
    ''')
"""


@dataclass(frozen=True)
class Build:
    customers: int
    transactions: int
    seconds: float
    peak_mb: float
    peak_disk_mb: float
    final_disk_mb: float
    nodes: dict[str, float]


def cdnow(copies: int) -> Path:
    """Path of the CDNOW master file repeated ``copies`` times, cached in bench/out."""
    path = OUT_DIR / f"cdnow_x{copies}.parquet"
    if not path.exists():
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([PYTHON, "-c", REPLICATE, "CDNOW_master.txt", str(copies), str(path)],
                       check=True)
    return path


def _disk_mb(database: Path) -> float:
    """Megabytes of the database file, its WAL and DuckDB's spill directory beside it."""
    total = 0
    for path in (database, database.with_name(database.name + ".wal")):
        if path.exists():
            total += path.stat().st_size
    spill = database.with_name(database.name + ".tmp")
    if spill.is_dir():
        for entry in spill.iterdir():
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat().st_size
    return total / 2**20


def run_build(transactions: Path, vars_: dict, tag: str) -> tuple[float, float, float]:
    """A fresh `dbt build`; wall seconds, peak resident MB, peak disk MB."""
    database = OUT_DIR / f"bench_scale_{tag}.duckdb"
    model_dir = OUT_DIR / f"bench_scale_{tag}_onnx"
    for path in (database, database.with_name(database.name + ".wal")):
        path.unlink(missing_ok=True)
    shutil.rmtree(database.with_name(database.name + ".tmp"), ignore_errors=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    run_vars = {"clv_transactions": str(transactions), "clv_model_dir": str(model_dir),
                "clv_export_path": str(OUT_DIR / f"bench_scale_{tag}.parquet"),
                "clv_report_path": str(OUT_DIR / f"bench_scale_{tag}.html"), **vars_}
    command = dbt_command("build", "--vars", json.dumps(run_vars), "--target-path",
                          str(OUT_DIR / f"target_scale_{tag}"), "--log-path",
                          str(OUT_DIR / "logs"))
    peak_disk = 0.0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak_disk
        while not done.wait(0.2):
            peak_disk = max(peak_disk, _disk_mb(database))

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "CLV_DUCKDB_PATH": str(database)},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watcher.start()
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"dbt build failed at {tag}:\n"
                         + output.decode(errors="replace")[-4000:])
    return seconds, usage.ru_maxrss / 1024, max(peak_disk, _disk_mb(database))


def node_times(tag: str) -> dict[str, float]:
    results = json.loads((OUT_DIR / f"target_scale_{tag}" / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results["results"]
            if r["unique_id"].startswith(("model.", "seed.", "snapshot."))}


def counts(tag: str, transactions: Path) -> tuple[int, int]:
    """Customers predicted by the build of ``tag`` and rows of its transactions file."""
    script = ("import duckdb, sys\n"
              "with duckdb.connect(sys.argv[1], read_only=True) as connection:\n"
              "    count = lambda sql: connection.execute(sql).fetchone()[0]\n"
              "    print(count('select count(*) from clv_predictions'),\n"
              "          count(f\"select count(*) from '{sys.argv[2]}'\"))\n")
    database = OUT_DIR / f"bench_scale_{tag}.duckdb"
    result = subprocess.run([PYTHON, "-c", script, str(database), str(transactions)],
                            check=True, capture_output=True, text=True)
    customers, rows = result.stdout.split()
    return int(customers), int(rows)


def print_report(builds: list[Build]) -> None:
    print("\n| customers | transactions | wall s | peak memory MB | peak disk MB "
          "| database MB |")
    print("|---|---|---|---|---|---|")
    for b in builds:
        print(f"| {b.customers:,} | {b.transactions:,} | {b.seconds:.1f} | {b.peak_mb:,.0f} "
              f"| {b.peak_disk_mb:,.0f} | {b.final_disk_mb:,.0f} |")
    for smaller, larger in itertools.pairwise(builds):
        factor = larger.customers / smaller.customers
        print(f"\n{factor:.1f}x the customers: {larger.seconds / smaller.seconds:.2f}x the "
              f"time, {larger.peak_mb / smaller.peak_mb:.2f}x the peak memory")
    names = sorted(set().union(*(b.nodes for b in builds)),
                   key=lambda name: -builds[-1].nodes.get(name, 0.0))
    print("\nnode seconds (slowest at the largest size first; growth from the previous size)\n")
    print("| node | " + " | ".join(f"{b.customers:,}" for b in builds) + " |")
    print("|---|" + "---|" * len(builds))
    for name in names:
        cells, previous = [], None
        for b in builds:
            seconds = b.nodes.get(name)
            cell = "" if seconds is None else f"{seconds:.1f}"
            if seconds is not None and previous and previous >= 0.5:
                cell += f" ({seconds / previous:.1f}x)"
            cells.append(cell)
            previous = seconds
        print(f"| {name} | " + " | ".join(cells) + " |")


def print_targets(builds: list[Build]) -> None:
    by_size = {round(b.customers, -5): b for b in builds}
    one, ten = by_size.get(900_000) or by_size.get(1_000_000), None
    for b in builds:
        if b.customers >= 5_000_000:
            ten = b
    print()
    if one is not None:
        print(f"at {one.customers:,} customers: {one.seconds:.0f} s (target 90 s: "
              f"{'met' if one.seconds <= 90 else 'missed'}), peak {one.peak_mb:,.0f} MB "
              f"(target 4,096 MB: {'met' if one.peak_mb <= 4096 else 'missed'})")
    if ten is not None:
        print(f"at {ten.customers:,} customers: {ten.seconds:.0f} s (target 600 s: "
              f"{'met' if ten.seconds <= 600 else 'missed'}), peak {ten.peak_mb:,.0f} MB "
              f"(target 8,192 MB: {'met' if ten.peak_mb <= 8192 else 'missed'})")
    if one is not None and ten is not None:
        factor = ten.customers / one.customers
        ratio = ten.seconds / one.seconds
        print(f"{factor:.1f}x the customers took {ratio:.1f}x the time (linear, at most "
              f"{factor:.1f}x: {'met' if ratio <= factor else 'missed'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+",
                        default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--source", choices=["cdnow", "generated"], default="cdnow")
    args = parser.parse_args()

    builds = []
    for customers in args.customers:
        if args.source == "cdnow":
            copies = max(1, round(customers / CDNOW_CUSTOMERS))
            path, vars_, tag = cdnow(copies), CDNOW_VARS, f"cdnow_x{copies}"
        else:
            path, vars_, tag = Path(generate(customers)), GENERATED_VARS, f"gen_{customers}"
        seconds, peak_mb, peak_disk = run_build(path, vars_, tag)
        predicted, transactions = counts(tag, path)
        database = OUT_DIR / f"bench_scale_{tag}.duckdb"
        builds.append(Build(predicted, transactions, seconds, peak_mb, peak_disk,
                            _disk_mb(database), node_times(tag)))
        print(f"{tag}: {predicted:,} customers, {seconds:.1f} s, {peak_mb:,.0f} MB, "
              f"disk peak {peak_disk:,.0f} MB", flush=True)
    print(f"\n`dbt build` from raw transactions, fresh database and model directory, the "
          f"profile's default settings; source {args.source} ({json.dumps(vars_)})")
    print_report(builds)
    print_targets(builds)


if __name__ == "__main__":
    main()
