"""Export benchmark: the ONNX export of the shipped sample's model, per exporter.

    python bench/bench_export.py --runs 3

Builds the sample's ``clv_training_examples`` and ``clv_run_settings`` once (``dbt build`` of
them and their parents, seeds included, into a DuckDB file under bench/out), trains the model
the training step trains on them (BTYD inputs per cutoff, the automatic ensemble of three
networks, the calibration) and times, for the TorchScript and the dynamo exporter: the export
itself (``clv.export.export_onnx_bytes``), the graph check and the parity check against
PyTorch; then ``clv.export.export_model`` as the training step calls it (``exporter =
"auto"``). Prints medians over ``--runs``, the graphs' node counts and the largest difference
between the two graphs' onnxruntime outputs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import onnx
import onnxruntime as ort
from common import OUT_DIR, dbt_command, measure

DATABASE = OUT_DIR / "bench_export_sample.duckdb"
EXAMPLES, SETTINGS = "clv_training_examples", "clv_run_settings"
EXPORTERS = ("torchscript", "dynamo")


def sample_model():
    """The sample's trained, calibrated model, as the training step builds it."""
    from clv import hybrid
    from clv.config import TrainSettings
    from clv.pipeline import training
    from clv.pipeline.settings import RunSettings
    from clv.train import train
    from clv.warehouse import DuckDBWarehouse

    with duckdb.connect(str(DATABASE), read_only=True) as connection:
        warehouse = DuckDBWarehouse(connection)
        run = RunSettings.from_table(warehouse.read(SETTINGS))
        settings = TrainSettings(seed=run.seed, ensemble_size=run.ensemble_size)
        table = training.read_examples(warehouse, connection.table(EXAMPLES), run)
    table = training.trainable_examples(table, run, settings)
    table, _ = hybrid.add_features_per_cutoff(table, run.horizon_days)
    result = train(table, run.model_static_features, settings, log=lambda _: None,
                   channels=run.channels)
    training.calibrate(result)
    return result


def timed(function: Callable, runs: int) -> tuple[float, object]:
    seconds, value = [], None
    for _ in range(runs):
        started = time.perf_counter()
        value = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not DATABASE.exists():
        try:
            build = measure(dbt_command("build", "--select", f"+{EXAMPLES}", SETTINGS,
                                        "--exclude-resource-type", "test", "unit_test",
                                        "--target-path", str(OUT_DIR / "target"),
                                        "--log-path", str(OUT_DIR / "logs")),
                            env={"CLV_DUCKDB_PATH": str(DATABASE)})
        except SystemExit:
            DATABASE.unlink(missing_ok=True)
            raise
        print(f"dbt build --select +{EXAMPLES} {SETTINGS} on the sample: {build.seconds:.1f} s")

    from clv import export
    from clv.config import ExportSettings

    result = sample_model()
    members = len(getattr(result.model.base, "members", [result.model.base]))
    static, sequence = export._parity_inputs(result, ExportSettings().parity_rows,
                                             result.settings.seed)
    print(f"\nthe sample's model: {members} network(s), calibrated; medians of {args.runs} runs\n")
    print("| exporter | export s | graph check s | parity check s | nodes | bytes |")
    print("|---|---|---|---|---|---|")
    outputs = {}
    for exporter in EXPORTERS:
        seconds, data = timed(lambda e=exporter: export.export_onnx_bytes(result.model, e, 18),
                              args.runs)
        proto = onnx.load_from_string(data)
        check, _ = timed(lambda p=proto: export._check_graph(p, result.model, 18), args.runs)
        parity, _ = timed(lambda d=data: export.check_parity(
            result.model, d, static, sequence, 1e-4, 1e-5), args.runs)
        print(f"| {exporter} | {seconds:.1f} | {check:.2f} | {parity:.2f} | "
              f"{len(proto.graph.node)} | {len(data):,} |")
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        outputs[exporter] = session.run(None, {"static": static, "sequence": sequence})
    difference = max(float(np.max(np.abs(a - b))) for a, b in zip(*outputs.values(),
                                                                    strict=True))
    print(f"\nlargest difference between the two graphs' onnxruntime outputs on "
          f"{len(static):,} rows: {difference:.3g}")
    with tempfile.TemporaryDirectory() as directory:
        seconds, artifact = timed(lambda: export.export_model(
            result, Path(directory), {}, log=lambda _: None), args.runs)
    print(f"export_model (exporter 'auto': {artifact.metadata['exporter']}): {seconds:.1f} s; "
          f"metadata export_seconds {json.dumps(artifact.metadata['export_seconds'])}")


if __name__ == "__main__":
    main()
