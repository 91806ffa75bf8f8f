"""ONNX export: parity with PyTorch, metadata, checksums, atomic writes and artifact lookup."""

import copy
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import clv.export as export_module
from clv.artifacts import atomic_write_bytes, find_artifact, latest_artifact, list_artifacts
from clv.calibration import CalibratedNetwork
from clv.config import FEATURE_DEFINITIONS, ExportSettings, TrainSettings
from clv.data import SYNTHETIC_STATIC_FEATURES, labels, synthetic_examples
from clv.export import (
    ExportParityError,
    check_parity,
    export_model,
    export_onnx_bytes,
    update_metadata,
)
from clv.network import ClvNetwork
from clv.pipeline.registry import newest_compatible
from clv.pipeline.settings import RunSettings
from clv.score import ModelMismatchError
from clv.train import train

CHANNELS = ("orders", "revenue", "active_days")  # the network order clv_run_settings declares
RUN_INFO = {"fingerprint": "fp-123", "horizon_days": 365, "as_of_date": "2025-01-01",
            "period_days": 30}


@pytest.fixture(scope="module")
def result():
    table = synthetic_examples(n_customers=400, n_cutoffs=3, seed=21)
    return train(table, SYNTHETIC_STATIC_FEATURES, TrainSettings(max_epochs=3, num_threads=1),
                 log=lambda _: None, channels=CHANNELS)


@pytest.fixture(scope="module")
def artifact(result, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("models")
    return export_model(result, model_dir, RUN_INFO, log=lambda _: None)


def random_rows(n: int, n_static: int, n_periods: int, n_channels: int, seed: int):
    rng = np.random.default_rng(seed)
    static = rng.gamma(0.5, 300.0, (n, n_static)) * np.where(rng.random((n, n_static)) < 0.1,
                                                             -1, 1)
    static[rng.random((n, n_static)) < 0.2] = 0.0
    sequence = rng.poisson(0.8, (n, n_periods, n_channels)) * rng.gamma(1.0, 40.0, (n, 1, 1))
    return static.astype(np.float32), sequence.astype(np.float32)


@pytest.fixture(scope="module")
def dynamo_onnx(result) -> bytes:
    return export_onnx_bytes(result.model, "dynamo", 18)


def test_torchscript_exporter_chosen_and_graph_valid(artifact, result):
    meta = artifact.metadata
    assert meta["exporter"] == "torchscript" and meta["exporter_failures"] == {}
    assert meta["export_seconds"] > 0
    model = onnx.load(artifact.onnx_path)
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]
    assert [i.name for i in model.graph.input] == ["static", "sequence"]
    assert [o.name for o in model.graph.output] == ["purchase_probability", "network_clv",
                                                    "mu", "sigma", "log_no_purchase"]
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input]
    assert isinstance(dims[0][0], str) and dims[0][1:] == [len(result.spec.static)]
    assert dims[1][1:] == [result.spec.n_periods, len(result.spec.channels)]


@pytest.mark.parametrize("n", [1, 7, 1000])
def test_onnx_parity_on_random_rows(artifact, result, n):
    spec = result.spec
    static, sequence = random_rows(n, len(spec.static), spec.n_periods, len(spec.channels), n)
    session = ort.InferenceSession(str(artifact.onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"static": static, "sequence": sequence})
    with torch.no_grad():
        expected = result.model(torch.from_numpy(static), torch.from_numpy(sequence))
    for out, ref in zip(got, expected, strict=True):
        assert out.shape == (n,)
        np.testing.assert_allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)


def test_metadata_contents(artifact, result):
    meta = json.loads(artifact.metadata_path.read_text())
    version = meta["model_version"]
    assert re.fullmatch(r"\d{8}T\d{6}Z_[0-9a-f]{10}", version)
    assert artifact.onnx_path.name == f"clv_model_{version}.onnx" == meta["onnx_file"]
    assert artifact.metadata_path.name == f"clv_model_{version}.json"
    assert meta["sha256"] == hashlib.sha256(artifact.onnx_path.read_bytes()).hexdigest()
    assert version.endswith(meta["sha256"][:10])
    assert meta["features"] == result.features
    assert meta["static_features"] + [c for ch in meta["sequence_features"] for c in ch] == \
        meta["features"]
    assert meta["static_features"] == sorted(SYNTHETIC_STATIC_FEATURES)
    assert meta["channels"] == ["orders", "revenue", "active_days"]
    assert meta["n_periods"] == 12
    assert meta["sequence_features"][0][0] == "seq_orders_lag_01"
    assert meta["horizon_days"] == 365 and meta["as_of_date"] == "2025-01-01"
    assert meta["fingerprint"] == "fp-123" and meta["run_info"] == {"period_days": 30}
    assert meta["feature_definitions"] == FEATURE_DEFINITIONS
    assert meta["training_cutoffs"] == result.training_cutoffs
    assert meta["training_rows"] == result.train_rows
    assert TrainSettings.from_dict(meta["hyperparameters"]) == result.settings
    assert ExportSettings.from_dict(meta["export_settings"]) == ExportSettings()
    assert "inside the graph" in meta["normalisation"]
    assert meta["validation_loss"] == pytest.approx(result.validation_loss)
    # the most one example spent in its horizon, the validation cutoff's included
    table = synthetic_examples(n_customers=400, n_cutoffs=3, seed=21)
    assert meta["largest_horizon_spend"] == pytest.approx(max(labels(table)))
    assert meta["validation_metrics"] == {}
    assert meta["parity"]["max_rel_diff"] < 1e-4 and meta["parity"]["rows"] > 1
    assert meta["inputs"] == {"static": ["batch", len(result.spec.static)],
                              "sequence": ["batch", 12, 3]}


def test_write_leaves_only_final_files(artifact):
    assert sorted(p.name for p in artifact.onnx_path.parent.iterdir()) == sorted(
        [artifact.onnx_path.name, artifact.metadata_path.name])


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_atomic_write_through_a_link_replaces_the_file_it_points_to(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "model.bin").write_bytes(b"old")
    link = tmp_path / "model.bin"
    link.symlink_to(share / "model.bin")
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and (share / "model.bin").read_bytes() == b"new"
    assert sorted(p.name for p in share.iterdir()) == ["model.bin"]


def test_update_metadata_merges_and_protects(artifact, tmp_path):
    model_dir = tmp_path / "copy"
    shutil.copytree(artifact.onnx_path.parent, model_dir)
    copy = latest_artifact(model_dir)
    updated = update_metadata(copy, {"validation_metrics": {"gini": 0.61}})
    updated = update_metadata(updated, {"validation_metrics": {"mae": 12.5}, "note": "ok"})
    assert updated.metadata["validation_metrics"] == {"gini": 0.61, "mae": 12.5}
    assert json.loads(copy.metadata_path.read_text())["note"] == "ok"
    with pytest.raises(ValueError, match="sha256"):
        update_metadata(updated, {"sha256": "0" * 64})
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        [copy.onnx_path.name, copy.metadata_path.name])


def clone_artifact(source, model_dir: Path, version: str, **changes) -> None:
    """Copy an artifact under another version with edited metadata (no re-export)."""
    meta = {**source.metadata, "model_version": version,
            "onnx_file": f"clv_model_{version}.onnx", **changes}
    shutil.copy(source.onnx_path, model_dir / meta["onnx_file"])
    (model_dir / f"clv_model_{version}.json").write_text(json.dumps(meta))


def test_latest_and_find_artifact(artifact, tmp_path):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    assert latest_artifact(model_dir) is None and find_artifact(model_dir, "fp-123") is None
    clone_artifact(artifact, model_dir, "20200101T000000Z_aaaaaaaaaa",
                   created_at="2020-01-01T00:00:00+00:00", fingerprint="old")
    clone_artifact(artifact, model_dir, "20300101T000000Z_bbbbbbbbbb",
                   created_at="2030-01-01T00:00:00+00:00", fingerprint="new")
    clone_artifact(artifact, model_dir, "20250101T000000Z_cccccccccc",
                   created_at="2025-01-01T00:00:00+00:00", fingerprint="old")
    clone_artifact(artifact, model_dir, "20400101T000000Z_dddddddddd",
                   created_at="2040-01-01T00:00:00+00:00", fingerprint="gone")
    (model_dir / "clv_model_20400101T000000Z_dddddddddd.onnx").unlink()  # incomplete artifact
    assert [a.version[:8] for a in list_artifacts(model_dir)] == ["20200101", "20250101",
                                                                  "20300101"]
    assert latest_artifact(model_dir).version == "20300101T000000Z_bbbbbbbbbb"
    assert find_artifact(model_dir, "old").version == "20250101T000000Z_cccccccccc"
    assert find_artifact(model_dir, "gone") is None
    assert find_artifact(model_dir, "unknown") is None


@pytest.mark.slow  # the dynamo exporter takes 20 s or more
def test_dynamo_exporter_writes_the_same_computation(artifact, result, dynamo_onnx):
    """The dynamo graph (the fallback) matches PyTorch, and onnxruntime computes the same
    outputs from it as from the TorchScript graph (the default) to float32 rounding."""
    spec = result.spec
    static, sequence = random_rows(1000, len(spec.static), spec.n_periods, len(spec.channels), 5)
    onnx.checker.check_model(onnx.load_from_string(dynamo_onnx))
    inputs = {"static": static, "sequence": sequence}
    got = ort.InferenceSession(dynamo_onnx).run(None, inputs)
    default = ort.InferenceSession(str(artifact.onnx_path)).run(None, inputs)
    with torch.no_grad():
        expected = result.model(torch.from_numpy(static), torch.from_numpy(sequence))
    for out, same, ref in zip(got, default, expected, strict=True):
        np.testing.assert_allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out, same, rtol=1e-6, atol=1e-7)


@pytest.mark.slow  # the dynamo exporter takes 20 s or more
def test_falls_back_to_dynamo_when_torchscript_fails(result, tmp_path, monkeypatch,
                                                     dynamo_onnx):
    def torchscript_breaks(model, exporter, opset):
        if exporter == "torchscript":
            raise RuntimeError("the TorchScript exporter was removed")
        return dynamo_onnx  # what export_onnx_bytes(model, "dynamo", opset) returns

    monkeypatch.setattr(export_module, "export_onnx_bytes", torchscript_breaks)
    artifact = export_model(result, tmp_path, {"fingerprint": "x"}, log=lambda _: None)
    assert artifact.metadata["exporter"] == "dynamo"
    assert "removed" in artifact.metadata["exporter_failures"]["torchscript"]


def test_parity_failure_raises_and_writes_nothing(result, tmp_path):
    strict = ExportSettings(exporter="torchscript", parity_rtol=0.0, parity_atol=0.0)
    with pytest.raises(ExportParityError, match="no exporter produced a model matching"):
        export_model(result, tmp_path, {}, strict, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shift", [-30.0, -18.0, -12.0, 12.0])
def test_parity_where_a_purchase_is_almost_certain_or_almost_impossible(result, shift):
    """Customers whose purchase logit is far from 0 (long-gone one-time buyers on real data):
    onnxruntime's float32 Sigmoid returns 0 below a logit of about -18 and is 0.5 % off at -12,
    so the graph takes the probability and the spend in log space, and the export's parity
    check holds there."""
    base = copy.deepcopy(result.model)
    for network in base.modules():
        if isinstance(network, ClvNetwork):
            with torch.no_grad():
                network.head[-1].bias[0] += shift
    calibrated = CalibratedNetwork(base, np.array([0.0, 1.0]), np.array([0.2, 1.0]),
                                   probability_slope=1.1, probability_intercept=-0.3)
    spec = result.spec
    static, sequence = random_rows(256, len(spec.static), spec.n_periods, len(spec.channels), 3)
    with torch.no_grad():
        logit = base.logits(torch.from_numpy(static), torch.from_numpy(sequence))[:, 0]
    assert (logit.max() < -10.0) if shift < 0 else (logit.min() > 5.0)
    settings = ExportSettings()
    parity = check_parity(calibrated, export_onnx_bytes(calibrated, "torchscript", 18), static,
                          sequence, settings.parity_rtol, settings.parity_atol)
    assert parity["max_rel_diff"] < settings.parity_rtol
    with torch.no_grad():
        probability, spend, mu, sigma, _ = calibrated(torch.from_numpy(static),
                                                      torch.from_numpy(sequence))
    assert torch.all(probability > 0) and torch.all(spend > 0)
    # one distribution: p * exp(mu + sigma^2 / 2) is the spend
    np.testing.assert_allclose((probability * torch.exp(mu + 0.5 * sigma ** 2)).numpy(),
                               spend.numpy(), rtol=1e-4)


def _never_with_two_models(artifact, directory: Path) -> tuple[RunSettings, tuple[str, str]]:
    """clv_retrain never's settings for ``artifact``, and two copies of it in ``directory``
    (an older and a newer version, in that order)."""
    meta = artifact.metadata
    run = RunSettings(model_dir=directory, retrain="never", horizon_days=meta["horizon_days"],
                      period_days=30, sequence_periods=meta["n_periods"],
                      seed=42, static_features=(), channels=CHANNELS)
    versions = ("20250101T000000Z_aaaaaaaaaa", "20300101T000000Z_bbbbbbbbbb")
    for version in versions:
        clone_artifact(artifact, directory, version, created_at=f"{version[:4]}-01-01T00:00:00",
                       period_days=30)
    return run, versions


def test_never_scores_with_the_model_behind_the_predictions_before_a_newer_one(artifact,
                                                                              tmp_path):
    """clv_retrain never keeps the model of clv_predictions when a newer model of the same data
    and settings was saved beside it (an experiment, another target); the newest fitting
    model scores only when that one is gone or no longer fits."""
    meta = artifact.metadata
    features = list(meta["features"])
    run, (published, newer) = _never_with_two_models(artifact, tmp_path)
    assert newest_compatible(run, features).version == newer
    assert newest_compatible(run, features, preferred=published).version == published
    assert newest_compatible(run, features, preferred="20990101T000000Z_gone").version == newer
    # the model behind the predictions no longer fits this run: the newest one that does
    clone_artifact(artifact, tmp_path, published, created_at="2025-01-01T00:00:00",
                   period_days=30, horizon_days=meta["horizon_days"] + 1)
    assert newest_compatible(run, features, preferred=published).version == newer


def test_never_tries_a_retrained_model_then_the_one_scored_with_last(artifact, tmp_path):
    """clv_retrain never's order (registry.retrained_since, then the model of the history's
    latest run): a model retrained since scores when it fits the run; one that does not (a
    retrain with another horizon) hands back to the model scored with last, not to a newer
    model of another target sharing the directory."""
    meta = artifact.metadata
    features = list(meta["features"])
    run, (scored_last, _other_target) = _never_with_two_models(artifact, tmp_path)
    retrained = "20270101T000000Z_cccccccccc"
    clone_artifact(artifact, tmp_path, retrained, created_at="2027-01-01T00:00:00",
                   period_days=30)
    order = [retrained, scored_last]
    assert newest_compatible(run, features, preferred=order).version == retrained
    clone_artifact(artifact, tmp_path, retrained, created_at="2027-01-01T00:00:00",
                   period_days=30, horizon_days=meta["horizon_days"] + 1)
    assert newest_compatible(run, features, preferred=order).version == scored_last


def test_never_keeps_the_model_behind_the_predictions_when_the_customers_moved_on(artifact,
                                                                                 tmp_path):
    """A source that keeps a rolling window shares fewer customers with the data a model was
    trained on each month: the model behind clv_predictions still scores with never, while a
    model of other data beside it does not."""
    import dataclasses

    run, (older, published) = _never_with_two_models(artifact, tmp_path)
    for version in (older, published):
        path = tmp_path / f"clv_model_{version}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()),
                                    "data_signature": list(range(100))}))
    run = dataclasses.replace(run, data_signature=tuple(range(1000, 1100)))
    features = list(artifact.metadata["features"])
    assert newest_compatible(run, features, preferred=published).version == published
    with pytest.raises(ModelMismatchError, match="trained on this warehouse's data"):
        newest_compatible(run, features)


@pytest.mark.parametrize(("damage", "said"), [("truncated", "sha256 mismatch"),
                                             ("unreadable_metadata", "metadata is unreadable"),
                                             ("onnx_gone", "is missing")])
def test_never_refuses_a_damaged_model_behind_the_predictions(artifact, tmp_path, damage, said):
    """The model behind clv_predictions damaged, an intact older one beside it: never stops
    and names the damage instead of moving the predictions to the older model."""
    meta = artifact.metadata
    run, (older, published) = _never_with_two_models(artifact, tmp_path)
    onnx_file = tmp_path / f"clv_model_{published}.onnx"
    if damage == "truncated":
        onnx_file.write_bytes(onnx_file.read_bytes()[:999])
    elif damage == "unreadable_metadata":
        onnx_file.with_suffix(".json").write_text("{")
    else:
        onnx_file.unlink()
    with pytest.raises(ModelMismatchError, match=f"model {published}, the one scored "
                                                 "with last, is damaged") as refused:
        newest_compatible(run, list(meta["features"]), preferred=published)
    assert said in str(refused.value)
    assert newest_compatible(run, list(meta["features"])).version in (older, published)


def test_a_model_from_before_a_feature_change_is_named_stale():
    """Scoring logs a warning for a model trained on other feature definitions than this
    version computes (a model saved before they were recorded counts as 1), and says what
    changed; the training fingerprint holds them, so clv_retrain auto trains a new model."""
    from clv.pipeline.registry import stale_features_note

    assert stale_features_note({"feature_definitions": FEATURE_DEFINITIONS}) is None
    note = stale_features_note({"model_version": "v1"})
    assert note is not None and "model v1" in note and "fade out" in note
    assert "clv_retrain: always" in note
    # a model of a newer clv (sharing the directory, or after a downgrade) is not "before"
    newer = stale_features_note({"model_version": "v9",
                                 "feature_definitions": FEATURE_DEFINITIONS + 1})
    assert "trained by a newer version of clv" in newer and "before" not in newer
    # a model saved before the fill values were kept reads a missing input as 0
    unfilled = {"model_version": "v2", "feature_definitions": FEATURE_DEFINITIONS,
                "static_features": ["frequency"]}
    note = stale_features_note(unfilled)
    assert "model v2 was saved before missing model inputs read as the training median" in note
    assert "clv_retrain: always" in note
    assert stale_features_note({**unfilled, "static_fill": [0.0]}) is None


def test_the_registry_names_a_model_from_before_a_feature_change(tmp_path):
    """clv_model_registry.feature_note, on which dbt warns for the current model
    (clv_model_has_current_features): null for a model of this version's features."""
    import json

    import pandas as pd

    from clv.pipeline.registry import registry_frame

    for version, definitions in (("20240101T000000Z_a", 1), ("20240102T000000Z_b",
                                                              FEATURE_DEFINITIONS)):
        (tmp_path / f"clv_model_{version}.onnx").write_bytes(b"onnx")
        (tmp_path / f"clv_model_{version}.json").write_text(json.dumps({
            "model_version": version, "created_at": version[:8], "sha256": "0" * 64,
            "feature_definitions": definitions}))
    frame = registry_frame(tmp_path, "20240101T000000Z_a").set_index("model_version")
    assert "fade out" in frame.loc["20240101T000000Z_a", "feature_note"]
    assert pd.isna(frame.loc["20240102T000000Z_b", "feature_note"])


def test_the_registrys_notes_are_text_when_no_model_has_one(tmp_path):
    """A column null for every model is text (a flag) in the warehouse, not of type NULL."""
    import json

    import duckdb
    import pyarrow as pa

    from clv.pipeline.registry import registry_frame

    version = "20240102T000000Z_b"
    (tmp_path / f"clv_model_{version}.onnx").write_bytes(b"onnx")
    (tmp_path / f"clv_model_{version}.json").write_text(json.dumps({
        "model_version": version, "created_at": version[:8], "sha256": "0" * 64,
        "feature_definitions": FEATURE_DEFINITIONS}))
    frame = registry_frame(tmp_path, version)
    assert frame[["is_seasonal_level", "level_note", "btyd_fit_note", "feature_note"]].isna().all(
        axis=None)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    assert pa.types.is_boolean(table.schema.field("is_seasonal_level").type)
    assert all(pa.types.is_string(table.schema.field(name).type)
               or pa.types.is_large_string(table.schema.field(name).type)
               for name in ("level_note", "btyd_fit_note", "feature_note"))
    relation = duckdb.from_df(frame)
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    assert [types[name] for name in ("is_seasonal_level", "feature_note")] == [
        "BOOLEAN", "VARCHAR"]


def test_the_registrys_level_note_says_when_a_correction_was_cut(tmp_path):
    """level_note: the level's reason, then a correction cut to its bounds, then what
    level_log_sd rests on."""
    import json

    from clv.pipeline.registry import registry_frame

    version = "20240102T000000Z_b"
    (tmp_path / f"clv_model_{version}.onnx").write_bytes(b"onnx")
    pair = {"target": "2023-06-30", "source": "2022-06-30"}
    (tmp_path / f"clv_model_{version}.json").write_text(json.dumps({
        "model_version": version, "created_at": version[:8], "sha256": "0" * 64,
        "feature_definitions": FEATURE_DEFINITIONS,
        "spend_level": {"reason": "seasonal", "network_share": 0.0, "lag_days": 365,
                        "seasonal": True,
                        "btyd": {"source": "2022-09-30", "carried_share": 1.0,
                                 "source_log_ratio": 1.0, "mean_squared_error": 0.01,
                                 "pairs": [pair]}}}))
    note = registry_frame(tmp_path, version).level_note[0]
    assert note == ("seasonal; BG/NBD's carried correction of 2.72 is cut to 2.00 (a correction "
                    "lies within 0.5 and 2: the level follows the bias it carries only that "
                    "far); level_log_sd from 1 backtest of the level")


def test_the_registry_holds_when_a_model_was_saved_in_utc_without_a_zone(tmp_path):
    """created_at as every public timestamp is (scored_at, written_at): UTC without a time
    zone, whatever offset the saved instant was written with."""
    import json

    import pandas as pd

    from clv.pipeline.registry import registry_frame

    saved = {"20240101T000000Z_a": "2024-07-01T12:00:00+02:00",
             "20240102T000000Z_b": "2024-07-01T10:30:00+00:00"}
    for version, created in saved.items():
        (tmp_path / f"clv_model_{version}.onnx").write_bytes(b"onnx")
        (tmp_path / f"clv_model_{version}.json").write_text(json.dumps({
            "model_version": version, "created_at": created, "sha256": "0" * 64}))
    created_at = registry_frame(tmp_path, None).set_index("model_version")["created_at"]
    assert created_at.to_dict() == {"20240101T000000Z_a": pd.Timestamp("2024-07-01 10:00"),
                                    "20240102T000000Z_b": pd.Timestamp("2024-07-01 10:30")}
