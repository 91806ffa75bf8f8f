"""Scoring throughput: onnxruntime vs the same network in PyTorch eager, against the FLOP limit.

    python bench/bench_scoring.py --rows 262144 --runs 5

Trains a network of the project's default shape (``TrainSettings()``; only ``max_epochs`` is
lowered, which changes the weights, not the work per customer; one network, as trained from
100,000 training rows on) on ``clv.data.synthetic_examples``
widened with noise columns to the static width of a real example table, wraps it in the spend
calibration like the pipeline does, and exports it with ``clv.export.export_model``. Then, on
the same inputs and in the same process, for each batch size it times:
  - ``clv.score.score_batches``: the production path from Arrow record batches (feature matrix,
    onnxruntime, quantiles, Arrow output), one batch in flight per core;
  - the raw onnxruntime session, one stream and one stream per core (pre-built float32 arrays);
  - PyTorch eager (``inference_mode``), one thread and every core.
Each figure is the median of ``--runs`` passes over ``--rows`` customers, in customers/second.

It also counts the network's multiply-adds per customer from the module shapes (Conv1d, the
unrolled GRU, the MLP head, the calibration) and measures the machine's peak float32 matmul rate
on every core, and prints how far each path is from that arithmetic limit.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from clv.calibration import CalibratedNetwork
from clv.config import INPUT_NAMES, OUTPUT_NAMES, TrainSettings, available_cores
from clv.data import SYNTHETIC_STATIC_FEATURES, model_inputs, synthetic_examples
from clv.export import export_model
from clv.network import ClvNetwork
from clv.pipeline.training import calibrate
from clv.score import load_verified, make_session, score_batches
from clv.train import train

# Static features of a real run: the declared SQL features of clv_run_settings (42 with the
# default vars) plus the four BTYD outputs the pipeline adds.
DEFAULT_STATIC = 46
# The sequence channels in the order clv_run_settings declares them.
CHANNELS = ("orders", "revenue", "active_days")


def extra_columns(static_width: int) -> tuple[str, ...]:
    """Names of the noise columns that widen ``synthetic_examples`` to ``static_width``."""
    return tuple(f"extra_{k:02d}"
                 for k in range(max(0, static_width - len(SYNTHETIC_STATIC_FEATURES))))


def static_features(static_width: int) -> tuple[str, ...]:
    """The declared static features of :func:`synthetic_table`."""
    return SYNTHETIC_STATIC_FEATURES + extra_columns(static_width)


def synthetic_table(customers: int, cutoffs: int, static_width: int, seed: int) -> pa.Table:
    """``synthetic_examples`` with extra noise columns up to ``static_width`` static features."""
    table = synthetic_examples(n_customers=customers, n_cutoffs=cutoffs, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for name in extra_columns(static_width):
        table = table.append_column(name, pa.array(rng.lognormal(1.0, 1.0, table.num_rows)))
    return table


def network_macs(net: ClvNetwork, knots: int) -> dict[str, int]:
    """Multiply-adds per customer of each part, from the module shapes."""
    periods = net.n_periods
    conv = net.conv
    hidden = net.gru.hidden_size
    return {
        "conv1d": periods * conv.out_channels * conv.in_channels * conv.kernel_size[0],
        # input projections at every step; hidden projections from step 2 (h_0 = 0)
        "gru": periods * 3 * hidden * net.gru.input_size + (periods - 1) * 3 * hidden * hidden,
        "mlp": sum(layer.in_features * layer.out_features for layer in net.head
                   if isinstance(layer, torch.nn.Linear)),
        "calibration": knots,  # one relu(x - x_k) * slope_k per knot
    }


def elementwise_ops(net: ClvNetwork, knots: int) -> int:
    """Element-wise operations per customer (transcendentals count as one): the part of the
    graph that is not multiply-adds, and which dominates the node count."""
    periods, channels, hidden = net.n_periods, net.n_channels, net.gru.hidden_size
    inputs = net.n_static + periods * channels
    normalise = inputs * 5  # sign, abs, log1p, subtract, multiply
    conv = periods * net.conv.out_channels * 2  # bias, relu
    gru = periods * (2 * hidden + hidden + 2 * hidden + 3 * hidden)  # sigmoid, tanh, r*h, blend
    head = sum(layer.out_features * 2 for layer in net.head if isinstance(layer, torch.nn.Linear))
    outputs = 12 + knots * 3  # ZILN parameters, mean, log/exp of calibration
    return normalise + conv + gru + head + outputs


def peak_gflops(threads: int, size: int = 2048, repeats: int = 7) -> float:
    """Median float32 GFLOP/s of a square matmul on ``threads`` torch threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(size, size)
        b = torch.randn(size, size)
        torch.mm(a, b)
        rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            torch.mm(a, b)
            rates.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
        return statistics.median(rates)
    finally:
        torch.set_num_threads(previous)


def throughput(run: Callable[[], None], rows: int, runs: int) -> float:
    """Median customers/second of ``runs`` calls of ``run`` (after one warm-up call)."""
    run()
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        rates.append(rows / (time.perf_counter() - started))
    return statistics.median(rates)


def batches_of(total: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=262_144, help="customers scored per pass")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4096, 16384, 65536])
    parser.add_argument("--static", type=int, default=DEFAULT_STATIC,
                        help="static feature columns of the model")
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    cores = available_cores()

    # A model of the default shape, calibrated and exported as the pipeline does it.
    examples = synthetic_table(args.train_customers, 3, args.static, seed=0)
    # One network: what the pipeline trains from 100,000 training rows on, i.e. at the scale
    # where scoring speed matters (smaller data get an ensemble of three, three times the work).
    settings = TrainSettings(max_epochs=args.epochs, ensemble_size=1)
    defaults = TrainSettings()
    assert (settings.conv_channels, settings.gru_hidden, settings.mlp_hidden) == (
        defaults.conv_channels, defaults.gru_hidden, defaults.mlp_hidden)
    result = train(examples, static_features(args.static), settings, log=lambda _: None,
                   channels=CHANNELS)
    knots = len(calibrate(result).knots_x)
    with tempfile.TemporaryDirectory(prefix="clv-bench-scoring-") as model_dir:
        export_model(result, Path(model_dir), log=lambda _: None)
        loaded = load_verified(model_dir)
        session_1 = make_session(loaded.artifact.onnx_path.read_bytes(), intra_op_threads=1)
    network: CalibratedNetwork = result.model.eval()
    base = network.base

    # The same customers for every path.
    scoring = synthetic_table(args.rows, 1, args.static, seed=7)
    spec = loaded.spec
    static, sequence = model_inputs(scoring, spec)
    record_batches = scoring.to_batches(max_chunksize=100_000)
    rows = scoring.num_rows
    t_static, t_sequence = torch.from_numpy(static), torch.from_numpy(sequence)

    # Same outputs from both engines on these inputs.
    ort_out = loaded.session.run(list(OUTPUT_NAMES), {INPUT_NAMES[0]: static[:4096],
                                                      INPUT_NAMES[1]: sequence[:4096]})
    with torch.inference_mode():
        torch_out = network(t_static[:4096], t_sequence[:4096])
    max_rel = max(float(np.max(np.abs(a - b.numpy()) / (np.abs(b.numpy()) + 1e-6)))
                  for a, b in zip(ort_out, torch_out, strict=True))

    def ort_stream(size: int, workers: int) -> Callable[[], None]:
        parts = batches_of(rows, size)

        def one(part: slice) -> None:
            session_1.run(list(OUTPUT_NAMES), {INPUT_NAMES[0]: static[part],
                                               INPUT_NAMES[1]: sequence[part]})

        def run() -> None:
            if workers == 1:
                for part in parts:
                    one(part)
            else:
                with ThreadPoolExecutor(workers) as pool:
                    list(pool.map(one, parts))
        return run

    def torch_eager(size: int, threads: int) -> Callable[[], None]:
        parts = batches_of(rows, size)

        def run() -> None:
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                with torch.inference_mode():
                    for part in parts:
                        network(t_static[part], t_sequence[part])
            finally:
                torch.set_num_threads(previous)
        return run

    def production(size: int) -> Callable[[], None]:
        def run() -> None:
            for _ in score_batches(loaded, record_batches, batch_size=size):
                pass
        return run

    macs = network_macs(base, knots)
    total_macs = sum(macs.values())
    flops = 2 * total_macs
    elementwise = elementwise_ops(base, knots)
    peak_all = peak_gflops(cores)
    peak_one = peak_gflops(1)
    limit = peak_all * 1e9 / flops

    paths: list[tuple[str, Callable[[int], Callable[[], None]], float]] = [
        (f"clv.score.score_batches, {loaded.workers} batches in flight (production)",
         production, peak_all),
        ("onnxruntime session, 1 thread", lambda s: ort_stream(s, 1), peak_one),
        (f"onnxruntime session, {cores} concurrent streams", lambda s: ort_stream(s, cores),
         peak_all),
        ("PyTorch eager, 1 thread", lambda s: torch_eager(s, 1), peak_one),
        (f"PyTorch eager, {cores} threads", lambda s: torch_eager(s, cores), peak_all),
    ]
    results: dict[tuple[str, int], float] = {}
    for size in args.batch_sizes:
        for name, make, _ in paths:
            results[(name, size)] = throughput(make(size), rows, args.runs)

    widths = tuple(layer.out_features for layer in base.head
                   if isinstance(layer, torch.nn.Linear))
    print(f"\nnetwork: {base.n_static} static, {base.n_periods} periods x {base.n_channels} "
          f"channels, conv {base.conv.out_channels}, GRU {base.gru.hidden_size}, MLP {widths}"
          f", {knots} calibration knots; onnxruntime vs PyTorch max rel diff {max_rel:.1e}")
    print("multiply-adds per customer: " + ", ".join(f"{k} {v:,}" for k, v in macs.items())
          + f"; total {total_macs:,} MACs = {flops:,} FLOPs (+ about {elementwise:,} "
          "element-wise ops)")
    banded = base.n_periods ** 2 * base.conv.out_channels * base.conv.in_channels
    print(f"(the graph runs the convolution as a banded matrix product, {banded:,} multiply-adds "
          f"instead of {macs['conv1d']:,}; the limit below counts the network's {total_macs:,})")
    print(f"peak float32 matmul (torch.mm 2048^2): {peak_one:.1f} GFLOP/s on 1 core, "
          f"{peak_all:.1f} GFLOP/s on {cores} cores -> arithmetic limit "
          f"{limit / 1e6:,.1f} M customers/s on {cores} cores")
    print(f"{rows:,} customers per pass, median of {args.runs} passes, customers/second\n")
    header = " | ".join(f"batch {size:,}" for size in args.batch_sizes)
    print(f"| path | {header} | best: % of its arithmetic limit |")
    print("|---|" + "---|" * len(args.batch_sizes) + "---|")
    for name, _, peak in paths:
        rates = [results[(name, size)] for size in args.batch_sizes]
        share = max(rates) * flops / (peak * 1e9)
        cells = " | ".join(f"{rate:,.0f}" for rate in rates)
        print(f"| {name} | {cells} | {share:.2%} |")
    best = max(results[(paths[0][0], size)] for size in args.batch_sizes)
    target = 500_000
    print(f"\nproduction path best: {best:,.0f} customers/s "
          f"({'meets' if best >= target else 'misses'} the {target:,}/s target on {cores} cores)")


if __name__ == "__main__":
    main()
