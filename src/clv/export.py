"""Export a trained network to ONNX, prove onnxruntime reproduces it, and write the artifact.

``ExportSettings.exporter = "auto"`` tries the TorchScript exporter (``torch.onnx.export(...,
dynamo=False)``) first and the dynamo exporter (``dynamo=True``) when TorchScript raises or its
graph fails the checks. On this network both write the same computation: onnxruntime runs the
two graphs equally fast and returns the same outputs (bit-identical on the shipped sample's
model), and :mod:`clv.sql_scoring` compiles either. TorchScript exports the sample's
three-network ensemble 10 to 20 times faster (``bench/bench_export.py``): most of dynamo's time
goes to onnxscript's pattern rewriter, the rest to tracing and decompositions. PyTorch 2.9
deprecated the TorchScript exporter; when a release removes it, ``auto`` uses dynamo.

Either way the graph has inputs ``static`` [batch, n_static] and ``sequence`` [batch, n_periods,
n_channels] (float32, raw feature values) and outputs ``purchase_probability``, ``network_clv``,
``mu``, ``sigma`` and ``log_no_purchase`` (log(1 - purchase_probability) from the logit)
([batch] each), with a dynamic batch axis.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch

import clv
from clv.artifacts import (
    METADATA_FORMAT,
    ModelArtifact,
    atomic_write_bytes,
    atomic_write_json,
    metadata_path,
    new_version,
    onnx_path,
    read_metadata,
    sha256_bytes,
)
from clv.config import FEATURE_DEFINITIONS, INPUT_NAMES, OUTPUT_NAMES, ExportSettings
from clv.network import ClvNetwork
from clv.train import TrainResult

__all__ = ["ExportParityError", "export_model", "export_onnx_bytes", "update_metadata"]

SEQUENCE_LAYOUT = ("sequence[b, t, c] = seq_<channels[c]>_lag_<n_periods - t>: periods oldest "
                   "first, channels in metadata order")
NORMALISATION = ("inside the graph: v = sign(x) * log1p(|x|), then (v - mean) / std with "
                 "training statistics (static per column, sequence per channel); feed raw values, "
                 "a missing static value as its static_fill, a missing sequence value as 0")
# Keys that identify the model file and its interface; update_metadata refuses to change them.
PROTECTED_KEYS = frozenset({"format", "model_version", "onnx_file", "sha256", "created_at",
                            "features", "static_features", "static_fill", "sequence_features",
                            "channels", "n_periods", "inputs", "outputs"})


class ExportParityError(RuntimeError):
    """onnxruntime outputs differ from PyTorch beyond the tolerance."""


# The order "auto" tries the exporters in: the faster first (see the module docstring).
AUTO_EXPORTERS = ("torchscript", "dynamo")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence exporter warnings (the TorchScript exporter's deprecation, tracer notes) and
    optional-dependency logs, during the export only."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx_bytes(model: ClvNetwork, exporter: str, opset: int) -> bytes:
    """Serialised ONNX model of ``model`` (in eval mode) from the chosen exporter."""
    model.eval()
    example = (torch.zeros(4, model.n_static), torch.zeros(4, model.n_periods, model.n_channels))
    with _quiet_exporter(), torch.no_grad():
        if exporter == "dynamo":
            batch = torch.export.Dim("batch")
            program = torch.onnx.export(
                model, example, dynamo=True, opset_version=opset, input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES), verbose=False, report=False, optimize=True,
                dynamic_shapes={"static": {0: batch}, "sequence": {0: batch}})
            return program.model_proto.SerializeToString()
        if exporter == "torchscript":
            buffer = io.BytesIO()
            axes = {name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES}
            torch.onnx.export(model, example, buffer, dynamo=False, opset_version=opset,
                              input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                              dynamic_axes=axes, do_constant_folding=True)
            return buffer.getvalue()
    raise ValueError(f"unknown exporter {exporter!r}")


def _check_graph(proto: onnx.ModelProto, opset: int) -> None:
    onnx.checker.check_model(proto, full_check=True)
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    if inputs != list(INPUT_NAMES) or outputs != list(OUTPUT_NAMES):
        raise ExportParityError(f"graph interface is {inputs} -> {outputs}, expected "
                                f"{list(INPUT_NAMES)} -> {list(OUTPUT_NAMES)}")
    version = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if version != opset:
        raise ExportParityError(f"graph uses opset {version}, requested {opset}")


def _parity_inputs(result: TrainResult, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Held-out rows, the same rows with each column shuffled independently (new combinations of
    realistic values), and one all-zero row."""
    static = result.validation_static[:rows]
    sequence = result.validation_sequence[:rows]
    rng = np.random.default_rng(seed)
    mixed_static = np.stack([rng.permutation(col) for col in static.T], axis=1)
    flat = sequence.reshape(len(sequence), -1)
    mixed_sequence = np.stack([rng.permutation(col) for col in flat.T], axis=1)
    static = np.concatenate([static, mixed_static, np.zeros((1, static.shape[1]))])
    sequence = np.concatenate([sequence, mixed_sequence.reshape(sequence.shape),
                               np.zeros((1, *sequence.shape[1:]))])
    return static.astype(np.float32), sequence.astype(np.float32)


def check_parity(model: ClvNetwork, onnx_bytes: bytes, static: np.ndarray, sequence: np.ndarray,
                 rtol: float, atol: float) -> dict[str, float]:
    """Run onnxruntime and PyTorch on the same rows (all at once and a batch of one); raise
    ExportParityError if any output differs beyond ``atol + rtol * |torch|``."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    model.eval()
    with torch.no_grad():
        expected = [t.numpy() for t in model(torch.from_numpy(static), torch.from_numpy(sequence))]
    got = session.run(list(OUTPUT_NAMES), {"static": static, "sequence": sequence})
    single = session.run(list(OUTPUT_NAMES), {"static": static[:1], "sequence": sequence[:1]})
    worst_abs, worst_rel = 0.0, 0.0
    for name, ref, out, one in zip(OUTPUT_NAMES, expected, got, single, strict=True):
        for candidate, reference in ((out, ref), (one, ref[:1])):
            if candidate.shape != reference.shape:
                raise ExportParityError(f"{name}: onnxruntime shape {candidate.shape}, "
                                        f"PyTorch {reference.shape}")
            if not np.allclose(candidate, reference, rtol=rtol, atol=atol):
                diff = np.abs(candidate.astype(np.float64) - reference)
                i = int(np.nanargmax(diff - rtol * np.abs(reference)))
                raise ExportParityError(f"{name}: onnxruntime {candidate.flat[i]!r} vs PyTorch "
                                        f"{reference.flat[i]!r} at row {i} (rtol {rtol}, atol "
                                        f"{atol})")
            diff = np.abs(candidate.astype(np.float64) - reference)
            worst_abs = max(worst_abs, float(diff.max(initial=0.0)))
            rel = diff / np.maximum(np.abs(reference), 1e-12)
            worst_rel = max(worst_rel, float(rel[np.abs(reference) > atol].max(initial=0.0)))
    return {"rows": len(static), "max_abs_diff": worst_abs, "max_rel_diff": worst_rel}


def export_model(result: TrainResult, model_dir: Path, run_info: dict[str, Any] | None = None,
                 settings: ExportSettings | None = None,
                 log: Callable[[str], None] = print) -> ModelArtifact:
    """Export ``result.model`` to ``model_dir/clv_model_<version>.onnx`` with its metadata JSON.

    ``run_info`` carries run facts saved in the metadata: ``fingerprint`` (to find this model
    again for the same settings and data), ``as_of_date``, ``horizon_days`` and anything else
    JSON-serialisable (saved under ``run_info``).
    """
    settings = settings or ExportSettings()
    run_info = dict(run_info or {})
    started = time.perf_counter()
    model = result.model
    model.eval()
    static, sequence = _parity_inputs(result, settings.parity_rows, result.settings.seed)
    exporters = AUTO_EXPORTERS if settings.exporter == "auto" else (settings.exporter,)
    failures: dict[str, str] = {}
    onnx_bytes, parity, chosen = b"", {}, ""
    for exporter in exporters:
        try:
            candidate = export_onnx_bytes(model, exporter, settings.opset)
            _check_graph(onnx.load_from_string(candidate), settings.opset)
            parity = check_parity(model, candidate, static, sequence, settings.parity_rtol,
                                  settings.parity_atol)
        except Exception as error:  # noqa: BLE001 - every failure is reported below
            failures[exporter] = f"{type(error).__name__}: {error}"
            log(f"{exporter} ONNX export rejected: {failures[exporter]}")
            continue
        onnx_bytes, chosen = candidate, exporter
        break
    if not chosen:
        raise ExportParityError(f"no exporter produced a model matching PyTorch: {failures}")
    seconds = time.perf_counter() - started

    sha = sha256_bytes(onnx_bytes)
    created = datetime.now(UTC)
    version = new_version(sha, created)
    model_dir = Path(model_dir)
    onnx_file = onnx_path(model_dir, version)
    spec = result.spec
    metadata: dict[str, Any] = {
        "format": METADATA_FORMAT,
        "model_version": version,
        "onnx_file": onnx_file.name,
        "sha256": sha,
        "created_at": created.isoformat(),
        "fingerprint": run_info.pop("fingerprint", None),
        "feature_definitions": FEATURE_DEFINITIONS,
        "as_of_date": run_info.pop("as_of_date", None),
        "horizon_days": run_info.pop("horizon_days", None),
        "training_cutoffs": result.training_cutoffs,
        "validation_split": result.validation_split,
        "validation_cutoff": result.validation_cutoff,
        **spec.to_dict(),
        "sequence_layout": SEQUENCE_LAYOUT,
        "inputs": {"static": ["batch", len(spec.static)],
                   "sequence": ["batch", spec.n_periods, len(spec.channels)]},
        "outputs": list(OUTPUT_NAMES),
        "normalisation": NORMALISATION,
        "normalisation_stats": result.normalisation,
        "hyperparameters": result.settings.to_dict(),
        "networks": result.networks,  # what clv_ensemble_size 0 (automatic) chose
        "export_settings": settings.to_dict(),
        "exporter": chosen,
        "exporter_failures": failures,
        "opset": settings.opset,
        "parity": parity,
        "training_rows": result.train_rows,
        "training_rows_available": result.train_rows_available,
        "validation_rows": result.validation_rows,
        "validation_loss": result.validation_loss,
        "largest_horizon_spend": result.largest_label,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_seconds": round(result.seconds, 3),
        "export_seconds": round(seconds, 3),  # export, graph checks and parity check
        "validation_metrics": {},
        "run_info": run_info,
        "library_versions": {"clv": clv.__version__, "torch": torch.__version__,
                             "onnx": onnx.__version__, "onnxruntime": ort.__version__},
    }
    atomic_write_bytes(onnx_file, onnx_bytes)
    meta_file = metadata_path(model_dir, version)
    atomic_write_json(meta_file, metadata)
    log(f"exported {onnx_file.name} in {seconds:.1f} s ({chosen} exporter, opset "
        f"{settings.opset}, parity max rel diff {parity['max_rel_diff']:.2e} on {parity['rows']} "
        "rows)")
    return ModelArtifact(version=version, onnx_path=onnx_file, metadata_path=meta_file,
                         metadata=read_metadata(meta_file))


def update_metadata(artifact: ModelArtifact, updates: dict[str, Any]) -> ModelArtifact:
    """Merge ``updates`` into the artifact's metadata JSON (atomically) and return it re-read.

    Dict values are merged one level deep (e.g. ``{"validation_metrics": {"gini": 0.6}}`` keeps
    earlier metrics). Keys that identify the file or its interface cannot be changed.
    """
    blocked = sorted(PROTECTED_KEYS & set(updates))
    if blocked:
        raise ValueError(f"metadata keys {blocked} identify the model and cannot be updated")
    metadata = read_metadata(artifact.metadata_path)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(metadata.get(key), dict):
            metadata[key] = {**metadata[key], **value}
        else:
            metadata[key] = value
    atomic_write_json(artifact.metadata_path, metadata)
    return ModelArtifact(version=artifact.version, onnx_path=artifact.onnx_path,
                         metadata_path=artifact.metadata_path,
                         metadata=read_metadata(artifact.metadata_path))
