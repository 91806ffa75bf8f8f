"""Training benchmark: wall time to a converged, exported model on the dbt example table.

    python bench/bench_training.py --customers 1000000 --runs 3

Generates transactions with the project's generator, builds ``clv_training_examples`` and
``clv_run_settings`` with the project's dbt models (``dbt run --select +clv_training_examples
clv_run_settings``, timed once, into a DuckDB file under bench/out), then times the pipeline's
training path in a fresh process per run: ``clv.pipeline.training.train_or_reuse`` with the
run's settings from ``clv_run_settings`` and ``clv_retrain = always``, through
``clv.warehouse.DuckDBWarehouse`` as the dbt model calls it. It reads the examples (an md5
bucket sample that the dbt model holds above the row caps), fingerprints them, fits BG/NBD +
Gamma-Gamma per cutoff, trains with the default ``TrainSettings()`` (early stopping),
calibrates, exports to ONNX with the parity check and evaluates the baselines. Prints rows
available and used, epochs, the time of each step and the peak memory; medians over
``--runs``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from bench_features import row_count
from common import OUT_DIR, PYTHON, dbt_command, generate, measure

AS_OF = "2023-12-31"
TARGET_SECONDS = 300
EXAMPLES, SETTINGS = "clv_training_examples", "clv_run_settings"
# Timed steps: (module, attribute, label), each patched where the training step looks it up when
# it runs. clv.pipeline.training imports train and export_model when it trains, so they are
# timed where they are defined; the warehouse read is a method of the Warehouse base class.
# A step that no longer exists, or that the run never calls, stops the benchmark.
STEPS = (("clv.pipeline.training", "fingerprint", "fingerprint"),
         ("clv.warehouse.base", "Warehouse.read", "warehouse_read"),
         ("clv.pipeline.training", "sorted_examples", "sorted_examples"),
         ("clv.pipeline.training", "stable_floats", "stable_floats"),
         ("clv.hybrid", "add_features_per_cutoff", "btyd_fits_per_cutoff"),
         ("clv.train", "train", "train"),
         ("clv.pipeline.training", "calibrate", "calibrate"),
         ("clv.export", "export_model", "export_model"),
         ("clv.pipeline.training", "evaluate", "evaluate"))


def patch_steps(timed: Callable[[str, Callable], Callable]) -> None:
    """Replace every step in STEPS by ``timed(label, original)``; fail loudly when one is gone."""
    for module_name, attribute, label in STEPS:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name, None)
        if not callable(original):
            raise SystemExit(f"bench_training: timed step {module_name}.{attribute} does not "
                             "exist any more; update STEPS")
        setattr(owner, name, timed(label, original))


def child(database: str, model_dir: str, report: str) -> None:
    """One training run in this process; writes step timings and model facts to ``report``."""
    import dataclasses

    from clv.pipeline import training
    from clv.pipeline.settings import RunSettings
    from clv.warehouse import DuckDBWarehouse

    seconds: dict[str, float] = {}
    facts: dict[str, Any] = {}

    def timed(name: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                value = function(*args, **kwargs)
            finally:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
            if name == "train":
                facts["epoch_seconds"] = [round(h["seconds"], 2) for h in value.history]
            return value
        return wrapper

    patch_steps(timed)

    connection = duckdb.connect(database, read_only=True)
    warehouse = DuckDBWarehouse(connection)
    run = dataclasses.replace(RunSettings.from_table(warehouse.read(SETTINGS)),
                              model_dir=Path(model_dir), retrain="always")
    started = time.perf_counter()
    registry = training.train_or_reuse(warehouse, connection.table(EXAMPLES), run)
    total = time.perf_counter() - started
    missed = [label for _, _, label in STEPS if label not in seconds]
    if missed:
        raise SystemExit(f"bench_training: timed steps never called: {', '.join(missed)}; the "
                         "training step no longer looks them up where STEPS patches them")
    current = registry[registry["is_current"]].iloc[0]
    metadata = json.loads(Path(current["onnx_path"]).with_suffix(".json").read_text())
    Path(report).write_text(json.dumps({
        "total_seconds": total, "step_seconds": seconds, **facts,
        **{key: metadata.get(key) for key in (
            "training_rows", "training_rows_available", "validation_rows", "epochs_run",
            "best_epoch", "train_seconds", "validation_cutoff", "training_cutoffs", "exporter")},
        "max_epochs": metadata["hyperparameters"]["max_epochs"],
        "patience": metadata["hyperparameters"]["patience"],
        "normalized_gini": (metadata.get("validation_metrics") or {}).get("normalized_gini"),
    }))


def has_relations(database: Path, *names: str) -> bool:
    """Whether ``database`` exists and holds every relation in ``names``."""
    if not database.exists():
        return False
    with duckdb.connect(str(database), read_only=True) as connection:
        present = {row[0] for row in connection.execute(
            "select table_name from information_schema.tables").fetchall()}
    return set(names) <= present


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reuse-examples", action="store_true",
                        help="keep an example table built by an earlier run of this benchmark")
    args = parser.parse_args()

    path = generate(args.customers)
    database = OUT_DIR / f"bench_training_{args.customers}.duckdb"
    build = None
    if not (args.reuse_examples and has_relations(database, EXAMPLES, SETTINGS)):
        database.unlink(missing_ok=True)
        vars_ = {"clv_transactions": path, "clv_as_of_date": AS_OF}
        build = measure(
            dbt_command("run", "--select", f"+{EXAMPLES}", SETTINGS, "--vars", json.dumps(vars_),
                        "--target-path", str(OUT_DIR / "target"),
                        "--log-path", str(OUT_DIR / "logs")),
            env={"CLV_DUCKDB_PATH": str(database)})

    runs, reports = [], []
    for _ in range(args.runs):
        model_dir = Path(tempfile.mkdtemp(prefix="clv-bench-training-", dir=OUT_DIR))
        report = model_dir / "report.json"
        try:
            runs.append(measure([PYTHON, __file__, "--child", str(database), str(model_dir),
                                 str(report)]))
            reports.append(json.loads(report.read_text()))
        finally:
            shutil.rmtree(model_dir, ignore_errors=True)

    def med(values):
        return statistics.median(values)

    first = reports[0]
    wall = med([r.seconds for r in runs])
    print(f"\n{row_count(path):,} transaction rows, {args.customers:,} customers; training: "
          f"median of {args.runs} runs, each in a fresh process\n")
    if build is not None:
        print(f"dbt run --select +{EXAMPLES} {SETTINGS}: {build.seconds:.1f} s, peak "
              f"{build.peak_mb:,.0f} MB (one run)")
    print(f"training cutoffs {', '.join(first['training_cutoffs'])}; validation cutoff "
          f"{first['validation_cutoff']}")
    with duckdb.connect(str(database), read_only=True) as connection:
        total, before_latest = connection.sql(
            "select count(*), count(*) filter (where cutoff_date < "
            "(select max(cutoff_date) from clv_training_examples)) from clv_training_examples"
        ).fetchall()[0]
    print(f"rows: clv_training_examples holds {total:,} rows, {before_latest:,} of them before the "
          f"validation cutoff: an md5 bucket sample of (customer_id, cutoff_date) "
          f"(int_clv__training_sample) of {first['training_rows_available']:,} training and "
          f"{first['validation_rows']:,} validation rows (clv_max_train_rows plus 5%, "
          f"clv_max_validation_rows), of which training uses {first['training_rows']:,} (a "
          f"seeded uniform trim)")
    print(f"epochs run {[r['epochs_run'] for r in reports]} (best {first['best_epoch']}, "
          f"max_epochs {first['max_epochs']}, patience {first['patience']}); seconds per epoch "
          f"(first run) {first.get('epoch_seconds')}; exporter {first['exporter']}; network "
          f"normalized gini {first['normalized_gini']:.3f}\n")
    print("| step | median s |")
    print("|---|---|")
    steps = sorted({name for r in reports for name in r["step_seconds"]},
                   key=lambda n: -med([r["step_seconds"].get(n, 0.0) for r in reports]))
    for name in steps:
        print(f"| {name} | {med([r['step_seconds'].get(name, 0.0) for r in reports]):.1f} |")
    print(f"| train_or_reuse (in process) | {med([r['total_seconds'] for r in reports]):.1f} |")
    print(f"| process wall (imports included) | {wall:.1f} |")
    print(f"\npeak memory of the training process: {med([r.peak_mb for r in runs]):,.0f} MB")
    print(f"wall time to a converged model: {wall:.1f} s "
          f"({'meets' if wall < TARGET_SECONDS else 'misses'} the {TARGET_SECONDS} s target)")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(*sys.argv[2:])
    else:
        main()
