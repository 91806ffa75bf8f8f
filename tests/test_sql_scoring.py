"""Scoring as SQL (clv.sql_scoring): every supported ONNX operator against onnxruntime on a
hand-built graph, the refusal of others, ndtri and hyp2f1 in SQL against scipy, the input
conversions against pyarrow and numpy, BG/NBD + Gamma-Gamma against clv.baselines, and
(slow) the whole prediction on DuckDB and PostgreSQL against clv.pipeline.scoring.predict and
a float64 evaluation of the same graph.

SQL is run by the duckdb package here; the package itself never talks to an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from engines import postgres_connection, schema_name
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from parity import assert_scores_match, quantile_allowance, relative
from scipy.special import hyp2f1, ndtri

from clv import hybrid, level
from clv.artifacts import sha256_file
from clv.baselines import btyd_expected_spend
from clv.btyd import BGNBDParams, GammaGammaParams
from clv.config import ExportSettings, TrainSettings
from clv.data import (
    SYNTHETIC_STATIC_FEATURES,
    labels,
    model_inputs,
    stable_floats,
    synthetic_examples,
)
from clv.export import export_model, update_metadata
from clv.level import LevelAccumulator, micro_units, model_rate_factor
from clv.pipeline.scoring import (
    SCORE_COLUMNS,
    ScoringPlan,
    ScoringRun,
    predict,
    record,
    run_path,
    with_btyd,
    with_query,
)
from clv.pipeline.settings import RunSettings
from clv.pipeline.training import calibrate
from clv.score import (
    DEFAULT_QUANTILES,
    SPEND_BOUND_MARGIN,
    load_verified,
    quantile_column,
    score_batches,
)
from clv.sql_scoring import (
    SUPPORTED_OPERATORS,
    UnsupportedOperatorError,
    compile_graph,
    compile_scoring_sql,
    sql_path,
    write_scoring_sql,
)
from clv.sql_scoring.btyd import BTYDColumns, btyd_layers
from clv.sql_scoring.dialects import DIALECTS, literal
from clv.sql_scoring.nodes import Layer
from clv.sql_scoring.query import _leveled_distribution, _Query, float32_input, stable_float
from clv.sql_scoring.special import OutsideSqlRange, hyp2f1_layers, hyp2f1_terms, ndtri_layers
from clv.train import train
from clv.warehouse import DuckDBWarehouse
from clv.warehouse.spark import with_stages

DUCKDB = DIALECTS["duckdb"]
DOTS = DUCKDB.dot_products
# The scoring examples hold a value beyond float32 on purpose; numpy says so when scoring
# reads it as 0.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")


def run_layers(frame: pd.DataFrame, layers: Sequence[Layer],
               outputs: Sequence[str]) -> pd.DataFrame:
    """``outputs`` of ``layers`` (each a select over the previous one) over the rows of
    ``frame``, in row order, computed by DuckDB."""
    frame = frame.assign(row_id=np.arange(len(frame)))
    ctes = ["layer_0 as (select * from frame)"]
    for number, layer in enumerate(layers, start=1):
        columns = ", ".join(f"{expression} as {name}" for name, expression in layer)
        ctes.append(f"layer_{number} as (select *, {columns} from layer_{number - 1})")
    query = (f"with {', '.join(ctes)} select {', '.join(outputs)} from layer_{len(layers)} "
             "order by row_id")
    with duckdb.connect() as connection:
        connection.register("frame", frame)
        return connection.sql(query).df()


# -- the input conversions --------------------------------------------------------------------

def test_literals_read_back_as_the_same_double():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(0, 1, 200).astype(np.float32).astype(np.float64),
                             rng.lognormal(0, 20, 200), -rng.lognormal(0, 20, 200),
                             [0.1, 1e-300, 2.2250738585072014e-308, 1.7976931348623157e308,
                              3.4028234663852886e38, 5e-324, 0.0, 1.0, -700.0]])
    query = "select " + ", ".join(f"{literal(v)} as v{i}" for i, v in enumerate(values))
    with duckdb.connect() as connection:
        got = np.array(connection.execute(query).fetchone(), dtype=np.float64)
    assert np.array_equal(got, values)


def test_stable_floats_round_half_to_even_as_pyarrow():
    """The compiled SQL rounds as stable_floats does: pyarrow's half to even, and values from
    1e300 on left as they are (pyarrow's round raised an overflow on 1e303, failing scoring
    where the SQL engine scored)."""
    rng = np.random.default_rng(4)
    ties = (rng.integers(-10**9, 10**9, 2000) + 0.5) / 1e6  # x.5 micro-units, as near as exists
    ordinary = np.concatenate([ties, rng.normal(0, 1000, 2000), rng.lognormal(0, 8, 500),
                               [0.0, -0.0, 2.5e-6, -2.5e-6, 3.5e-6, 1e15, 4503599627.3704965,
                                1e299, np.nan, np.inf, -np.inf]])
    values = np.concatenate([ordinary, [1e300, 1e303, -1.8e302, 1.7976931348623157e308]])
    expected = stable_floats(pa.table({"raw": values})).column("raw").to_numpy()
    np.testing.assert_array_equal(expected[:len(ordinary)],
                                  pc.round(pa.array(ordinary), 6).to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(expected[len(ordinary):], values[len(ordinary):])
    frame = pd.DataFrame({"raw": values})
    layers = [[("scaled", "case when abs(raw) < 1.0e300 then raw * 1e+6 end")],
              [("stable", stable_float("raw", "scaled"))]]
    got = run_layers(frame, layers, ["stable"])["stable"].to_numpy()
    np.testing.assert_array_equal(got, expected)


def test_network_inputs_are_float32_with_invalid_values_as_the_fill_value():
    values = np.array([1.1, -1.1, 3.4028234663852886e38, 3.40282356e38, 3.4028235677973366e38,
                       -3.40282356e38, 1e39, 1e-40, 1.4e-45, 7.006492321624085e-46, 7.1e-46,
                       1e-300, 16777217.0, np.nan, np.inf, -np.inf, 0.0, 123456.789])
    with np.errstate(over="ignore"):
        expected = values.astype(np.float32)
    expected[~np.isfinite(expected)] = 0.0
    frame = pd.DataFrame({"value": pd.array([*values, None], dtype="Float64")})
    got = run_layers(frame, [[("input", float32_input("value", DUCKDB))]], ["input"])
    np.testing.assert_array_equal(got["input"].to_numpy(), np.append(expected, 0.0))
    # with a fill value (a model's training median), as clv.data.model_inputs reads it
    fill = float(np.float32(51.3))
    with np.errstate(over="ignore"):
        expected = values.astype(np.float32)
    expected[~np.isfinite(expected)] = fill
    got = run_layers(frame, [[("input", float32_input("value", DUCKDB, fill))]], ["input"])
    np.testing.assert_array_equal(got["input"].to_numpy(), np.append(expected, fill))


# -- special functions ------------------------------------------------------------------------

def test_ndtri_matches_scipy_on_0_1_with_the_edges():
    rng = np.random.default_rng(5)
    edges = [1e-300, 1e-200, 1e-100, 1e-30, 1e-15, 5e-12, np.exp(-25.0), 1e-11, 1e-5,
             0.075 - 1e-12, 0.075, 0.075 + 1e-12, 0.5 - 1e-15, 0.5, 0.5 + 1e-15, 0.925,
             0.925 + 1e-12, 1 - 1e-11, 1 - 1e-15, 1 - 2.0**-53, np.nextafter(0, 1) * 2**60]
    levels = np.unique(np.concatenate([edges, rng.random(5000), np.logspace(-300, -1, 2000),
                                       1 - np.logspace(-16, -1, 1000)]))
    got = run_layers(pd.DataFrame({"level": levels}), ndtri_layers({"z": "level"}), ["z"])
    expected = ndtri(levels)
    error = np.abs(got["z"].to_numpy() - expected) / np.maximum(1.0, np.abs(expected))
    assert error.max() < 1e-9, f"worst at level {levels[np.argmax(error)]}: {error.max():.2e}"


# BG/NBD fits (alpha in days): CDNOW (Fader, Hardie & Lee 2005), the sample's, and a > 1, small
# a, near-1 a, b < 1 variants, each with a horizon in days.
BGNBD_FITS = [(0.243, 4.414 * 7, 0.793, 2.426, 365.0), (0.552, 25.26, 0.284, 5.759, 365.0),
              (1.3, 60.0, 1.8, 3.5, 730.0), (0.9, 12.0, 0.05, 1.3, 90.0),
              (0.4, 40.0, 0.9999, 2.0, 365.0), (0.35, 20.0, 0.6, 0.7, 180.0)]


@pytest.mark.parametrize(("r", "alpha", "a", "b", "horizon"), BGNBD_FITS)
def test_hyp2f1_matches_scipy_over_real_inputs(r, alpha, a, b, horizon):
    """2F1(a + b - 1 - r, a - 1; a + b + x - 1; t / (alpha + T + t)), as BG/NBD's expected
    purchases need it, over frequencies x and ages T from a new customer to ten years."""
    x, age = np.meshgrid([0, 1, 2, 3, 5, 10, 25, 60, 150, 400, 1000],
                         [0, 1, 3, 7, 30, 90, 365, 730, 1500, 3650])
    x, age = x.ravel().astype(float), age.ravel().astype(float)
    big_a, big_b, c = a + b - 1 - r, a - 1, a + b + x - 1
    z = horizon / (alpha + age + horizon)
    layers = hyp2f1_layers(big_a, big_b, "c", "z", a + b - 1, horizon / (alpha + horizon), "f")
    got = run_layers(pd.DataFrame({"c": c, "z": z}), layers, ["f"])["f"].to_numpy()
    expected = hyp2f1(big_a, big_b, c, z)
    error = np.abs(got - expected) / np.abs(expected)
    assert error.max() < 1e-8, f"worst at x={x[np.argmax(error)]}, T={age[np.argmax(error)]}"


@pytest.mark.parametrize(("r", "alpha", "a", "b", "horizon"), [
    (171.0, 1200.0, 0.81, 6.1, 365.0), (171.0, 1200.0, 0.81, 6.1, 1825.0),
    (200.0, 1400.0, 0.8, 6.0, 730.0), (124482.0, 724291.0, 0.5, 5.0, 365.0)])
def test_hyp2f1_series_refuses_a_fit_whose_terms_cancel(r, alpha, a, b, horizon):
    """Buyers with alike rates (r far above b: fitted on weekly buyers, or on a short history)
    make the terms alternate and dwarf the sum; summed in double precision they would give
    1.19e9 expected purchases where scipy gives 34.1 (1825 days). SQL scoring refuses the fit,
    and the run is scored by onnxruntime."""
    with pytest.raises(OutsideSqlRange, match="the series cancels"):
        hyp2f1_terms(a + b - 1 - r, a - 1, a + b - 1, horizon / (alpha + horizon))


def test_hyp2f1_series_refuses_z_at_one():
    with pytest.raises(ValueError, match="z < 1"):
        hyp2f1_terms(1.0, -0.5, 2.0, 1.0)


BTYD_FITS = {
    "cdnow": (BGNBDParams(0.243, 4.414 * 7, 0.793, 2.426), GammaGammaParams(6.25, 3.74, 15.44)),
    "a_above_1": (BGNBDParams(1.3, 60.0, 1.8, 3.5), GammaGammaParams(2.0, 5.0, 30.0)),
    "a_near_1": (BGNBDParams(0.6, 25.0, 1.00004, 4.0), GammaGammaParams(4.0, 3.0, 40.0)),
    "no_mean_order_value": (BGNBDParams(0.5, 30.0, 0.7, 2.0), GammaGammaParams(3.0, 0.9, 20.0)),
}


@pytest.mark.parametrize("horizon", [365.0, 0.0])
@pytest.mark.parametrize("name", sorted(BTYD_FITS))
def test_btyd_sql_matches_python(name, horizon):
    """BG/NBD + Gamma-Gamma in SQL against clv.baselines.btyd_expected_spend (closed form with
    scipy's hyp2f1; a interpolated near 1; the repeat buyers' mean order value where
    Gamma-Gamma has none)."""
    bgnbd, gamma = BTYD_FITS[name]
    rng = np.random.default_rng(8)
    age = rng.integers(0, 1500, 3000).astype(float)
    frequency = np.where(rng.random(3000) < 0.3, 0, rng.integers(1, 200, 3000)).astype(float)
    recency = np.where(frequency > 0, np.floor(age * rng.random(3000)), 0.0)
    monetary = np.where(frequency > 0, rng.gamma(3.0, 20.0, 3000), 0.0)
    expected = btyd_expected_spend(frequency, recency, age, monetary, horizon,
                                   bgnbd=bgnbd, gamma_gamma=gamma)
    frame = pd.DataFrame({"x": frequency, "recency": recency, "age": age, "money": monetary})
    mean = "avg(case when x > 0.0e0 and money > 0.0e0 then money end) over ()"
    layers = btyd_layers(hybrid.BTYDFit(bgnbd, gamma), horizon,
                         BTYDColumns("x", "recency", "age", "money"), mean)
    got = run_layers(frame, layers, list(hybrid.BTYD_FEATURES))
    for column, values in zip(hybrid.BTYD_FEATURES, (
            expected.expected_purchases, expected.probability_alive,
            expected.expected_order_value, expected.expected_spend), strict=True):
        error = relative(got[column].to_numpy(), values)
        assert error.max() < 1e-9, f"{column}: {error.max():.2e}"


def test_a_degenerate_btyd_fit_is_refused():
    """A fit whose series would need thousands of terms (alpha tiny, a and b huge) is refused
    at compile time rather than evaluated inaccurately."""
    fit = hybrid.BTYDFit(BGNBDParams(8e6, 1e-5, 1.4e6, 7e6), GammaGammaParams(3.0, 4.0, 20.0))
    with pytest.raises(ValueError, match="outside what SQL scoring evaluates"):
        btyd_layers(fit, 365.0, BTYDColumns("x", "recency", "age", "money"), None)


# -- the ONNX operators, each on a hand-built graph -------------------------------------------

def _float(name: str, values: Sequence[float] | np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def _int(name: str, values: Sequence[int]) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def _graph(nodes: list[onnx.NodeProto], initializers: Sequence[TensorProto] = (),
           input_shape: Sequence[int] = (4,)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                      ["batch", *input_shape])],
        [helper.make_value_info("Y", helper.make_tensor_type_proto(TensorProto.FLOAT, None))],
        list(initializers))
    # IR 8 goes with opset 18: the oldest onnxruntime the project supports reads it
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)


def _node(op: str, inputs: Sequence[str], output: str = "Y",
          **attributes: object) -> onnx.NodeProto:
    return helper.make_node(op, list(inputs), [output], **attributes)


W = np.arange(12, dtype=np.float32).reshape(3, 4) / 7 - 0.8
GRAPHS: dict[str, Callable[[], onnx.ModelProto]] = {
    "Abs": lambda: _graph([_node("Abs", ["X"])]),
    "Add": lambda: _graph([_node("Add", ["X", "c"])], [_float("c", [0.5, -1, 2, 0.1])]),
    "Clip": lambda: _graph([_node("Clip", ["X", "lo", "hi"])],
                           [_float("lo", -1.0), _float("hi", 2.0)]),
    "Concat": lambda: _graph([_node("Abs", ["X"], "a"), _node("Concat", ["X", "a"], axis=1)]),
    "Constant": lambda: _graph([
        helper.make_node("Constant", [], ["c"], value=_float("v", [1.5, 2.5, -3.5, 0.25])),
        _node("Mul", ["X", "c"])]),
    "ConstantOfShape": lambda: _graph([
        _node("Shape", ["X"], "s"),
        _node("ConstantOfShape", ["s"], "k", value=_float("v", [2.0])), _node("Mul", ["X", "k"])]),
    "Exp": lambda: _graph([_node("Exp", ["X"])]),
    "Expand": lambda: _graph([_node("Shape", ["X"], "s"), _node("Expand", ["c", "s"], "e"),
                              _node("Add", ["X", "e"])], [_float("c", [[1, 2, 3, 4]])]),
    "Flatten": lambda: _graph([_node("Flatten", ["X"], axis=1)], input_shape=(2, 2)),
    "Gather": lambda: _graph([_node("Gather", ["X", "i"], axis=1)], [_int("i", [3, 0, 0])]),
    "GatherND": lambda: _graph([_node("GatherND", ["w", "i"], "g"),
                                _node("Gemm", ["X", "g"], transB=1)],
                               [_float("w", np.concatenate([W.ravel(), [0.0]])),
                                _int("i", np.arange(12)[::-1].reshape(3, 4, 1).tolist())]),
    "Gemm": lambda: _graph([_node("Gemm", ["X", "w", "b"], transB=1, alpha=0.5, beta=2.0)],
                           [_float("w", W), _float("b", [0.1, -0.2, 0.3])]),
    "Greater": lambda: _graph([_node("Greater", ["X", "t"], "g"),
                               _node("Where", ["g", "X", "t"])], [_float("t", 0.25)]),
    "Identity": lambda: _graph([_node("Identity", ["X"])]),
    "Log": lambda: _graph([_node("Abs", ["X"], "a"), _node("Add", ["a", "one"], "b"),
                           _node("Log", ["b"])], [_float("one", 1.0)]),
    "Mod": lambda: _graph([_node("Mod", ["m", "n"], "r", fmod=1), _node("Add", ["X", "r"])],
                          [_float("m", [5, -5, 7.5, 3]), _float("n", [3, 3, 2, -2])]),
    "Mul": lambda: _graph([_node("Mul", ["X", "X"], "s"), _node("Mul", ["s", "c"])],
                          [_float("c", [1, -2, 0, 0.5])]),
    "Reciprocal": lambda: _graph([_node("Reciprocal", ["X"])]),
    "ReduceMean": lambda: _graph([_node("ReduceMean", ["X", "axes"], keepdims=0)],
                                 [_int("axes", [1])]),
    "ReduceSum": lambda: _graph([_node("ReduceSum", ["X", "axes"], keepdims=1)],
                                [_int("axes", [-1])]),
    "Relu": lambda: _graph([_node("Relu", ["X"])]),
    "Reshape": lambda: _graph([_node("Reshape", ["X", "s"], "r"), _node("Sub", ["r", "c"])],
                              [_int("s", [0, 2, 2]), _float("c", [[1, 2], [3, 4]])]),
    "Shape": lambda: _graph([_node("Shape", ["X"], "s", start=1),
                             _node("ConstantOfShape", ["s"], "k", value=_float("v", [3.0])),
                             _node("Sub", ["X", "k"])]),
    "Sigmoid": lambda: _graph([_node("Sigmoid", ["X"])]),
    "Sign": lambda: _graph([_node("Sign", ["X"])]),
    "Slice": lambda: _graph([_node("Slice", ["X", "s", "e", "a", "p"], "f"),
                             _node("Slice", ["X", "s2", "e2", "a", "p2"], "b"),
                             _node("Concat", ["f", "b"], axis=1)],
                            [_int("s", [1]), _int("e", [2**62]), _int("a", [1]), _int("p", [2]),
                             _int("s2", [-1]), _int("e2", [-100]), _int("p2", [-1])]),
    "Softplus": lambda: _graph([_node("Softplus", ["X"])]),
    "Sub": lambda: _graph([_node("Sub", ["c", "X"])], [_float("c", [1, 2, 3, 4])]),
    "Tanh": lambda: _graph([_node("Tanh", ["X"])]),
    "Tile": lambda: _graph([_node("Tile", ["X", "r"])], [_int("r", [1, 2])]),
    "Unsqueeze": lambda: _graph([_node("Unsqueeze", ["X", "a"], "u"),
                                 _node("ReduceSum", ["u", "b"], keepdims=0)],
                                [_int("a", [1]), _int("b", [2])]),
    "Where": lambda: _graph([_node("Greater", ["X", "z"], "g"), _node("Mul", ["X", "m"], "n"),
                             _node("Where", ["g", "n", "X"])],
                            [_float("z", 0.0), _float("m", -3.0)]),
}


def _rows(width: int) -> np.ndarray:
    """Ordinary values and extreme ones (overflow of exp and float32, signs, zeros)."""
    rng = np.random.default_rng(6)
    extremes = np.array([0.0, -0.0, 1e-3, -2.5, 80.0, -80.0, 1e30, -1e30, 750.0, -750.0, 0.25,
                         20.5, -20.5, 1e-40, 3.0e38, -3.0e38])
    ordinary = rng.normal(0, 3, 64 * width)
    return np.concatenate([extremes, ordinary])[: (16 + 64 * width) // width * width]


@pytest.mark.parametrize("dots", [None, DOTS], ids=["sums", "dot_products"])
@pytest.mark.parametrize("operator", sorted(GRAPHS))
def test_each_supported_operator_matches_onnxruntime(operator, dots):
    model = GRAPHS[operator]()
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    width = int(np.prod(shape))
    x = _rows(width).reshape(-1, *shape).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    with np.errstate(all="ignore"):
        result = session.run(None, {"X": x})[0]
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info(
        "Y", TensorProto.FLOAT, ["batch", *result.shape[1:]]))
    onnx.checker.check_model(model, full_check=True)
    expected = result.reshape(len(x), -1).astype(np.float64)
    columns = np.array([f"x_{i}" for i in range(width)], dtype=object).reshape(shape)
    compiled = compile_graph(model, {"X": columns}, {"Y": "y"}, dot_products=dots)
    frame = pd.DataFrame(x.reshape(len(x), -1).astype(np.float64),
                         columns=[f"x_{i}" for i in range(width)])
    got = run_layers(frame, compiled.layers, compiled.outputs["Y"]).to_numpy(np.float64)
    assert got.shape == expected.shape
    finite = np.isfinite(expected) & (np.abs(expected) < 1e30)  # float32 overflow differs
    assert finite.mean() > 0.8
    np.testing.assert_allclose(got[finite], expected[finite], rtol=2e-6, atol=1e-6)
    assert np.isfinite(got).all() or operator == "Reciprocal"  # 1 / 0 is NULL in SQL


def test_the_hand_built_graphs_cover_every_supported_operator():
    used = {node.op_type for build in GRAPHS.values() for node in build().graph.node}
    assert used == set(SUPPORTED_OPERATORS)


@pytest.mark.parametrize("operator", ["Cos", "LSTM", "MatMulInteger"])
def test_an_unsupported_operator_is_refused_by_name(operator):
    model = _graph([_node("Abs", ["X"], "a"), _node(operator, ["a"])])
    with pytest.raises(UnsupportedOperatorError, match=operator):
        compile_graph(model, {"X": ["x0", "x1", "x2", "x3"]})


def test_an_operator_of_another_domain_is_refused():
    node = helper.make_node("Gelu", ["X"], ["Y"], domain="com.microsoft")
    model = _graph([node])
    with pytest.raises(UnsupportedOperatorError, match=r"com\.microsoft\.Gelu"):
        compile_graph(model, {"X": ["x0", "x1", "x2", "x3"]})


def test_mod_of_computed_values_is_refused():
    model = _graph([_node("Mod", ["X", "n"], fmod=1)], [_float("n", [2, 2, 2, 2])])
    with pytest.raises(UnsupportedOperatorError, match="Mod"):
        compile_graph(model, {"X": ["x0", "x1", "x2", "x3"]})


def test_compiling_is_deterministic():
    model = GRAPHS["Gemm"]()
    texts = {repr(compile_graph(model, {"X": ["a", "b", "c", "d"]}, dot_products=DOTS))
             for _ in range(3)}
    assert len(texts) == 1


def test_spark_reads_the_query_back_as_its_stages():
    """SparkWarehouse.compute runs the compiled query one common table expression at a time:
    read back from the text, the stages are the ones written, a multi-line expression
    included, and the stages run one after another compute what the whole query computes."""
    query = _Query(DIALECTS["spark"])
    query.add("first", ["x + 1.0e0 as y"], source="source_rows")
    query.add("second", ["*", "case\nwhen y > 2.0e0 then y\nelse 0.0e0\nend as z"])
    query.add_layers("layer", [[("w", "z * 2.0e0")], [("v", "w + y")]])
    stages, final = with_stages(query.text())
    assert [name for name, _ in stages] == [name for name, _ in query.ctes]
    assert [body for _, body in stages] == [body for _, body in query.ctes]
    assert final == "select * from layer_2"
    with duckdb.connect() as connection:
        connection.execute("create table source_rows as select range::double as x "
                           "from range(5)")
        whole = connection.sql(query.text()).fetchall()
        for name, body in stages:
            connection.execute(f"create table {name} as {body}")
        assert connection.sql(final).fetchall() == whole
    with pytest.raises(ValueError, match="layout"):
        with_stages("select 1")


def test_sql_levels_a_purchase_rounded_to_certain_as_numpy_does():
    """The compiled leveling reads the graph's log_no_purchase where alive is 1, like
    clv.level: where the float32 probability is 1, both give the same leveled probability,
    not 1 (and with the spend factor at 1, the probability as it is)."""
    logit = np.array([0.5, 9.0, 18.0, 25.0, 40.0, 18.0, 18.0])
    frame = pd.DataFrame({
        "purchase_probability": (1.0 / (1.0 + np.exp(-logit))).astype(np.float32),
        "log_no_purchase": (-np.logaddexp(0.0, logit)).astype(np.float32),
        "btyd_probability_alive": [1.0, np.nan, 1.0, 1.0, 1.0, 0.9, np.inf],
        "btyd_frequency": [0.0, 3.0, 1.0, 0.0, 7.0, 2.0, 0.0],
        "mu": np.linspace(-1.0, 2.0, logit.size)}).astype(np.float64)
    for factor in (0.25, 1.0, 2.5):
        expected = _sql_levels_as_numpy(frame, 0.8, factor)
        if factor < 1.0:  # fewer purchases: no longer certain, though p rounded to 1
            assert (expected[2:5] < 1.0).all() and (expected[2:5] > 0.98).all()


def test_sql_levels_likely_buyers_under_a_small_btyd_shape_as_numpy_does():
    """With BG/NBD's r near 0, (1 - q)^(-1/k) is beyond any double for a likely buyer: the
    compiled SQL takes the same logarithms past the bound as clv.level."""
    p = np.array([0.5, 0.9, 0.99, 0.3, 0.05])
    frame = pd.DataFrame({"purchase_probability": p, "log_no_purchase": np.log1p(-p),
                          "btyd_probability_alive": np.ones(p.size),
                          "btyd_frequency": [0.0, 0.0, 1.0, 0.0, 0.0],
                          "mu": np.zeros(p.size)})
    for factor in (1.00001, 0.5, 3.0):
        expected = _sql_levels_as_numpy(frame, 1e-3, factor)
        if factor == 1.00001:  # about no change: not the 0.45 a capped exponent gave p = 0.9
            np.testing.assert_allclose(expected, p, atol=1e-3)


def _sql_levels_as_numpy(frame: pd.DataFrame, shape: float, factor: float) -> np.ndarray:
    """The compiled leveling of ``frame``'s rows at spend ``factor`` equals clv.level's (to
    1e-12); returns the leveled probabilities."""
    query = _Query(DUCKDB)
    query.add("levels", ["*", f"{literal(factor)} as spend_factor"], source="frame")
    _leveled_distribution(query, 1.0, shape)
    with duckdb.connect() as connection:
        connection.register("frame", frame)
        got = connection.sql(query.text()).df()
    spend = level.SpendLevel(btyd_total=factor * 1000.0, network_total=1000.0,
                             btyd_level_correction=1.0, model_rate_factor=1.0)
    expected, mu = level.leveled_distribution(
        frame.purchase_probability.to_numpy(), frame.mu.to_numpy(), spend,
        frame.btyd_probability_alive.to_numpy(), frame.btyd_frequency.to_numpy(), shape,
        frame.log_no_purchase.to_numpy())
    np.testing.assert_allclose(got.leveled_probability, expected, rtol=1e-12)
    np.testing.assert_allclose(got.leveled_mu, mu, rtol=1e-12)
    return expected


# -- the whole prediction (slow: trains and exports small models) ------------------------------

HORIZON = 365
AS_OF = "2024-07-01"
CHANNELS = ("orders", "revenue", "active_days")
STATIC = (*SYNTHETIC_STATIC_FEATURES, "t_days", *hybrid.BTYD_FEATURES)


def _with_btyd_summary(table: pa.Table, seed: int) -> pa.Table:
    """The synthetic examples with a BTYD summary drawn from BG/NBD itself (purchase rates
    Gamma(0.6, 25 days), dropout after each purchase Beta(0.8, 3), ages up to three years),
    so that its fit is a realistic one."""
    rng = np.random.default_rng(seed)
    n = table.num_rows
    age = rng.integers(0, 1100, n)
    rate, dropout = rng.gamma(0.6, 1 / 25.0, n), rng.beta(0.8, 3.0, n)
    frequency, recency = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for i in range(n):
        time = rng.exponential(1 / rate[i])
        while time <= age[i]:
            frequency[i], recency[i] = frequency[i] + 1, int(time)
            if rng.random() < dropout[i]:
                break
            time += rng.exponential(1 / rate[i])
    monetary = np.where(frequency > 0, rng.gamma(4.0, 10.0, n), 0.0)
    for name, values in (("frequency", frequency), ("recency_days", recency),
                         ("monetary_value", monetary)):
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values))
    return table.append_column("t_days", pa.array(age))


def _scoring_examples() -> pa.Table:
    """Customers at the as-of date, with the awkward values scoring meets: nulls, NaN and
    infinities in a float feature, float32 overflow, six-decimal ties, large integers."""
    table = _with_btyd_summary(synthetic_examples(n_customers=4000, n_cutoffs=1, seed=71,
                                                  with_labels=False), seed=72)
    noise = table.column("noise").to_numpy().copy()
    noise[:6] = [np.nan, np.inf, -np.inf, 1e39, 2.5e-6, -0.0000035]
    revenue = table.column("revenue_last_365d").to_numpy().copy()
    revenue[6:9] = [1234.5678905, 0.0000005, 1e12 + 0.25]
    days = table.column("days_since_signup").to_pylist()
    days[9] = 2**40
    for name, values in (("noise", pa.array(noise, mask=np.arange(len(noise)) == 10)),
                         ("revenue_last_365d", pa.array(revenue)),
                         ("days_since_signup", pa.array(days, pa.int64()))):
        table = table.set_column(table.schema.get_field_index(name), name, values)
    return table


def _train(directory: Path, exporter: str, members: int, correction: float) -> str:
    # Enough rows for a calibration without steep segments: a slope of 20 in the spend map
    # would multiply onnxruntime's float32 rounding of log(spend) past 1e-5.
    examples = _with_btyd_summary(synthetic_examples(n_customers=3000, n_cutoffs=3, seed=70),
                                  seed=73)
    examples, _ = hybrid.add_features_per_cutoff(examples, HORIZON)
    result = train(examples, STATIC, TrainSettings(max_epochs=4, num_threads=1,
                                                   ensemble_size=members),
                   log=lambda _: None, channels=CHANNELS)
    calibrate(result)
    # A loose export check: these networks are barely trained, and the point here is the
    # ONNX file each exporter writes, not PyTorch's agreement with it.
    artifact = export_model(result, directory, {"horizon_days": HORIZON},
                            ExportSettings(exporter=exporter, parity_rtol=1e-3),
                            log=lambda _: None)
    # a spend bound below the amounts of many customers (clv.score.spend_bound; training keeps
    # the largest label, which these barely trained networks stay under), so that the tests
    # compare the bounded variance
    spends = labels(examples)
    update_metadata(artifact, {"btyd_level_correction": correction, "largest_horizon_spend":
                               float(np.median(spends[spends > 0])) / SPEND_BOUND_MARGIN})
    return artifact.version


def _save_scoring_run(directory: Path, version: str, examples: pa.Table) -> Path:
    """The scoring run clv.pipeline.scoring.score saves, from the same steps on one table."""
    model = load_verified(directory, version)
    fit = hybrid.fit(stable_floats(examples.sort_by("customer_id")))
    scores = score_batches(model, with_btyd(examples.to_batches(), fit, HORIZON),
                           passthrough=("btyd_expected_spend",)).read_all()
    totals = LevelAccumulator()
    totals.add(scores.column("btyd_expected_spend").to_numpy(),
               scores.column("network_clv").to_numpy())
    run = ScoringRun(model_version=version, as_of_date=AS_OF, horizon_days=HORIZON,
                     customers=examples.num_rows, btyd_fit=fit,
                     btyd_fit_customers=examples.num_rows,
                     level=totals.level(model.metadata["btyd_level_correction"], 0.0,
                                        model_rate_factor(model.metadata)),
                     scored_at=datetime(2024, 7, 1, 6).isoformat(), build_key="test")
    return run.save(directory)


# Three networks, as clv_ensemble_size's default trains on small data: their hidden units
# together exceed PostgreSQL's 1,664 columns per select unless each layer passes on only what
# later layers read.
@pytest.fixture(scope="module", params=[("dynamo", 1, 0.8), ("torchscript", 3, 1.3)],
                ids=["dynamo", "torchscript_ensemble"])
def scored(request, tmp_path_factory) -> dict:
    """A trained, calibrated, exported model, the scoring examples, its scoring run and the
    predictions of clv.pipeline.scoring.predict."""
    directory = tmp_path_factory.mktemp("models")
    version = _train(directory, *request.param)
    examples = _scoring_examples()
    path = _save_scoring_run(directory, version, examples)
    reference = predict(examples, path).to_pandas()
    return {"directory": directory, "version": version, "examples": examples,
            "run": ScoringRun.load(path), "reference": reference}


def _compiled(scored: dict, dialect: str, relation: str) -> str:
    return compile_scoring_sql(scored["directory"], scored["version"], relation, dialect,
                               as_of_date=AS_OF, scored_at=datetime(2024, 7, 1, 6))


def _to_double(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with float64 weights, inputs and constants: the exact math the SQL computes."""
    double = onnx.ModelProto()
    double.CopyFrom(model)
    graph = double.graph
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT:
            values = numpy_helper.to_array(tensor).astype(np.float64)
            graph.initializer[index].CopyFrom(numpy_helper.from_array(values, tensor.name))
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR and \
                    attribute.t.data_type == TensorProto.FLOAT:
                values = numpy_helper.to_array(attribute.t).astype(np.float64)
                attribute.t.CopyFrom(numpy_helper.from_array(values))
    return double


@pytest.mark.slow
def test_sql_on_duckdb_equals_predict(scored):
    sql = _compiled(scored, "duckdb", "scoring_examples")
    with duckdb.connect() as connection:
        connection.register("examples_arrow", scored["examples"])
        connection.execute("create table scoring_examples as select * from examples_arrow")
        frame = connection.sql(sql).df()
    assert (frame["scored_at"] == pd.Timestamp("2024-07-01 06:00")).all()
    assert list(frame.columns) == list(SCORE_COLUMNS)
    assert_scores_match(frame, scored["reference"], "duckdb")


@pytest.mark.slow
def test_sql_with_the_saved_level_scores_a_subset_as_the_run(scored, tmp_path):
    """python -m clv.sql_scoring writes the query with the scoring run's spend level: on a
    few of the run's customers it gives their predictions; summed over those few instead
    (--level relation, as a build sums over every customer), the level is theirs."""
    from clv.sql_scoring.query import main

    subset = scored["examples"].slice(100, 300)
    reference = scored["reference"].iloc[100:400].reset_index(drop=True)
    frames = {}
    run_file = run_path(Path(), scored["version"], AS_OF, "test").as_posix()
    as_given = str(scored["directory"] / run_file)  # a path as find_run returns it
    for kind, run in (("saved", ["--as-of-date", AS_OF]), ("relation", ["--as-of-date", AS_OF]),
                      ("saved_by_file", ["--run-file", run_file]),
                      ("saved_by_path", ["--run-file", as_given])):
        level = kind.removesuffix("_by_file").removesuffix("_by_path")
        assert main(["--model-dir", str(scored["directory"]), "--version", scored["version"],
                     *run, "--relation", "few", "--level", level]) == 0
        sql = sql_path(scored["directory"], scored["version"], "duckdb").read_text()
        with duckdb.connect() as connection:
            connection.register("few_arrow", subset)
            connection.execute("create table few as select * from few_arrow")
            frames[kind] = connection.sql(sql).df()
    assert (frames["saved"]["scored_at"] == pd.Timestamp("2024-07-01 06:00")).all()
    assert_scores_match(frames["saved"], reference, "duckdb")
    assert frames["saved_by_file"].equals(frames["saved"])
    assert frames["saved_by_path"].equals(frames["saved"])
    assert relative(frames["relation"]["predicted_clv"], reference["predicted_clv"]).max() > 1e-3


@pytest.mark.parametrize("run", [["--as-of-date", "2023-12-30"], ["--run-file", "runs/x.json"]])
def test_the_query_command_names_a_missing_model_or_run_in_one_line(tmp_path, capsys, run):
    from clv.sql_scoring.query import main

    with pytest.raises(SystemExit) as stopped:
        main(["--model-dir", str(tmp_path), "--version", "nope", *run, "--relation", "t"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("python -m clv.sql_scoring: error: ") and "nope" in error
    assert error.count("\n") == 1 and "Traceback" not in error


@pytest.mark.slow
def test_a_run_saved_without_a_rate_factor_scores_as_predict_reads_it(scored, tmp_path):
    """A scoring run saved before the probability followed the level (no model_rate_factor)
    kept the network's probability: the query with its saved level does too."""
    import dataclasses
    import shutil

    directory = tmp_path / "models"
    shutil.copytree(scored["directory"], directory)
    legacy = dataclasses.replace(scored["run"], build_key="legacy", level=dataclasses.replace(
        scored["run"].level, model_rate_factor=None))
    path = legacy.save(directory)
    subset = scored["examples"].slice(0, 300)
    expected = predict(subset, path).to_pandas().sort_values("customer_id")
    sql = compile_scoring_sql(directory, scored["version"], "few", "duckdb", saved_level=True,
                              scoring_run=path)
    with duckdb.connect() as connection:
        connection.register("few", subset)
        got = connection.sql(sql).df().sort_values("customer_id")
    assert_scores_match(got.reset_index(drop=True), expected.reset_index(drop=True), "legacy")


@pytest.mark.slow
def test_sql_is_the_exact_math_of_the_graph(scored):
    """Against a float64 evaluation of the same ONNX graph (onnx's reference evaluator) on
    the inputs scoring builds, with the level, the leveled distribution and its quantiles
    computed in numpy: the SQL is the graph's math, so the parity gaps above are
    onnxruntime's float32 arithmetic. (Not to the
    last bit: constants the graph computes, such as the TorchScript graph's reciprocal of the
    training spread, are folded in float32 as onnxruntime folds them, float64 here.)"""
    examples, run = scored["examples"].sort_by("customer_id"), scored["run"]
    model = load_verified(scored["directory"], scored["version"])
    stable = stable_floats(examples)
    inputs = hybrid.with_btyd_features(stable, hybrid.predict(stable, HORIZON, run.btyd_fit))
    static, sequence = model_inputs(inputs, model.spec)
    evaluator = ReferenceEvaluator(_to_double(onnx.load(model.artifact.onnx_path)))
    p, network, mu, sigma, log_no_purchase = (
        np.asarray(o, dtype=np.float64) for o in evaluator.run(None, {
            "static": static.astype(np.float64), "sequence": sequence.astype(np.float64)}))
    btyd = inputs.column("btyd_expected_spend").to_numpy()
    factor = (micro_units(btyd) / 1e6 * model.metadata["btyd_level_correction"]
              / (micro_units(network) / 1e6))
    with duckdb.connect() as connection:
        connection.register("scoring_examples", examples)
        frame = connection.sql(_compiled(scored, "duckdb", "scoring_examples")).df()
    frame = frame.sort_values("customer_id")
    # The distribution at the level: the purchase rate of the customers still active scaled by
    # the spend factor (less the model's own rate factor), the location moved so the expected
    # value is predicted_clv.
    rate = factor / model_rate_factor(model.metadata)
    alive = inputs.column("btyd_probability_alive").to_numpy()
    active = np.clip(np.nan_to_num(alive, nan=1.0), p, 1.0)
    # every rate of BG/NBD's gamma posterior (shape r + repeat purchases) times the factor
    shape = run.btyd_fit.bgnbd.r + np.clip(np.nan_to_num(
        inputs.column("frequency").to_numpy(zero_copy_only=False).astype(float)), 0.0, 1e100)
    with np.errstate(divide="ignore", over="ignore"):  # where p is the whole active share
        # where BG/NBD reads the customer as surely active, the graph's own log(1 - p)
        gap = np.where(np.nan_to_num(alive, nan=1.0) >= 1.0, -log_no_purchase,
                       -np.log1p(-p / active))
        # log(1 + f (e^e - 1)), written past e = 600 as e + log f + log(1 + e^-e (1/f - 1))
        e = gap / shape
        growth = np.where(e > 600.0, e + np.log(rate) + np.log1p(np.exp(-np.minimum(e, 700.0))
                                                                  * (1.0 / rate - 1.0)),
                          np.log1p(rate * np.expm1(np.minimum(e, 600.0))))
        leveled = -active * np.expm1(-shape * growth)
    mu = mu + np.log(factor * p / leveled)
    expected = {"purchase_probability": leveled, "network_clv": network,
                "predicted_clv": network * factor, "btyd_expected_spend": btyd}
    for q in DEFAULT_QUANTILES:
        positive = q > 1 - leveled
        level = np.where(positive, (q - 1 + leveled) / np.where(positive, leveled, 1.0), 0.5)
        expected[quantile_column(q, "predicted_clv")] = np.where(
            positive, np.exp(mu + sigma * ndtri(level)), 0.0)
    # the spend's variance, written out: E[X^2] - E[X]^2 of the leveled ZILN, a purchase made
    # likelier where the amount it expects lies above the spend bound at the level, so that the
    # amount is the bound and the expected value stays predicted_clv
    amount = np.exp(mu + sigma**2 / 2)
    bound = model.metadata["largest_horizon_spend"] * SPEND_BOUND_MARGIN * factor
    assert 0 < np.mean(amount > bound) < 1
    likelihood = np.where(amount > bound, np.minimum(network * factor / bound, 1.0), leveled)
    amount = network * factor / likelihood
    second_moment = likelihood * amount**2 * np.exp(sigma**2)
    expected["predicted_clv_variance"] = second_moment - (network * factor) ** 2
    p = leveled
    for column, values in expected.items():
        error = relative(frame[column].to_numpy(float), values)
        if column.startswith("predicted_clv_p"):
            q = int(column[-2:]) / 100
            error = error / (1.0 + quantile_allowance(p, q, 1e-7) / 1e-7)
        if column == "predicted_clv_variance":
            # predicted_clv squared times a factor: twice its error (the largest gap measured,
            # 1.6e-7, is on a row whose variance is 19 times its squared mean: no
            # cancellation in the reference's E[X^2] - E[X]^2)
            error = error / 2.0
        assert error.max() < 1e-7, f"{column}: {error.max():.2e}"


@pytest.mark.slow
def test_compiled_sql_is_deterministic_and_written_with_its_hash(scored):
    first = _compiled(scored, "postgres", "examples")
    assert first == _compiled(scored, "postgres", "examples")
    path, digest = write_scoring_sql(scored["directory"], scored["version"], "examples",
                                     "duckdb", as_of_date=AS_OF)
    assert path.name == f"clv_model_{scored['version']}.duckdb.sql"
    assert path.parent == scored["directory"]
    assert sha256_file(path) == digest
    assert path.read_text(encoding="utf-8") == compile_scoring_sql(
        scored["directory"], scored["version"], "examples", "duckdb", as_of_date=AS_OF)


@pytest.mark.slow
def test_a_modified_model_file_is_refused(scored, tmp_path):
    import shutil

    for path in scored["directory"].glob(f"clv_model_{scored['version']}.*"):
        shutil.copy(path, tmp_path / path.name)
    onnx_file = tmp_path / f"clv_model_{scored['version']}.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="sha256"):
        compile_scoring_sql(tmp_path, scored["version"], "examples", "duckdb",
                            btyd_fit=scored["run"].btyd_fit)


def _extreme_examples(examples: pa.Table) -> pa.Table:
    """Rows no real table has: huge, negative and non-finite values everywhere they fit."""
    frame = examples.slice(0, 12).to_pandas()
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    extremes = [1e300, -1e300, 1e38, -1e38, 1e15, -5.0, 0.0, 1e-300, 7e-46, 3.5e38, -3.5e38,
                0.5]
    for row, value in enumerate(extremes):
        for column in numeric:
            if pd.api.types.is_float_dtype(frame[column]):
                frame.loc[row, column] = value
            else:
                frame.loc[row, column] = int(np.clip(value, -2**62, 2**62))
    frame.loc[11, "monetary_value"] = np.nan
    frame.loc[10, "noise"] = np.inf
    frame["customer_id"] = [f"x{i}" for i in range(len(frame))]
    return pa.Table.from_pandas(frame, preserve_index=False)


@pytest.mark.slow
def test_extreme_inputs_raise_on_no_engine(scored):
    table = _extreme_examples(scored["examples"])
    with duckdb.connect() as connection:
        connection.register("extreme_examples", table)
        frame = connection.sql(_compiled(scored, "duckdb", "extreme_examples")).df()
    values = frame.drop(columns=["customer_id", "model_version", "scored_at"]).to_numpy(float)
    assert np.isfinite(values).all()


def _postgres_type(field: pa.Field) -> str:
    if pa.types.is_integer(field.type):
        return "bigint"
    if pa.types.is_floating(field.type):
        return "double precision"
    if pa.types.is_date(field.type):
        return "date"
    return "text"


def _postgres_table(cursor: object, schema: str, name: str, table: pa.Table) -> str:
    """``table`` copied into ``schema.name`` (floats with every digit, NaN and infinities
    as PostgreSQL spells them)."""
    import io

    columns = ", ".join(f'"{f.name}" {_postgres_type(f)}' for f in table.schema)
    cursor.execute(f'create table "{schema}"."{name}" ({columns})')
    buffer = io.StringIO()
    for row in table.to_pylist():
        cells = []
        for value in row.values():
            if value is None:
                cells.append("\\N")
            elif isinstance(value, float):
                cells.append(repr(value).replace("inf", "Infinity").replace("nan", "NaN"))
            else:
                cells.append(str(value))
        buffer.write("\t".join(cells) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f'copy "{schema}"."{name}" from stdin', buffer)
    return f'"{schema}"."{name}"'


@pytest.mark.slow
def test_sql_on_postgres_equals_predict(scored):
    connection = postgres_connection()
    schema = schema_name("sqlc_test")
    try:
        with connection.cursor() as cursor:
            # PostgreSQL's JIT compiles the query's thousands of expressions for minutes (and
            # gigabytes); interpreted, the query runs in seconds.
            cursor.execute("set jit = off")
            cursor.execute(f'create schema "{schema}"')
            relation = _postgres_table(cursor, schema, "scoring_examples", scored["examples"])
            extreme = _postgres_table(cursor, schema, "extreme_examples",
                                      _extreme_examples(scored["examples"]))
            cursor.execute(_compiled(scored, "postgres", relation))
            names = [d.name for d in cursor.description]
            frame = pd.DataFrame(cursor.fetchall(), columns=names)
            cursor.execute(_compiled(scored, "postgres", extreme))  # raises nothing
            extreme_frame = pd.DataFrame(cursor.fetchall(), columns=names)
    finally:
        connection.rollback()
        with connection.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{schema}" cascade')
        connection.commit()
        connection.close()
    for column in frame.columns:
        if column not in ("customer_id", "model_version", "scored_at"):
            frame[column] = frame[column].astype(float)
    assert list(frame.columns) == list(SCORE_COLUMNS)
    assert_scores_match(frame, scored["reference"], "postgres")
    values = extreme_frame.drop(columns=["customer_id", "model_version", "scored_at"])
    assert np.isfinite(values.to_numpy(float)).all()


def _scoring_step_in_sql(scored: dict, fit: hybrid.BTYDFit) -> pd.DataFrame | None:
    """The SQL scoring steps on DuckDB over the examples, with ``fit`` as the BTYD fit at the
    as-of date: the plan's query run as the SQL model int_clv__scores runs it (read as
    clv_scoring_examples, inside a subquery), then the scoring run saved from its totals; None
    when the plan falls back to onnxruntime."""
    examples = scored["examples"]
    run = RunSettings(model_dir=scored["directory"], retrain="never", horizon_days=HORIZON,
                      period_days=30, sequence_periods=12, seed=0, static_features=(),
                      channels=CHANNELS, scoring_engine="sql")
    model = load_verified(scored["directory"], scored["version"])
    with duckdb.connect() as connection:
        connection.register("examples_arrow", examples)
        connection.execute("create table examples as select * from examples_arrow")
        warehouse = DuckDBWarehouse(connection)
        onnx_plan = ScoringPlan(model_version=scored["version"], as_of_date=AS_OF,
                                horizon_days=HORIZON, customers=examples.num_rows,
                                btyd_fit=fit, btyd_fit_customers=examples.num_rows,
                                scoring_engine="onnxruntime", build_key="test")
        plan = with_query(warehouse, "examples", onnx_plan, run, model)
        if plan.scoring_sql is None:
            assert plan.scoring_engine == "onnxruntime" and "onnxruntime" in plan.note
            return None
        assert plan.in_sql_model and plan.scoring_engine == "sql"
        connection.execute("create table scores as with clv_scoring_examples as "
                           f"(select * from examples) select * from ({plan.scoring_sql}) as q")
        record(warehouse, "scores", plan, scored["directory"])
        return connection.sql("select * from scores").df()


@pytest.mark.slow
def test_scoring_step_runs_the_query_in_the_warehouse(scored):
    frame = _scoring_step_in_sql(scored, scored["run"].btyd_fit)
    assert list(frame.columns) == list(SCORE_COLUMNS)
    assert_scores_match(frame, scored["reference"], "scoring step (sql)")
    record = ScoringRun.load(run_path(scored["directory"], scored["version"], AS_OF, "test"))
    assert record.scoring_engine == "sql"
    assert sha256_file(scored["directory"] / "runs" / record.scoring_sql) == \
        record.scoring_sql_sha256
    assert record.level.spend_factor == pytest.approx(scored["run"].level.spend_factor, rel=1e-5)


@pytest.mark.slow
def test_a_fit_outside_the_sql_range_is_scored_by_onnxruntime(scored):
    fit = scored["run"].btyd_fit
    refused = hybrid.BTYDFit(BGNBDParams(fit.bgnbd.r, fit.bgnbd.alpha, 0.3, 0.5),
                             fit.gamma_gamma)
    assert _scoring_step_in_sql(scored, refused) is None


def test_find_run_names_one_run_or_asks_for_it(tmp_path):
    from clv.pipeline.scoring import find_run

    runs = tmp_path / "runs"
    runs.mkdir()
    with pytest.raises(FileNotFoundError, match="no scoring run of model v1 at 2024-01-31"):
        find_run(tmp_path, "v1", "2024-01-31")
    (runs / "clv_run_2024-01-31_v1.json").write_text("{}")  # saved before runs named builds
    assert find_run(tmp_path, "v1", "2024-01-31").name == "clv_run_2024-01-31_v1.json"
    keyed = run_path(tmp_path, "v1", "2024-01-31", "a1")
    keyed.write_text("{}")
    assert find_run(tmp_path, "v1", "2024-01-31") == keyed
    run_path(tmp_path, "v1", "2024-01-31", "b2").write_text("{}")
    with pytest.raises(ValueError, match="2 builds saved a scoring run of model v1"):
        find_run(tmp_path, "v1", "2024-01-31")
    with pytest.raises(ValueError, match="build key is a name"):
        run_path(tmp_path, "v1", "2024-01-31", "")
