"""Training on synthetic examples with a known signal: skill, determinism, clear errors.

``synthetic_examples`` draws each customer's latent order rate and order value; the history
columns are Poisson orders and their revenue, and the label is the revenue of fresh orders from
the same rate and value. A model that reads the history must beat a constant prediction.
"""

import subprocess
import sys
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

import clv.train as train_module
from clv import config
from clv.config import TrainSettings
from clv.data import SYNTHETIC_STATIC_FEATURES, feature_spec, synthetic_examples
from clv.network import ClvNetwork, EnsembleNetwork
from clv.train import ENSEMBLE_BELOW_ROWS, ensemble_members, train

FAST = TrainSettings(max_epochs=25, patience=4, num_threads=1, ensemble_size=1)
STATIC = SYNTHETIC_STATIC_FEATURES
CHANNELS = ("orders", "revenue", "active_days")  # the network order clv_run_settings declares


@pytest.fixture(scope="module")
def examples() -> pa.Table:
    return synthetic_examples(n_customers=2000, n_cutoffs=3, seed=11)


@pytest.fixture(scope="module")
def trained(examples):
    lines: list[str] = []
    result = train(examples, STATIC, FAST, log=lines.append, channels=CHANNELS)
    return result, lines


def test_beats_constant_predictor(examples, trained):
    result, _ = trained
    v = result.validation
    y = v.column("label").to_numpy()
    predicted = v.column("predicted").to_numpy()
    latest = pc.max(examples.column("cutoff_date"))
    train_labels = examples.filter(pc.less(examples.column("cutoff_date"), latest))
    constant = float(np.mean(train_labels.column("label_revenue").to_numpy()))
    mse_model = np.mean((y - predicted) ** 2)
    mse_constant = np.mean((y - constant) ** 2)
    assert mse_model < 0.7 * mse_constant
    assert np.corrcoef(y, predicted)[0, 1] > 0.6
    probability = v.column("probability").to_numpy()
    assert np.mean(probability[y > 0]) > np.mean(probability[y == 0]) + 0.2


def test_result_contents(examples, trained):
    result, lines = trained
    assert result.validation_split == "latest_cutoff"
    assert result.validation_cutoff == "2024-07-01"
    assert result.training_cutoffs == ["2024-01-01", "2024-04-01", "2024-07-01"]
    assert result.validation.column_names == ["customer_id", "cutoff_date", "label", "predicted",
                                              "probability"]
    assert result.validation_rows == 2000 and result.train_rows == 4000
    assert result.features == list(feature_spec(examples.schema, STATIC, CHANNELS).features)
    assert result.features[:3] == ["days_since_signup", "frequency", "monetary_value"]
    assert result.spec.static == tuple(sorted(STATIC))
    assert result.spec.channels == CHANNELS
    assert "noise" in result.features and "country" not in result.features
    assert not any(f.startswith("label_") for f in result.features)
    assert result.validation_loss == pytest.approx(
        min(h["validation_loss"] for h in result.history), rel=1e-6)
    assert isinstance(result.model, ClvNetwork) and not result.model.training
    epoch_lines = [line for line in lines if line.startswith("epoch")]
    assert len(epoch_lines) == result.epochs_run == len(result.history)
    assert all("train_loss" in line and "validation_loss" in line and line.endswith("s")
               for line in epoch_lines)
    assert set(result.normalisation) == {"static_mean", "static_std", "sequence_mean",
                                         "sequence_std"}


def test_missing_values_read_as_the_training_rows_median(examples):
    """A feature far from 0 with missing values (a score near 50): the spec's fill value is the
    median of its given values in the rows the networks learn from (not the validation
    cutoff's), so a missing value reads as a typical customer's, not as 0."""
    noise = examples.column("noise").to_numpy(zero_copy_only=False) + 50.0
    missing = np.arange(len(noise)) % 7 == 0
    table = examples.set_column(examples.schema.get_field_index("noise"), "noise",
                                pa.array(noise, mask=missing))
    result = train(table, STATIC, TrainSettings(max_epochs=1, num_threads=1, ensemble_size=1),
                   log=lambda _: None, channels=CHANNELS)
    training = pc.not_equal(table.column("cutoff_date"), pa.scalar(date(2024, 7, 1)))
    given = table.filter(training).column("noise").drop_null().to_numpy()
    fill = dict(zip(result.spec.static, result.spec.fill, strict=True))
    assert fill["noise"] == np.float32(np.median(given)) and fill["noise"] > 45
    assert fill["frequency"] == np.float32(np.median(
        table.filter(training).column("frequency").to_numpy()))


def test_static_features_are_declared_not_discovered():
    """Only declared columns are static inputs, sorted by name; text, key, label and sequence
    columns need no declaration; channels follow the given order, others alphabetically."""
    table = synthetic_examples(n_customers=20, n_cutoffs=1, seed=12)
    spec = feature_spec(table.schema, list(reversed(STATIC)), CHANNELS)
    assert spec.static == tuple(sorted(STATIC))
    assert spec.channels == CHANNELS and spec.n_periods == 12
    assert spec.sequence[0][0] == "seq_orders_lag_01"
    assert "country" not in spec.features and "label_orders" not in spec.features
    assert feature_spec(table.schema, STATIC).channels == ("active_days", "orders", "revenue")
    assert feature_spec(table.schema, STATIC, ["revenue"]).channels == (
        "revenue", "active_days", "orders")


def test_undeclared_numeric_column_is_a_clear_error():
    table = synthetic_examples(n_customers=40, n_cutoffs=2, seed=13)
    table = table.append_column("loyalty_points", pa.array(np.arange(table.num_rows)))
    with pytest.raises(ValueError, match=r"numeric columns that are not declared features: "
                                         r"\['loyalty_points'\]") as info:
        feature_spec(table.schema, STATIC, CHANNELS)
    assert "clv_extra_features" in str(info.value)
    # training refuses it too: a new column never becomes a model input by accident
    with pytest.raises(ValueError, match=r"not declared features: \['loyalty_points'\]"):
        train(table, STATIC, TrainSettings(max_epochs=1), log=lambda _: None)
    # declared on purpose, it is an input
    spec = feature_spec(table.schema, (*STATIC, "loyalty_points"), CHANNELS)
    assert "loyalty_points" in spec.static


def test_missing_declared_column_is_a_clear_error():
    table = synthetic_examples(n_customers=40, n_cutoffs=2, seed=14)
    with pytest.raises(ValueError, match=r"lacks declared feature columns \['loyalty_points'\]"):
        feature_spec(table.schema, (*STATIC, "loyalty_points"), CHANNELS)
    with pytest.raises(ValueError, match=r"lacks declared feature columns \['noise'\]"):
        train(table.drop_columns(["noise"]), STATIC, TrainSettings(max_epochs=1),
              log=lambda _: None)
    with pytest.raises(ValueError, match="declared feature column country must be numeric"):
        feature_spec(table.schema, (*STATIC, "country"), CHANNELS)


def test_same_seed_bit_identical_regardless_of_row_and_column_order():
    table = synthetic_examples(n_customers=300, n_cutoffs=2, seed=5)
    settings = TrainSettings(max_epochs=3, patience=10, num_threads=1)
    first = train(table, STATIC, settings, log=lambda _: None, channels=CHANNELS)
    rng = np.random.default_rng(0)
    shuffled = table.take(pa.array(rng.permutation(table.num_rows)))
    shuffled = shuffled.select(list(reversed(shuffled.column_names)))
    second = train(shuffled.to_reader(max_chunksize=97), STATIC, settings, log=lambda _: None,
                   channels=CHANNELS)
    assert first.validation.equals(second.validation)
    for (name, a), (_, b) in zip(first.model.state_dict().items(),
                                 second.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    other = train(table, STATIC, TrainSettings(max_epochs=3, patience=10, num_threads=1, seed=7),
                  log=lambda _: None, channels=CHANNELS)
    assert not first.validation.equals(other.validation)


def test_training_runs_with_deterministic_kernels_only():
    """set_seed switches torch to deterministic kernels (without importing torch._inductor,
    which takes seconds); a fresh process, since the switch is process-wide."""
    code = ("import sys, torch; from clv.config import set_seed; set_seed(1); "
            "print(torch.are_deterministic_algorithms_enabled(), 'torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False"]


@pytest.mark.parametrize("patience", [2, 40])  # early stop, and every epoch run
def test_validation_on_a_second_core_changes_nothing_but_the_wall_time(monkeypatch, patience):
    table = synthetic_examples(n_customers=600, n_cutoffs=3, seed=9)
    settings = TrainSettings(max_epochs=8, patience=patience, num_threads=1, ensemble_size=1,
                             learning_rate=0.03)
    results = {}
    for overlapped in (False, True):
        monkeypatch.setattr(train_module, "overlaps_validation", lambda _, on=overlapped: on)
        results[overlapped] = train(table, STATIC, settings, log=lambda _: None,
                                    channels=CHANNELS)
    sequential, overlapped = results[False], results[True]
    assert sequential.epochs_run == overlapped.epochs_run
    assert (sequential.epochs_run < 8) == (patience == 2)  # the stop is exercised
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in sequential.history] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in overlapped.history]
    for (name, a), (_, b) in zip(sequential.model.state_dict().items(),
                                 overlapped.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_single_cutoff_holds_out_customers():
    table = synthetic_examples(n_customers=400, n_cutoffs=1, seed=6)
    result = train(table, STATIC, TrainSettings(max_epochs=2, num_threads=1), log=lambda _: None)
    assert result.validation_split == "customer_holdout"
    assert result.validation_cutoff is None
    assert result.validation_rows == 80 and result.train_rows == 320


def test_subsamples_above_max_train_rows():
    table = synthetic_examples(n_customers=500, n_cutoffs=2, seed=7)
    lines: list[str] = []
    result = train(table, STATIC, TrainSettings(max_epochs=1, max_train_rows=200, num_threads=1),
                   log=lines.append)
    assert result.train_rows == 200 and result.train_rows_available == 500
    assert any(line.startswith("subsampled 200 of 500") for line in lines)


def test_no_rows_is_a_clear_error():
    empty = synthetic_examples(n_customers=10, n_cutoffs=1).slice(0, 0)
    with pytest.raises(ValueError, match="no rows") as info:
        train(empty, STATIC, log=lambda _: None)
    assert "clv_as_of_date" in str(info.value)


def test_no_positive_labels_is_a_clear_error():
    table = synthetic_examples(n_customers=100, n_cutoffs=2, seed=8)
    zero = pa.array(np.zeros(table.num_rows))
    table = table.set_column(table.column_names.index("label_revenue"), "label_revenue", zero)
    with pytest.raises(ValueError, match="no positive label_revenue") as info:
        train(table, STATIC, log=lambda _: None)
    assert "clv_horizon_days" in str(info.value)
    # the dates it worked from, which a derived as-of date (a mistyped year) makes surprising
    cutoffs = sorted(str(c)[:10] for c in set(table.column("cutoff_date").to_pylist()))
    assert f"training cutoff ({cutoffs[0]}; the validation cutoff {cutoffs[1]}" in str(info.value)


def test_too_few_rows_is_a_clear_error():
    table = synthetic_examples(n_customers=6, n_cutoffs=2, seed=9)
    with pytest.raises(ValueError, match="only 12 rows") as info:
        train(table, STATIC, log=lambda _: None)
    assert "clv_training_cutoffs" in str(info.value)


def test_too_few_rows_before_the_held_out_cutoff_says_to_lower_the_horizon():
    """Enough rows in all, too few before the validation cutoff (a shop of a few dozen
    customers): more cutoffs would fall before the data, a shorter horizon moves them later."""
    table = synthetic_examples(n_customers=15, n_cutoffs=2, seed=9)
    with pytest.raises(ValueError, match="only 15 training rows before the held-out cutoff "
                                         r"\S+, fewer than the 20 training needs") as info:
        train(table, STATIC, log=lambda _: None)
    assert "Lower clv_horizon_days" in str(info.value)
    assert "min_rows" not in str(info.value)


def test_duplicate_customer_cutoff_rows_are_rejected():
    table = synthetic_examples(n_customers=30, n_cutoffs=1, seed=10)
    with pytest.raises(ValueError, match="duplicate"):
        train(pa.concat_tables([table, table.slice(0, 1)]), STATIC, log=lambda _: None)


def test_small_data_trains_an_ensemble_that_averages_logits():
    table = synthetic_examples(n_customers=600, n_cutoffs=3, seed=2)
    lines: list[str] = []
    result = train(table, STATIC, TrainSettings(max_epochs=4, patience=10, num_threads=1),
                   log=lines.append, detail=lambda _: None)
    assert isinstance(result.model, EnsembleNetwork) and len(result.model.members) == 3
    assert [line.split(": ")[0] for line in lines if line.startswith("network ")] == [
        "network 1 of 3 (seed 42)", "network 2 of 3 (seed 43)", "network 3 of 3 (seed 44)"]
    assert {row["member"] for row in result.history} == {0, 1, 2}
    static = torch.randn(5, result.model.n_static)
    sequence = torch.rand(5, result.model.n_periods, result.model.n_channels)
    with torch.no_grad():
        members = torch.stack([m.logits(static, sequence) for m in result.model.members])
        assert not torch.allclose(members[0], members[1]), "members start from other seeds"
        torch.testing.assert_close(result.model.logits(static, sequence), members.mean(0))
        p, value, mu, sigma, _ = result.model(static, sequence)
    torch.testing.assert_close(value, p * torch.exp(mu + sigma**2 / 2))
    # member 0 is exactly the single network the same seed trains
    single = train(table, STATIC, TrainSettings(max_epochs=4, patience=10, num_threads=1,
                                                ensemble_size=1), log=lambda _: None)
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(result.model.members[0].state_dict()[name], tensor,
                                   rtol=0, atol=0)


def test_epochs_are_detail_and_each_network_is_one_line():
    table = synthetic_examples(n_customers=300, n_cutoffs=2, seed=5)
    lines: list[str] = []
    details: list[str] = []
    result = train(table, STATIC, TrainSettings(max_epochs=3, patience=10, num_threads=1,
                                                ensemble_size=2),
                   log=lines.append, detail=details.append)
    epochs = [line for line in details if line.startswith("epoch ")]
    assert len(epochs) == 6 and all("train_loss" in e and "validation_loss" in e for e in epochs)
    assert [line for line in details if line.startswith("network ")] == [
        "network 1 of 2 (seed 42)", "network 2 of 2 (seed 43)"]
    assert not [line for line in lines if "train_loss" in line]
    summaries = [line for line in lines if line.startswith("network ")]
    assert len(summaries) == 2
    for member, summary in enumerate(summaries):
        prefix = f"network {member + 1} of 2 (seed {42 + member}): 3 epochs, best epoch "
        assert summary.startswith(prefix)
        best = int(summary[len(prefix):].split()[0])
        loss = next(h["validation_loss"] for h in result.history
                    if h["member"] == member and h["epoch"] == best)
        assert f"with validation_loss {loss:.5f}, " in summary


def test_ensemble_size_is_automatic_unless_set():
    assert ensemble_members(ENSEMBLE_BELOW_ROWS - 1, TrainSettings()) == 3
    assert ensemble_members(ENSEMBLE_BELOW_ROWS, TrainSettings()) == 1
    assert ensemble_members(10, TrainSettings(ensemble_size=2)) == 2
    with pytest.raises(ValueError, match="ensemble_size"):
        TrainSettings(ensemble_size=-1)


@pytest.mark.parametrize(("files", "limit"), [
    ({"cpu.max": "200000 100000\n"}, 2.0),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
     None),
    ({}, None),
    ({"cpu.max": "garbage\n"}, None),
])
def test_a_cgroup_cpu_quota_is_read_from_either_cgroup_version(tmp_path, files, limit):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert config.cgroup_cpu_limit(tmp_path) == limit


def test_the_cores_used_are_at_most_the_quota_rounded_up(monkeypatch):
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: set(range(64)))
    monkeypatch.setattr(config, "cgroup_cpu_limit", lambda: 2.5)
    assert config.available_cores() == 3
    monkeypatch.setattr(config, "cgroup_cpu_limit", lambda: None)
    assert config.available_cores() == 64


def test_the_training_step_reads_the_network_at_the_training_thread_count(monkeypatch):
    """The outputs the calibration and the level are fitted on come from the network run at
    TrainSettings.num_threads, not at torch's default of one thread per core: a matrix
    product splits its sums by thread, so on a machine with other cores the same data and
    seed gave another calibration, level and ONNX file."""
    from types import SimpleNamespace

    from clv.pipeline import training

    class Stop(Exception):
        pass

    seen = []

    def recording_raw_outputs(*_):
        seen.append(torch.get_num_threads())
        raise Stop

    monkeypatch.setattr(training, "read_examples", lambda *_: pa.table({"x": [1.0]}))
    monkeypatch.setattr(training, "trainable_examples", lambda table, *_: table)
    monkeypatch.setattr(training.hybrid, "add_features_per_cutoff", lambda table, _: (table, {}))
    monkeypatch.setattr(train_module, "train",
                        lambda *_, **__: SimpleNamespace(model=None, spec=None))
    monkeypatch.setattr(training, "raw_outputs", recording_raw_outputs)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run = SimpleNamespace(model_static_features=(), channels=(), horizon_days=365)
        with pytest.raises(Stop):
            training._train(None, None, run, TrainSettings(num_threads=1), "fingerprint")
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(previous)
    assert seen == [1]
