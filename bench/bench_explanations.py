"""Cost of the prediction explanations against plain scoring, in customers/second.

    python bench/bench_explanations.py 100000
    python bench/bench_explanations.py 1000000 --runs 1

Trains a network of the project's default shape as bench_scoring.py does (synthetic examples
widened with noise columns to the 46 static inputs of a default run, one network, calibrated,
exported), and splits the static inputs into groups of the default sizes: the eight declared
groups of ``clv_feature_groups()`` (9, 7, 15, 2, 2, 1, 1 and 5 columns) and four columns in the
place of ``btyd``, plus ``activity_sequence``: ten groups. Every group differs from the
reference for nearly every customer here, so each customer takes the full 19 states (19 rows of
the network's head, and one of its sequence encoder: ``clv.explain``); on
real data a group that is constant in a whole chunk (no events, no customer attributes) is
skipped, and explanations get cheaper.

Then, on N customers (a block of at most 100,000 synthetic customers, repeated, so memory stays
flat at any N), it times the per-customer work of the two dbt models on the same Arrow batches:
``clv.score.score_batches`` (int_clv__scores) and ``clv.explain.explain_batches``
(clv_prediction_explanations), both with one batch in flight per core. Reading the warehouse,
the BTYD features and writing the table are the same for both and not timed. Each figure is the
median of ``--runs`` passes, after a warm-up on one batch.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from bench_scoring import CHANNELS, DEFAULT_STATIC, static_features, synthetic_table

from clv.config import TrainSettings, available_cores
from clv.data import model_inputs
from clv.explain import Reference, explain_batches, feature_groups
from clv.export import export_model
from clv.level import SpendLevel
from clv.pipeline.training import calibrate
from clv.score import DEFAULT_BATCH_SIZE, LoadedModel, load_verified, score_batches
from clv.train import train

# The network's own values (a spend factor of 1): the level multiplies every value alike.
NO_LEVEL = SpendLevel(btyd_total=0.0, network_total=1.0, btyd_level_correction=0.0,
                      network_level_weight=1.0)

# Column counts of the declared groups with the default vars, then the four BTYD outputs.
GROUP_SIZES = {"recency_frequency": 9, "monetary": 7, "trailing_windows": 15, "trends": 2,
               "refunds": 2, "categories": 1, "attributes": 1, "events": 5, "btyd_outputs": 4}
BLOCK = 100_000  # distinct synthetic customers generated


def declared_groups(static: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """The static inputs cut, in their network order, into groups of :data:`GROUP_SIZES`."""
    assert len(static) == sum(GROUP_SIZES.values()), "the model must have the default width"
    groups, start = {}, 0
    for name, size in GROUP_SIZES.items():
        groups[name] = static[start:start + size]
        start += size
    return groups


def trained_model(model_dir: Path, customers: int, epochs: int) -> tuple[LoadedModel, Reference]:
    """A default-shape network exported to ``model_dir``, and its reference customer."""
    examples = synthetic_table(customers, 3, DEFAULT_STATIC, seed=0)
    result = train(examples, static_features(DEFAULT_STATIC),
                   TrainSettings(max_epochs=epochs, ensemble_size=1), log=lambda _: None,
                   channels=CHANNELS)
    calibrate(result)
    export_model(result, model_dir, log=lambda _: None)
    model = load_verified(model_dir)
    return model, Reference.median_of(*model_inputs(examples, model.spec),
                                      fill=model.spec.static_fill)


def repeated(block: pa.Table, customers: int, batch_rows: int) -> list[pa.RecordBatch]:
    """Batches of ``batch_rows`` rows, ``customers`` rows in all, cycling through ``block``."""
    batches = block.to_batches(max_chunksize=batch_rows)
    out, total, index = [], 0, 0
    while total < customers:
        batch = batches[index % len(batches)].slice(0, customers - total)
        out.append(batch)
        total += batch.num_rows
        index += 1
    return out


def seconds(run: Callable[[], None], runs: int) -> float:
    """Median wall seconds of ``runs`` calls of ``run``."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("customers", type=int, help="customers scored and explained per pass")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clv-bench-explanations-") as model_dir:
        model, reference = trained_model(Path(model_dir), args.train_customers, args.epochs)
    groups = feature_groups(model.spec, declared_groups(model.spec.static))
    block = synthetic_table(min(args.customers, BLOCK), 1, DEFAULT_STATIC, seed=7)
    batches = repeated(block, args.customers, args.batch_rows)

    def scoring(data: list[pa.RecordBatch]) -> None:
        for _ in score_batches(model, data, batch_size=args.batch_rows):
            pass

    def explaining(data: list[pa.RecordBatch]) -> None:
        for _ in explain_batches(model, data, groups, reference, NO_LEVEL, args.batch_rows):
            pass

    scoring(batches[:1])  # warm-up: sessions, thread pools, page faults
    explaining(batches[:1])
    score_s = seconds(lambda: scoring(batches), args.runs)
    explain_s = seconds(lambda: explaining(batches), args.runs)
    active = sum(1 for g in groups if g.size)
    score_rate, explain_rate = args.customers / score_s, args.customers / explain_s
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{args.customers:,} customers, {active} feature groups ({2 * active - 1} states "
          f"per explained customer), batch {args.batch_rows:,}, {model.workers} batches in "
          f"flight on {available_cores()} cores, median of {args.runs} pass(es)\n")
    print("| path | seconds | customers/s |")
    print("|---|---|---|")
    print(f"| scoring (clv.score.score_batches) | {score_s:,.2f} | {score_rate:,.0f} |")
    print(f"| explanations (clv.explain.explain_batches) | {explain_s:,.2f} | "
          f"{explain_rate:,.0f} |")
    print(f"\nexplanations take {explain_s / score_s:.1f}x the time of scoring per customer; "
          f"process peak memory {peak_mb:,.0f} MB (training and the block of "
          f"{block.num_rows:,} input customers included)")


if __name__ == "__main__":
    main()
