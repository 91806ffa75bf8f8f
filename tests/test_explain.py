"""Feature-group explanations (clv.explain): contributions that add up, groups that equal the
reference contribute nothing, a hand-built graph whose one group gets everything, the graph split
into sequence encoder and head that computes exactly what the whole graph does (and the whole
graph where it cannot be split), permutation importance that tells noise from signal; then the
two dbt tables.

Tolerance of the additivity checks: the contributions are differences of the same float32
network outputs, taken in float64, so they add up to f(x) - f(reference) to float64 rounding;
the tests allow 1e-9 of the prediction scale max(1, |f(x)|, |f(reference)|), far below the
float32 resolution of the network itself (about 1e-7 relative).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pyarrow as pa
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

import clv.explain as explain_module
from clv.artifacts import ModelArtifact
from clv.calibration import CalibratedNetwork
from clv.config import ExportSettings, TrainSettings
from clv.data import SYNTHETIC_STATIC_FEATURES, FeatureSpec, model_inputs, synthetic_examples
from clv.explain import (
    EXPLANATION_SCHEMA,
    Reference,
    UnsplittableGraphError,
    contributions,
    explain_batches,
    explanation_stages,
    feature_groups,
    parallel_stages,
    permutation_importance,
    session_predict,
    split_graph,
    split_stages,
    split_static_transform,
    whole_graph,
)
from clv.export import export_model, export_onnx_bytes
from clv.level import SpendLevel
from clv.network import ClvNetwork, EnsembleNetwork
from clv.pipeline.explanations import IMPORTANCE_COLUMNS, feature_importance_table
from clv.pipeline.settings import RunSettings
from clv.pipeline.training import calibrate
from clv.score import LoadedModel, ModelMismatchError, load_verified, make_session, score_table
from clv.train import train

CHANNELS = ("orders", "revenue", "active_days")
# The synthetic examples' static features, grouped as clv_feature_groups() would declare them.
DECLARED = {"history": ("frequency", "monetary_value", "orders_last_30d", "recency_days",
                        "revenue_last_365d"),
            "noise": ("noise",),
            "attributes": ("days_since_signup",)}
SPEND_FACTOR = 2.5


def at_factor(factor: float) -> SpendLevel:
    """A spend level whose factor is ``factor`` (no BG/NBD total: the network's weight)."""
    return SpendLevel(btyd_total=0.0, network_total=1.0, btyd_level_correction=0.0,
                      network_level_weight=factor)
ADDITIVITY = 1e-9  # of the prediction scale, see the module docstring


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A calibrated network on synthetic examples, exported as the pipeline does."""
    table = synthetic_examples(n_customers=1500, n_cutoffs=2, seed=31)
    result = train(table, SYNTHETIC_STATIC_FEATURES,
                   TrainSettings(max_epochs=4, num_threads=1, ensemble_size=1),
                   log=lambda _: None, channels=CHANNELS)
    calibrate(result)
    directory = tmp_path_factory.mktemp("models")
    export_model(result, directory, {"fingerprint": "fp", "horizon_days": 365},
                 ExportSettings(exporter="torchscript"), log=lambda _: None)
    model = load_verified(directory)
    reference = Reference.median_of(*model_inputs(table, model.spec))
    return model, result, reference


@pytest.fixture(scope="module")
def scoring() -> pa.Table:
    return synthetic_examples(n_customers=2000, n_cutoffs=1, seed=32, with_labels=False)


def _scale(*values: np.ndarray) -> np.ndarray:
    return np.maximum.reduce([np.ones_like(values[0]), *(np.abs(v) for v in values)])


def test_groups_partition_the_inputs_in_a_fixed_order(trained):
    model, _, _ = trained
    groups = feature_groups(model.spec, DECLARED)
    assert [g.name for g in groups] == ["history", "noise", "attributes", "btyd",
                                        "activity_sequence"]
    positions = sorted(i for g in groups for i in g.static)
    assert positions == list(range(len(model.spec.static)))
    assert groups[3].size == 0  # no BTYD inputs in this model
    assert groups[4].sequence and groups[4].columns == model.spec.sequence_columns
    twice = feature_groups(model.spec, {**DECLARED, "again": ("noise", "frequency")})
    assert [g.columns for g in twice if g.name == "again"] == [()]
    with pytest.raises(ValueError, match=r"\['noise'\] belong to no feature group"):
        feature_groups(model.spec, {k: v for k, v in DECLARED.items() if k != "noise"})


def test_contributions_add_up_to_the_prediction_minus_the_reference(trained, scoring):
    model, _, reference = trained
    groups = feature_groups(model.spec, DECLARED)
    static, sequence = model_inputs(scoring, model.spec)
    messages = []
    stages = explanation_stages(model, reference, log=messages.append)
    assert stages.split and stages.prepare is not np.asarray and messages == []
    result = contributions(stages, static, sequence, reference, groups)
    gap = result.by_group.sum(axis=1) - (result.prediction - result.reference)
    assert np.all(np.abs(gap) <= ADDITIVITY * _scale(result.prediction, result.reference))
    assert np.all(result.by_group[:, 3] == 0)  # btyd: no inputs
    # The streamed table: in currency, predicted_clv as scoring computes it, same additivity.
    table = explain_batches(model, scoring.to_batches(max_chunksize=700), groups, reference,
                            at_factor(SPEND_FACTOR), batch_rows=1024,
                            as_of=date(2024, 1, 1)).read_all()
    assert table.schema == EXPLANATION_SCHEMA
    assert set(table.column("as_of_date").to_pylist()) == {date(2024, 1, 1)}  # on every row
    assert table.column("customer_id").equals(scoring.column("customer_id"))
    frame = table.to_pandas()
    scored = score_table(model, scoring).column("network_clv").to_numpy() * SPEND_FACTOR
    np.testing.assert_array_equal(frame.predicted_clv, scored)  # same row offsets as scoring
    gap = frame.contribution_total - (frame.predicted_clv - frame.reference_clv)
    assert np.all(np.abs(gap) <= ADDITIVITY * _scale(frame.predicted_clv, frame.reference_clv))
    assert frame.reference_clv.nunique() == 1


def _walks_by_hand(session, static, sequence, reference, groups) -> np.ndarray:
    """The definition, one customer at a time: walk every group forward and backward."""
    predict = session_predict(session)
    names = [g.name for g in groups]
    result = np.zeros((len(static), len(groups)))
    for row in range(len(static)):
        for order in (names, names[::-1]):
            inputs = [(reference.static.copy(), reference.sequence.copy())]
            for name in order:
                group = groups[names.index(name)]
                s, q = (a.copy() for a in inputs[-1])
                s[list(group.static)] = static[row, list(group.static)]
                if group.sequence:
                    q = sequence[row].copy()
                inputs.append((s, q))
            values = predict(np.stack([s for s, _ in inputs]), np.stack([q for _, q in inputs]))
            for step, name in enumerate(order):
                result[row, names.index(name)] += 0.5 * (values[step + 1] - values[step])
    return result


def test_contributions_match_a_plain_recomputation(trained, scoring):
    model, _, reference = trained
    groups = feature_groups(model.spec, DECLARED)
    static, sequence = model_inputs(scoring.slice(0, 25), model.spec)
    ours = contributions(explanation_stages(model, reference), static, sequence, reference,
                         groups)
    expected = _walks_by_hand(model.session, static, sequence, reference, groups)
    np.testing.assert_allclose(ours.by_group, expected, rtol=1e-5,
                               atol=1e-6 * float(np.abs(expected).max()))


def test_a_group_equal_to_the_reference_contributes_nothing(trained, scoring):
    model, _, reference = trained
    groups = feature_groups(model.spec, DECLARED)
    # An odd number of customers: each block of states would start at an odd row offset if
    # contributions() did not align them, and onnxruntime rounds some rows differently there.
    static, sequence = model_inputs(scoring.slice(0, 401), model.spec)
    noise = model.spec.static.index("noise")
    static[::2, noise] = reference.static[noise]  # every other customer: noise as the reference
    sequence[::2] = reference.sequence  # and the whole activity sequence
    static[1] = reference.static  # one customer is the reference in every input
    sequence[1] = reference.sequence
    result = contributions(explanation_stages(model, reference), static, sequence, reference,
                           groups)
    names = [g.name for g in groups]
    assert np.all(result.by_group[::2, names.index("noise")] == 0)
    assert np.all(result.by_group[::2, names.index("activity_sequence")] == 0)
    assert np.all(result.by_group[1] == 0) and result.prediction[1] == result.reference[1]
    assert np.any(result.by_group[1::2, names.index("noise")] != 0)


def test_a_customer_equal_to_any_reference_contributes_nothing(trained, scoring):
    """Whatever the reference, f(reference) is computed in a full block of rows like every
    state: onnxruntime rounds a lone last row of a call differently for some inputs, so a
    reference row of its own left tiny contributions where the inputs were equal."""
    model, _, reference = trained
    groups = feature_groups(model.spec, DECLARED)
    stages = explanation_stages(model, reference)
    static, sequence = model_inputs(scoring.slice(0, 64), model.spec)
    for k in range(len(static)):  # each customer in turn is the reference
        own = Reference(static[k].copy(), sequence[k].copy(), rows=1)
        result = contributions(stages, static, sequence, own, groups)
        assert np.all(result.by_group[k] == 0), k
        assert result.prediction[k] == result.reference[k], k


def _hand_built_model(weights: list[float], sequence_weight: float | None = None) -> LoadedModel:
    """network_clv = exp(l), l = static @ weights over four static inputs (groups a: a1, a2 and
    b: b1, b2); the sequence input [batch, 2, 1] is read by no node. With ``sequence_weight``
    w, network_clv = exp(l + w * sum(l * sequence)): the sequence input itself is multiplied by
    l, so nothing computed from the sequence alone feeds the static path (no cut)."""
    nodes = [helper.make_node("MatMul", ["static", "weights"], ["linear"]),
             helper.make_node("Squeeze", ["linear", "axis"], ["flat"])]
    constants = [helper.make_tensor("weights", TensorProto.FLOAT, [4, 1], weights),
                 helper.make_tensor("axis", TensorProto.INT64, [1], [1])]
    if sequence_weight is None:
        nodes.append(helper.make_node("Exp", ["flat"], ["network_clv"]))
    else:
        constants += [helper.make_tensor("last", TensorProto.INT64, [1], [2]),
                      helper.make_tensor("periods", TensorProto.INT64, [2], [1, 2]),
                      helper.make_tensor("sequence_weight", TensorProto.FLOAT, [],
                                         [sequence_weight])]
        nodes += [helper.make_node("Unsqueeze", ["linear", "last"], ["factor"]),
                  helper.make_node("Mul", ["sequence", "factor"], ["scaled"]),
                  helper.make_node("ReduceSum", ["scaled", "periods"], ["total"], keepdims=0),
                  helper.make_node("Mul", ["total", "sequence_weight"], ["term"]),
                  helper.make_node("Add", ["flat", "term"], ["exponent"]),
                  helper.make_node("Exp", ["exponent"], ["network_clv"])]
    graph = helper.make_graph(
        nodes, "hand_built",
        [helper.make_tensor_value_info("static", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("sequence", TensorProto.FLOAT, ["batch", 2, 1])],
        [helper.make_tensor_value_info("network_clv", TensorProto.FLOAT, ["batch"])],
        initializer=constants)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)],
                              ir_version=8)  # opset 18's IR: every supported onnxruntime reads it
    onnx.checker.check_model(proto)
    spec = FeatureSpec(static=("a1", "a2", "b1", "b2"), channels=("orders",),
                       sequence=(("seq_orders_lag_01", "seq_orders_lag_02"),))
    artifact = ModelArtifact("hand_built", Path("hand.onnx"), Path("hand.json"), {})
    graph_bytes = proto.SerializeToString()
    return LoadedModel(artifact, make_session(graph_bytes), spec, workers=1, graph=graph_bytes)


def _hand_table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {"customer_id": [f"c{i}" for i in range(rows)]}
    columns |= {name: rng.normal(0, 1, rows) for name in ("a1", "a2", "b1", "b2")}
    columns |= {f"seq_orders_lag_0{lag}": rng.poisson(2, rows).astype(float) for lag in (1, 2)}
    return pa.table(columns)


HAND_REFERENCE = Reference(np.zeros(4, np.float32), np.zeros((2, 1), np.float32), rows=1)


def test_only_the_group_that_matters_gets_the_contribution():
    model = _hand_built_model([0.3, -0.2, 0.0, 0.0])
    groups = feature_groups(model.spec, {"a": ("a1", "a2"), "b": ("b1", "b2")})
    table = _hand_table(300, seed=1)
    static, sequence = model_inputs(table, model.spec)
    result = contributions(whole_graph(model.session), static, sequence, HAND_REFERENCE,
                           groups)
    f = np.exp(static.astype(np.float64) @ [0.3, -0.2, 0.0, 0.0])
    np.testing.assert_allclose(result.by_group[:, 0], f - 1.0, rtol=1e-6, atol=1e-7)
    assert np.all(result.by_group[:, 1:] == 0)
    explained = explain_batches(model, table, groups, HAND_REFERENCE, at_factor(10.0)).read_all()
    assert set(explained.column("driver_1_group").to_pylist()) == {"a"}
    assert explained.column("driver_2_group").null_count == explained.num_rows
    assert explained.column("driver_3_contribution").null_count == explained.num_rows


def test_with_two_groups_that_interact_the_estimate_is_the_shapley_value():
    """f = exp(wa.a + wb.b) is not additive in a and b; the sequence is a null player, so the
    forward and reverse walks are the two orders of a and b: the exact Shapley value."""
    weights = [0.3, -0.2, 0.1, 0.05]
    model = _hand_built_model(weights)
    groups = feature_groups(model.spec, {"a": ("a1", "a2"), "b": ("b1", "b2")})
    static, sequence = model_inputs(_hand_table(300, seed=2), model.spec)
    result = contributions(whole_graph(model.session), static, sequence, HAND_REFERENCE,
                           groups)
    x = static.astype(np.float64)
    a, b = x[:, :2] @ weights[:2], x[:, 2:] @ weights[2:]
    shapley_a = 0.5 * ((np.exp(a) - 1) + (np.exp(a + b) - np.exp(b)))
    shapley_b = 0.5 * ((np.exp(b) - 1) + (np.exp(a + b) - np.exp(a)))
    np.testing.assert_allclose(result.by_group[:, 0], shapley_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.by_group[:, 1], shapley_b, rtol=1e-5, atol=1e-6)
    assert np.all(result.by_group[:, 2:] == 0)


# --- the graph split into sequence encoder and head ---------------------------------------------

N_PERIODS = 12


def _random_inputs(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs shaped as the synthetic examples': heavy tails, some negative, many zeros."""
    rng = np.random.default_rng(seed)
    shape = (rows, len(SYNTHETIC_STATIC_FEATURES))
    static = rng.gamma(0.5, 300.0, shape) * np.where(rng.random(shape) < 0.1, -1, 1)
    static[rng.random(shape) < 0.2] = 0.0
    sequence = (rng.poisson(0.8, (rows, N_PERIODS, len(CHANNELS)))
                * rng.gamma(1.0, 40.0, (rows, 1, 1)))
    return static.astype(np.float32), sequence.astype(np.float32)


def _network(seed: int) -> ClvNetwork:
    """An untrained network of the synthetic examples' shape, standardised on random inputs."""
    torch.manual_seed(seed)
    network = ClvNetwork(len(SYNTHETIC_STATIC_FEATURES), N_PERIODS, len(CHANNELS))
    network.set_normalisation(*_random_inputs(500, seed))
    return network.eval()


@pytest.mark.parametrize(("exporter", "members"), [
    ("torchscript", 1), ("torchscript", 3),
    # the dynamo exporter takes 10 s or more
    pytest.param("dynamo", 1, marks=pytest.mark.slow),
    pytest.param("dynamo", 2, marks=pytest.mark.slow)])
def test_encoder_and_head_compute_exactly_what_the_whole_graph_does(trained, exporter, members):
    """A calibrated network or ensemble (with a purchase-rate factor), from either exporter: the
    cut is each member's last GRU state, every GRU step is in the encoder, and encoder then head
    give the whole graph's network_clv bit for bit, hence the same explanations; so do the
    encoder, each member's static standardisation and the rest of the head."""
    base = (_network(0) if members == 1
            else EnsembleNetwork([_network(seed) for seed in range(members)]))
    network = CalibratedNetwork(base, np.log([1.0, 10.0, 100.0]), np.log([0.5, 8.0, 150.0]),
                                probability_slope=1.2, probability_intercept=-0.1,
                                sigma_scale=0.9, purchase_rate_factor=1.3).eval()
    graph = export_onnx_bytes(network, exporter, 18)
    split = split_graph(onnx.load_from_string(graph))
    assert len(split.encoded) == members and split.shapes == ((12,),) * members  # gru_hidden
    assert [n.op_type for n in split.encoder.graph.node].count("Tanh") == N_PERIODS * members
    assert "Tanh" not in {n.op_type for n in split.head.graph.node}
    static_split = split_static_transform(split)
    assert len(static_split.transformed) == members
    def logs(part):  # the standardisation's signed log1p (the members share it) is cut off
        return [n.op_type for n in part.graph.node].count("Log")
    assert logs(static_split.transform) == 1
    assert logs(static_split.tail) == logs(split.head) - 1
    whole = whole_graph(make_session(graph))
    stages = (split_stages(split), split_stages(split, static_split))
    assert stages[1].copies == members
    static, sequence = _random_inputs(1001, seed=1)
    for staged in stages:
        np.testing.assert_array_equal(staged.predict(static, sequence),
                                      whole.predict(static, sequence))

    reference = Reference.median_of(static, sequence)
    static[::2, 3] = reference.static[3]
    sequence[1::3] = reference.sequence
    groups = feature_groups(trained[0].spec, DECLARED)  # the same inputs as these networks'
    expected = contributions(whole, static, sequence, reference, groups)
    for staged in stages:
        ours = contributions(staged, static, sequence, reference, groups)
        for name in ("reference", "prediction", "by_group"):
            np.testing.assert_array_equal(getattr(ours, name), getattr(expected, name))


def test_a_graph_without_a_cut_is_explained_whole():
    """Two hand-built graphs cannot be split: one whose output does not read the sequence, one
    whose node multiplies the sequence input itself by the static path. Both are run whole for
    every state, with a log line, and explained correctly."""
    weights = [0.3, -0.2, 0.1, 0.05]
    for model, reason in ((_hand_built_model(weights), "does not depend on both inputs"),
                          (_hand_built_model(weights, sequence_weight=0.1),
                           "read 'sequence' itself")):
        assert model.graph is not None
        with pytest.raises(UnsplittableGraphError, match=reason):
            split_graph(onnx.load_from_string(model.graph))
        messages = []
        stages = explanation_stages(model, HAND_REFERENCE, log=messages.append)
        assert not stages.split and len(messages) == 1 and reason in messages[0]
    groups = feature_groups(model.spec, {"a": ("a1", "a2"), "b": ("b1", "b2")})
    static, sequence = model_inputs(_hand_table(300, seed=3), model.spec)
    result = contributions(stages, static, sequence, HAND_REFERENCE, groups)
    linear = static.astype(np.float64) @ weights
    expected = np.exp(linear * (1 + 0.1 * sequence.sum(axis=(1, 2))))
    np.testing.assert_allclose(result.prediction, expected, rtol=1e-5)
    gap = result.by_group.sum(axis=1) - (result.prediction - result.reference)
    assert np.all(np.abs(gap) <= ADDITIVITY * _scale(result.prediction, result.reference))
    # The sequence moves f only once the static inputs are switched: in the forward walk.
    np.testing.assert_allclose(result.by_group[:, 3], 0.5 * (expected - np.exp(linear)),
                               rtol=1e-5, atol=1e-6)


def _scale_a_weight(part: onnx.ModelProto) -> None:
    """Make ``part`` compute something else: its first float weight matrix 0.1% off."""
    weight = next(t for t in part.graph.initializer
                  if t.data_type == TensorProto.FLOAT and np.prod(t.dims) > 1)
    weight.CopyFrom(numpy_helper.from_array(
        numpy_helper.to_array(weight) * np.float32(1.001), weight.name))


def test_a_split_that_does_not_reproduce_the_graph_is_not_used(trained, monkeypatch):
    """Were encoder and head to compute anything but the whole graph (here one head weight is
    0.1% off), explanations run the whole graph."""
    model, _, reference = trained

    def altered(proto: onnx.ModelProto):
        split = split_graph(proto)
        _scale_a_weight(split.head)
        return split

    monkeypatch.setattr(explain_module, "split_graph", altered)
    messages = []
    assert not explanation_stages(model, reference, log=messages.append).split
    assert len(messages) == 1 and "do not reproduce the whole graph" in messages[0]


def test_a_static_transform_that_does_not_reproduce_the_head_is_not_used(trained,
                                                                         monkeypatch):
    """Were the static transform and the rest of the head to compute anything but the head
    (here one tail weight is 0.1% off), explanations run encoder and head, as one split."""
    model, _, reference = trained

    def altered(split):
        static_split = split_static_transform(split)
        _scale_a_weight(static_split.tail)
        return static_split

    monkeypatch.setattr(explain_module, "split_static_transform", altered)
    messages = []
    stages = explanation_stages(model, reference, log=messages.append)
    assert stages.split and stages.prepare is np.asarray and stages.copies == 1
    assert len(messages) == 1 and "transform and tail do not reproduce" in messages[0]


def test_permutation_importance_separates_noise_from_signal(trained):
    model, result, reference = trained
    groups = feature_groups(model.spec, DECLARED)
    label = result.validation.column("label").to_numpy()
    stages = explanation_stages(model, reference)
    assert stages.split
    arguments = (parallel_stages(stages, model.workers, chunk_rows=256),
                 result.validation_static, result.validation_sequence, label, groups)
    rows = {row["feature_group"]: row for row in permutation_importance(*arguments, seed=7)}
    assert abs(rows["noise"]["gini_drop"]) < 0.02  # a column of pure noise
    assert rows["history"]["gini_drop"] > 0.2  # frequency, spend and recency
    assert rows["noise"]["repeats"] == 3 and rows["history"]["columns"] == 5
    assert rows["btyd"]["columns"] == 0 and rows["btyd"]["gini_drop"] is None
    assert len({row["baseline_gini"] for row in rows.values()}) == 1
    assert permutation_importance(*arguments, seed=7) == list(rows.values())  # seeded
    # the sequences encoded once and the head run per permutation: exactly what running the
    # whole graph for every permutation gives
    whole = (parallel_stages(whole_graph(model.session), model.workers, chunk_rows=256),
             *arguments[1:])
    assert permutation_importance(*whole, seed=7) == list(rows.values())


def test_permutation_importance_reports_each_permutations_mean_and_spread():
    """On a small head with interactions (so a shuffle moves the total, not only the order):
    every figure of a group's row from its own permutations (drawn as the docstring says), the
    aggregate error's change against the unshuffled rows included."""
    from clv import metrics
    from clv.explain import InputGroup, Stages

    rng = np.random.default_rng(3)
    static = rng.gamma(2.0, 1.0, (300, 3))
    sequence = rng.gamma(1.0, 1.0, (300, 4, 2))
    label = static @ [3.0, 1.0, 0.0] + sequence.sum(axis=(1, 2)) + rng.gamma(1.0, 1.0, 300)
    stages = Stages(encode=lambda s: s.reshape(len(s), -1),
                    head=lambda prepared, encoded: (prepared @ [3.0, 1.0, 0.2]
                                                    + prepared[:, 0] * prepared[:, 1]
                                                    + encoded.sum(1) * prepared[:, 2]),
                    split=True)
    groups = [InputGroup("strong", ("a",), (0,), False),
              InputGroup("pair", ("b", "c"), (1, 2), False),
              InputGroup("sequence", ("s",), (), True)]
    rows = permutation_importance(stages, static, sequence, label, groups, seed=5, repeats=4)
    baseline = stages.predict(static, sequence)
    for index, (group, row) in enumerate(zip(groups, rows, strict=True)):
        draw = np.random.default_rng([5, index])
        ginis, errors = [], []
        for _ in range(4):
            order = draw.permutation(300)
            shuffled_static, shuffled_sequence = static.copy(), sequence
            if group.sequence:
                shuffled_sequence = sequence[order]
            else:
                shuffled_static[:, group.static] = static[order][:, group.static]
            predicted = stages.predict(shuffled_static, shuffled_sequence)
            ginis.append(metrics.normalized_gini(label, predicted))
            errors.append(metrics.aggregate_error(label, predicted))
        drops = metrics.normalized_gini(label, baseline) - np.array(ginis)
        assert row["gini_drop"] == pytest.approx(drops.mean()), group.name
        assert row["gini_drop_std"] == pytest.approx(drops.std(ddof=1)), group.name
        assert row["gini_drop_std"] > 0, group.name
        assert row["aggregate_error_change"] == pytest.approx(
            np.mean(errors) - metrics.aggregate_error(label, baseline)), group.name
        assert row["aggregate_error_change"] != 0, group.name
        assert row["aggregate_error_change"] == pytest.approx(
            row["permuted_aggregate_error"] - row["baseline_aggregate_error"]), group.name
    assert rows[0]["gini_drop"] > rows[1]["gini_drop"] > 0


def test_permutation_importance_reads_a_uniform_sample_of_many_rows(trained):
    model, result, reference = trained
    groups = feature_groups(model.spec, DECLARED)
    static, sequence = result.validation_static, result.validation_sequence
    label = result.validation.column("label").to_numpy()
    predict = parallel_stages(explanation_stages(model, reference), model.workers)
    sampled = permutation_importance(predict, static, sequence, label, groups, seed=7,
                                     max_rows=len(label) // 2)
    rows = np.sort(np.random.default_rng(7).choice(len(label), len(label) // 2, replace=False))
    direct = permutation_importance(predict, static[rows], sequence[rows], label[rows], groups,
                                    seed=7)
    assert sampled == direct
    whole = permutation_importance(predict, static, sequence, label, groups, seed=7)
    assert sampled[0]["baseline_gini"] != whole[0]["baseline_gini"]


def test_reference_round_trip_and_shape_check(trained):
    model, _, reference = trained
    saved = json.loads(json.dumps(reference.to_dict()))
    again = Reference.from_dict(saved, model.spec)
    np.testing.assert_array_equal(again.static, reference.static)
    np.testing.assert_array_equal(again.sequence, reference.sequence)
    shorter = FeatureSpec(model.spec.static[1:], model.spec.channels, model.spec.sequence)
    with pytest.raises(ModelMismatchError, match="reference_inputs have shapes"):
        Reference.from_dict(saved, shorter)
    static = np.arange(12, dtype=np.float32).reshape(4, 3)
    sequence = np.arange(24, dtype=np.float32).reshape(4, 3, 2)
    median = Reference.median_of(static, sequence)
    np.testing.assert_array_equal(median.static, [4.5, 5.5, 6.5])
    assert median.sequence.shape == (3, 2) and median.sequence[0, 0] == 9.0
    # a model's fill values are its static medians: a missing input reads as the reference's
    filled = Reference.median_of(static, sequence, fill=(1.0, 2.0, 3.0))
    np.testing.assert_array_equal(filled.static, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(filled.sequence, median.sequence)


@pytest.mark.slow
def test_a_customer_missing_an_input_is_the_reference_in_it(project):
    """The saved reference customer's static inputs are the model's fill values, so a customer
    without a value (no row in clv_customers, say) is not moved by that input."""
    from clv.score import load_verified

    [version] = project.query("select distinct model_version from clv_predictions").model_version
    model = load_verified(Path(project.vars["clv_model_dir"]), version)
    saved = model.metadata["reference_inputs"]["static"]
    assert len(saved) == len(model.spec.static_fill) > 0
    np.testing.assert_array_equal(np.float32(saved), np.float32(model.spec.static_fill))


def test_explanations_read_their_input_lazily(trained, scoring):
    model, _, reference = trained
    groups = feature_groups(model.spec, DECLARED)
    pulled = []

    def source():
        for batch in scoring.to_batches(max_chunksize=100):
            pulled.append(batch.num_rows)
            yield batch

    reader = explain_batches(model, source(), groups, reference, at_factor(1.0), batch_rows=200)
    first = reader.read_next_batch()
    assert first.num_rows == 200
    assert sum(pulled) <= 200 * (model.workers + 2)  # a few chunks, not the whole input
    assert first.num_rows + sum(b.num_rows for b in reader) == scoring.num_rows


def test_run_settings_carry_the_groups_and_the_opt_out():
    row = {"model_dir": "onnx", "retrain": "auto", "horizon_days": 365, "period_days": 30,
           "sequence_periods": 12, "seed": 42, "static_features": "a,b,c",
           "channels": "orders", "export_path": "x.parquet", "ensemble_size": 1,
           "explanations": False, "feature_groups": '{"second": ["b", "c"], "first": ["a"]}'}
    run = RunSettings.from_row(row)
    assert run.explanations is False
    assert list(run.feature_groups.items()) == [("second", ("b", "c")), ("first", ("a",))]


def test_feature_importance_table_reads_each_models_metadata(tmp_path):
    rows = [{"feature_group": "monetary", "columns": 7, "repeats": 3, "baseline_gini": 0.6,
             "gini_drop": 0.1}]
    for version, meta in (("new", {"validation_cutoff": "2024-01-01",
                                   "feature_importance": rows}),
                          ("old", {"validation_cutoff": "2023-01-01"})):
        (tmp_path / f"clv_model_{version}.json").write_text(json.dumps(meta))
    registry = pd.DataFrame({"model_version": ["old", "new"], "is_current": [False, True],
                             "onnx_path": [str(tmp_path / f"clv_model_{v}.onnx")
                                           for v in ("old", "new")]})
    table = feature_importance_table(registry)
    assert list(table.columns) == list(IMPORTANCE_COLUMNS) and len(table) == 1
    row = table.iloc[0]
    assert (row.model_version, row.is_current, row.validation_cutoff, row.feature_group,
            row.columns, row.gini_drop) == ("new", True, "2024-01-01", "monetary", 7, 0.1)
    assert pd.isna(row.permuted_gini)  # a key the metadata lacks
    empty = feature_importance_table(registry.iloc[:1])
    assert empty.empty and str(empty.dtypes["gini_drop"]) == "float64"


# --- the dbt tables -------------------------------------------------------------------------

GROUPS = ["recency_frequency", "monetary", "trailing_windows", "trends", "refunds",
          "categories", "attributes", "events", "btyd", "activity_sequence"]
MODELS = "+clv_prediction_explanations +clv_feature_importance"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import DbtProject

    from clv.synthetic import GeneratorSettings, generate

    workdir = tmp_path_factory.mktemp("explain")
    data = generate(GeneratorSettings(n_customers=400, start_date=date(2021, 1, 1),
                                      end_date=date(2023, 12, 31), seed=8))
    path = workdir / "transactions.csv"
    data.transactions.to_csv(path, index=False)
    project = DbtProject(workdir)
    project.vars = {"clv_transactions": str(path), "clv_horizon_days": 180,
                    "clv_model_dir": str(workdir / "models"), "clv_ensemble_size": 1}
    project.build(vars=project.vars, select=MODELS)
    return project


@pytest.mark.slow
def test_feature_importance_has_one_row_per_model_and_group(project):
    settings = project.query("select feature_groups from clv_run_settings")
    assert list(json.loads(settings.feature_groups[0])) == GROUPS[:-2]
    importance = project.query("select * from clv_feature_importance")
    assert list(importance.feature_group) == GROUPS
    assert not importance.duplicated(["model_version", "feature_group"]).any()
    by_group = importance.set_index("feature_group")
    assert by_group.loc["btyd", "columns"] == 4
    assert by_group.loc["activity_sequence", "columns"] == 12 * 3
    assert by_group.gini_drop.notna().all() and (by_group.repeats == 3).all()


@pytest.mark.slow
def test_explanations_have_one_row_per_scored_customer(project):
    explained = project.query("select * from clv_prediction_explanations order by customer_id")
    # the Python step's columns, the as-of date they are for among them (a BI join needs it)
    assert list(explained.columns) == EXPLANATION_SCHEMA.names
    as_of = project.query("select distinct as_of_date from clv_predictions").as_of_date
    assert set(explained.as_of_date) == set(as_of) and len(as_of) == 1
    assert explained.customer_id.is_unique
    scores = project.query("select customer_id, predicted_clv from int_clv__scores "
                           "order by customer_id")
    assert list(explained.customer_id) == list(scores.customer_id)
    np.testing.assert_array_equal(explained.predicted_clv, scores.predicted_clv)
    gap = explained.contribution_total - (explained.predicted_clv - explained.reference_clv)
    scale = _scale(explained.predicted_clv.to_numpy(), explained.reference_clv.to_numpy())
    assert np.all(np.abs(gap) <= ADDITIVITY * scale)
    assert set(explained.driver_1_group) <= set(GROUPS)
    sizes = explained[[f"driver_{k}_contribution" for k in (1, 2, 3)]].abs().fillna(0)
    assert (sizes.diff(axis=1).iloc[:, 1:] <= 0).all().all()  # ranked by absolute value


@pytest.mark.slow
def test_opting_out_leaves_an_empty_table_with_the_same_columns(project):
    """Last in this module: it rebuilds the shared table with clv_explanations false."""
    project.build(vars={**project.vars, "clv_explanations": False},
                  select="clv_run_settings int_clv__prediction_explanations+")
    empty = project.query("select * from clv_prediction_explanations")
    assert empty.empty and list(empty.columns) == EXPLANATION_SCHEMA.names


@pytest.mark.slow
def test_clv_explanations_must_be_true_or_false(dbt_project):
    from dbt.exceptions import CompilationError

    with pytest.raises(CompilationError, match="Invalid value for var 'clv_explanations'"):
        dbt_project.run("parse", vars={"clv_explanations": "sometimes"})
