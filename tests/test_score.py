"""Scoring: streaming equals one-shot, verification refuses mismatched or damaged models, and the
ONNX file works in plain onnxruntime without this package.

The artifact here comes from the TorchScript exporter (the default); test_export checks that the
dynamo graph (the fallback) computes the same, and scoring only sees the ONNX interface.
"""

import dataclasses
import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pytest
import torch

from clv.config import ExportSettings, TrainSettings
from clv.data import (
    SYNTHETIC_STATIC_FEATURES,
    FeatureSpec,
    feature_spec,
    fill_values,
    model_inputs,
    synthetic_examples,
)
from clv.export import export_model
from clv.loss import ziln_quantiles
from clv.score import (
    ModelMismatchError,
    load_verified,
    output_schema,
    score_batches,
    score_table,
    ziln_quantiles_numpy,
)
from clv.train import train

HORIZON = 365
STATIC = SYNTHETIC_STATIC_FEATURES
CHANNELS = ("orders", "revenue", "active_days")  # the network order clv_run_settings declares
NETWORK_COLUMNS = ["purchase_probability", "network_clv", "network_clv_p10", "network_clv_p50",
                   "network_clv_p90"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    table = synthetic_examples(n_customers=400, n_cutoffs=2, seed=31)
    result = train(table, STATIC, TrainSettings(max_epochs=3, num_threads=1), log=lambda _: None,
                   channels=CHANNELS)
    directory = tmp_path_factory.mktemp("models")
    export_model(result, directory, {"fingerprint": "fp", "horizon_days": HORIZON},
                 ExportSettings(exporter="torchscript"), log=lambda _: None)
    return directory


@pytest.fixture(scope="module")
def scoring() -> pa.Table:
    return synthetic_examples(n_customers=5000, n_cutoffs=1, seed=32, with_labels=False)


@pytest.fixture(scope="module")
def expected(scoring) -> dict:
    spec = feature_spec(scoring.schema, STATIC, CHANNELS)
    return {"features": list(spec.features), "horizon_days": HORIZON,
            "n_periods": spec.n_periods, "channels": list(spec.channels)}


@pytest.fixture
def damaged_dir(model_dir, tmp_path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(model_dir, target)
    return target


def test_model_inputs_layout_and_invalid_values(scoring):
    """Static columns in spec order; the sequence oldest period first, channels in spec order;
    nulls, NaN and infinities read as 0; decimal and integer columns convert."""
    spec = feature_spec(scoring.schema, STATIC, CHANNELS)
    table = scoring.slice(0, 6)
    first = spec.static[0]
    values = pa.array([None, float("nan"), float("inf"), -float("inf"), 2.5, -1.0])
    table = table.set_column(table.schema.get_field_index(first), first, values)
    static, sequence = model_inputs(table, spec)
    assert static.dtype == sequence.dtype == np.float32
    assert static.shape == (6, len(spec.static))
    assert sequence.shape == (6, spec.n_periods, len(spec.channels))
    np.testing.assert_array_equal(static[:, 0], [0, 0, 0, 0, 2.5, -1.0])
    for j, name in enumerate(spec.static[1:], start=1):
        np.testing.assert_array_equal(static[:, j], np.nan_to_num(
            table.column(name).to_numpy(zero_copy_only=False).astype(np.float32)))
    for c, lags in enumerate(spec.sequence):
        for lag, name in enumerate(lags, start=1):
            np.testing.assert_array_equal(sequence[:, spec.n_periods - lag, c],
                                          table.column(name).to_numpy().astype(np.float32))
    typed = table.set_column(table.schema.get_field_index(first), first,
                             pa.array([1, 2, 3, 4, 5, 6], pa.decimal128(10, 2)))
    np.testing.assert_array_equal(model_inputs(typed, spec)[0][:, 0], [1, 2, 3, 4, 5, 6])


def test_missing_static_values_read_as_the_features_fill_value(scoring):
    """A spec with fill values (a model's training medians): a null, NaN or infinite static
    value reads as its feature's fill value, as float32; given values and the sequence do
    not change."""
    spec = feature_spec(scoring.schema, STATIC, CHANNELS)
    table = scoring.slice(0, 6)
    first = spec.static[0]
    values = pa.array([None, float("nan"), float("inf"), -float("inf"), 2.5, 1e39])
    table = table.set_column(table.schema.get_field_index(first), first, values)
    fill = (51.3, *range(1, len(spec.static)))
    filled = dataclasses.replace(spec, fill=fill)
    static, sequence = model_inputs(table, filled)
    np.testing.assert_array_equal(static[:, 0], np.float32([51.3] * 4 + [2.5, 51.3]))
    plain_static, plain_sequence = model_inputs(table, spec)
    np.testing.assert_array_equal(static[:, 1:], plain_static[:, 1:])
    np.testing.assert_array_equal(sequence, plain_sequence)
    assert FeatureSpec.from_dict(filled.to_dict()) == filled
    assert FeatureSpec.from_dict({k: v for k, v in spec.to_dict().items()
                                  if k != "static_fill"}).static_fill == (0.0,) * len(spec.static)


def test_fill_values_are_the_medians_of_the_given_values():
    spec = FeatureSpec(static=("a", "b", "c"), channels=(), sequence=())
    table = pa.table({"a": pa.array([1.0, None, 3.0, float("nan"), 10.0]),
                      "b": pa.array([None] * 5, pa.float64()),
                      "c": pa.array([1, 2, 3, 4, 5], pa.int64())})
    assert fill_values(table, spec) == (3.0, 0.0, 3.0)


def test_streaming_equals_one_shot(model_dir, scoring, expected):
    model = load_verified(model_dir, expected=expected)
    reader = score_batches(model, scoring.to_reader(max_chunksize=700), batch_size=1024)
    assert isinstance(reader, pa.RecordBatchReader)
    assert reader.schema == output_schema()
    batches = list(reader)
    assert len(batches) == 5 and max(b.num_rows for b in batches) == 1024
    streamed = pa.Table.from_batches(batches, schema=output_schema())
    one_shot = score_table(model, scoring, batch_size=10_000)
    assert streamed.column("customer_id").equals(scoring.column("customer_id"))
    assert streamed.column("customer_id").equals(one_shot.column("customer_id"))
    for name in NETWORK_COLUMNS:
        np.testing.assert_array_equal(streamed.column(name).to_numpy(),
                                      one_shot.column(name).to_numpy(), err_msg=name)
    assert set(streamed.column("model_version").to_pylist()) == {model.version}
    # the network's own values: predicted_clv is only the value at the spend level (clv.level)
    assert streamed.schema.names == ["customer_id", *NETWORK_COLUMNS, "model_version"]


@pytest.mark.parametrize("rows", [1, 3, 17, 250])
def test_a_customer_scores_the_same_in_any_batch(model_dir, scoring, rows):
    """Bit for bit: scored alone, in a short batch, or at another offset (score.ROW_BLOCK)."""
    model = load_verified(model_dir)
    whole = score_table(model, scoring)
    picked = np.random.default_rng(rows).choice(scoring.num_rows, rows, replace=False)
    for batch_size in (rows, 7):
        subset = score_table(model, scoring.take(picked), batch_size=batch_size)
        for name in NETWORK_COLUMNS:
            np.testing.assert_array_equal(subset.column(name).to_numpy(),
                                          whole.column(name).to_numpy()[picked], err_msg=name)


def test_reads_input_lazily(model_dir, scoring):
    model = load_verified(model_dir)
    pulled = []

    def source():
        for batch in scoring.to_batches(max_chunksize=100):
            pulled.append(batch.num_rows)
            yield batch

    reader = score_batches(model, source(), batch_size=200)
    first = reader.read_next_batch()
    assert first.num_rows == 200
    assert sum(pulled) <= 200 * (model.workers + 2)  # a few batches, not the whole input
    rest = sum(b.num_rows for b in reader)
    assert first.num_rows + rest == scoring.num_rows == sum(pulled)


def test_quantiles_and_probabilities_are_consistent(model_dir, scoring):
    out = score_table(load_verified(model_dir), scoring)
    p10, p50, p90 = (out.column(f"network_clv_p{q}").to_numpy() for q in (10, 50, 90))
    assert np.all(p10 <= p50) and np.all(p50 <= p90) and np.all(p10 >= 0)
    p = out.column("purchase_probability").to_numpy()
    assert np.all((p > 0) & (p < 1))
    assert np.all(p90[p < 0.1] == 0)  # most of the mass at zero: the 90th percentile is 0


def test_numpy_quantiles_match_torch():
    rng = np.random.default_rng(0)
    logits = np.stack([rng.normal(0, 2, 200), rng.normal(3, 1, 200), rng.normal(0, 1, 200)], 1)
    reference = ziln_quantiles(torch.from_numpy(logits), [0.1, 0.5, 0.9]).numpy()
    p = 1 / (1 + np.exp(-logits[:, 0]))
    sigma = np.maximum(np.logaddexp(0, logits[:, 2]), 1e-3)
    for j, q in enumerate([0.1, 0.5, 0.9]):
        np.testing.assert_allclose(ziln_quantiles_numpy(p, logits[:, 1], sigma, q),
                                   reference[:, j], rtol=1e-10, atol=1e-12)


def test_plain_onnxruntime_reproduces_predictions(model_dir, scoring):
    """Only the metadata JSON, numpy and onnxruntime: no clv code builds the inputs."""
    meta_path = sorted(model_dir.glob("clv_model_*.json"))[-1]
    meta = json.loads(meta_path.read_text())
    frame = scoring.slice(0, 300).to_pandas()
    static = frame[meta["static_features"]].fillna(
        dict(zip(meta["static_features"], meta["static_fill"], strict=True))).to_numpy(np.float32)
    per_channel = [frame[list(reversed(cols))].fillna(0).to_numpy(np.float32)  # oldest first
                   for cols in meta["sequence_features"]]
    sequence = np.stack(per_channel, axis=2)
    session = ort.InferenceSession(str(model_dir / meta["onnx_file"]),
                                   providers=["CPUExecutionProvider"])
    outputs = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"static": static, "sequence": sequence}), strict=True))
    ours = score_table(load_verified(model_dir), scoring.slice(0, 300))
    assert list(outputs) == ["purchase_probability", "network_clv", "mu", "sigma",
                             "log_no_purchase"]
    np.testing.assert_allclose(outputs["network_clv"], ours.column("network_clv").to_numpy(),
                               rtol=1e-6)
    p, mu, sigma = outputs["purchase_probability"], outputs["mu"], outputs["sigma"]
    np.testing.assert_allclose(outputs["network_clv"], p * np.exp(mu + sigma**2 / 2), rtol=1e-5)


def test_pandas_input_and_integer_ids(model_dir, scoring):
    frame = scoring.slice(0, 50).to_pandas()
    frame["customer_id"] = np.arange(50)
    out = score_table(load_verified(model_dir), frame)
    assert out.column("customer_id").to_pylist() == [str(i) for i in range(50)]
    assert isinstance(frame, pd.DataFrame) and out.num_rows == 50


def test_flipped_byte_is_refused(damaged_dir):
    onnx_file = next(damaged_dir.glob("*.onnx"))
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ModelMismatchError, match="sha256 mismatch: file was modified or truncated"):
        load_verified(damaged_dir)


def test_truncated_file_is_refused(damaged_dir):
    onnx_file = next(damaged_dir.glob("*.onnx"))
    onnx_file.write_bytes(onnx_file.read_bytes()[:1000])
    with pytest.raises(ModelMismatchError, match="sha256 mismatch"):
        load_verified(damaged_dir)


def test_missing_onnx_file_is_refused(damaged_dir):
    onnx_file = next(damaged_dir.glob("*.onnx"))
    version = onnx_file.stem.removeprefix("clv_model_")
    onnx_file.unlink()
    with pytest.raises(ModelMismatchError, match=r"ONNX file .* is missing"):
        load_verified(damaged_dir, version=version)
    with pytest.raises(ModelMismatchError, match="no model artifact"):
        load_verified(damaged_dir)  # latest: nothing complete left
    with pytest.raises(ModelMismatchError, match="no metadata file"):
        load_verified(damaged_dir, version="19990101T000000Z_0000000000")


def test_feature_list_mismatch_names_columns(model_dir, expected):
    changed = dict(expected)
    changed["features"] = [f for f in expected["features"] if f != "noise"] + ["loyalty_points"]
    with pytest.raises(ModelMismatchError) as info:
        load_verified(model_dir, expected=changed)
    assert "feature list differs: missing ['noise'], unexpected ['loyalty_points']" in str(
        info.value)
    reordered = dict(expected, features=list(reversed(expected["features"])))
    with pytest.raises(ModelMismatchError, match="feature order differs: position 0"):
        load_verified(model_dir, expected=reordered)


def test_horizon_and_shape_mismatch_are_named(model_dir, expected):
    with pytest.raises(ModelMismatchError, match="horizon_days: model 365, run 91"):
        load_verified(model_dir, expected=dict(expected, horizon_days=91))
    with pytest.raises(ModelMismatchError) as info:
        load_verified(model_dir, expected=dict(expected, n_periods=6,
                                               channels=["orders", "revenue"]))
    assert "n_periods: model 12, run 6" in str(info.value)
    assert "channels: model ['orders', 'revenue', 'active_days'], run ['orders', 'revenue']" in \
        str(info.value)


def test_scoring_data_missing_a_feature_column(model_dir, scoring):
    model = load_verified(model_dir)
    with pytest.raises(ModelMismatchError, match=r"lacks feature columns .*'seq_revenue_lag_03'"):
        score_table(model, scoring.drop_columns(["seq_revenue_lag_03"]))


def test_scoring_does_not_load_pytorch():
    """The scoring and explanation models' dbt processes import the clv.pipeline steps,
    clv.warehouse, clv.score and clv.explain only; PyTorch (about 300 MB) must stay out."""
    code = ("import sys, clv.pipeline, clv.score, clv.warehouse, clv.level, clv.explain; "
            "import clv.pipeline.evaluation, clv.pipeline.handoff, clv.pipeline.registry, "
            "clv.pipeline.scoring, clv.pipeline.settings, clv.pipeline.training, "
            "clv.pipeline.explanations; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])")
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                            text=True)
    assert result.stdout.strip() == "[]"


def test_a_pickled_model_scores_the_same(model_dir, scoring):
    """What a distributed engine ships to its executors: the graph's bytes, one batch at a
    time on the other side."""
    model = load_verified(model_dir)
    copy = pickle.loads(pickle.dumps(model))
    assert copy.version == model.version and copy.workers == 1
    np.testing.assert_array_equal(
        score_table(copy, scoring).column("network_clv").to_numpy(),
        score_table(model, scoring).column("network_clv").to_numpy())


def test_a_model_saved_without_log_no_purchase_still_scores(model_dir, scoring, tmp_path):
    """A model exported before the graph gave log_no_purchase has only the first four outputs:
    it loads and scores the same, with the column NaN (clv.level then takes 1 - p)."""
    import onnx

    from clv.artifacts import sha256_bytes

    old_dir = tmp_path / "models"
    shutil.copytree(model_dir, old_dir)
    meta_path = next(old_dir.glob("*.json"))
    meta = json.loads(meta_path.read_text())
    graph = onnx.load(str(old_dir / meta["onnx_file"]))
    assert graph.graph.output[-1].name == "log_no_purchase"
    graph.graph.output.pop()
    data = graph.SerializeToString()
    (old_dir / meta["onnx_file"]).write_bytes(data)
    meta.update(sha256=sha256_bytes(data), outputs=meta["outputs"][:4])
    meta_path.write_text(json.dumps(meta))
    rows = scoring.slice(0, 300)
    new, old = (pa.Table.from_batches(list(score_batches(
        load_verified(directory), rows.to_reader(), quantiles=(), distribution=True)))
        for directory in (model_dir, old_dir))
    assert old.schema == new.schema
    for name in ("purchase_probability", "network_clv", "mu", "sigma"):
        np.testing.assert_array_equal(old.column(name).to_numpy(), new.column(name).to_numpy())
    assert np.isnan(old.column("log_no_purchase").to_numpy()).all()
    p = new.column("purchase_probability").to_numpy()
    np.testing.assert_allclose(new.column("log_no_purchase").to_numpy(), np.log1p(-p),
                               rtol=1e-5, atol=1e-7)


def _btyd_summary(monetary_first: float) -> pa.Table:
    rng = np.random.default_rng(5)
    frequency = rng.poisson(2.0, 300).astype(float)
    t_days = rng.uniform(100, 700, 300)
    recency = np.where(frequency > 0, t_days * rng.uniform(0.2, 1.0, 300), 0.0)
    monetary = np.where(frequency > 0, rng.lognormal(3.0, 0.5, 300), 0.0)
    monetary[0], frequency[0] = monetary_first, 3.0
    return pa.table({"customer_id": [f"c{i}" for i in range(300)], "frequency": frequency,
                     "recency_days": np.minimum(recency, t_days), "t_days": t_days,
                     "monetary_value": monetary})


def test_btyd_inputs_are_read_within_the_sql_scorings_bound():
    """A summary value beyond +-1e100 is read as the bound, as clv.sql_scoring reads it, so
    both engines publish the same btyd_expected_spend (1e300 gave 3.5e298 here, 3.5e98 there)."""
    from clv import hybrid

    fit = hybrid.fit(_btyd_summary(20.0))
    huge = hybrid.predict(_btyd_summary(1e300), 365, fit).expected_spend
    bounded = hybrid.predict(_btyd_summary(hybrid.BTYD_INPUT_BOUND), 365, fit).expected_spend
    assert np.isfinite(huge[0]) and huge[0] < 1e101
    np.testing.assert_array_equal(huge, bounded)


def test_btyd_inputs_skip_an_empty_batch():
    """A reader may yield an empty batch between full ones: scoring and the explanations read
    the rows around it (BG/NBD refused a batch without customers)."""
    from clv import hybrid
    from clv.pipeline.scoring import with_btyd

    table = _btyd_summary(20.0)
    fit = hybrid.fit(table)
    batches = [table.to_batches()[0].slice(0, 0), *table.to_batches(max_chunksize=100)]
    read = list(with_btyd(batches, fit, 365))
    assert [batch.num_rows for batch in read] == [100, 100, 100]
    assert pa.Table.from_batches(read).column("customer_id").to_pylist() == (
        table.column("customer_id").to_pylist())


def test_a_step_run_with_other_vars_than_the_registry_says_to_build_it(damaged_dir, expected):
    """The registry picked the model under the vars it was built with; a later step run with
    another horizon (the registry left out of the selection) says what to build, not only what
    differs."""
    from clv.pipeline.registry import load_current
    from clv.pipeline.settings import RunSettings
    from clv.score import SettingsMismatchError

    metadata_file = next(damaged_dir.glob("*.json"))  # as a build saves it: with its period
    metadata_file.write_text(json.dumps({**json.loads(metadata_file.read_text()),
                                         "period_days": 30}))
    version = load_verified(damaged_dir).artifact.version
    run = RunSettings(model_dir=damaged_dir, retrain="never", horizon_days=91, period_days=30,
                      sequence_periods=expected["n_periods"], seed=0,
                      static_features=tuple(STATIC), channels=tuple(CHANNELS))
    with pytest.raises(SettingsMismatchError) as info:
        load_current(run, version, expected["features"])
    assert f"horizon_days: model {HORIZON}, run 91" in str(info.value)
    assert ("build it and what it reads with these vars too (select "
            "+int_clv__model_registry+)") in str(info.value)
    fitting = dataclasses.replace(run, horizon_days=HORIZON)
    assert load_current(fitting, version, expected["features"]).artifact.version == version
