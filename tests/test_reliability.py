"""Reliability: awkward input, degenerate data, damaged model files and a run that fails.

One project is built once on generated customers plus hand-made awkward ones; the artifact and
failure tests damage a copy of its model directory and rebuild only what is downstream of
int_clv__model_registry, the training step (and clv_run_settings, which carries the vars to
the Python steps). The degenerate data sets share a second project whose vars never change
(one CSV path, rewritten per case), so dbt re-uses its parse between cases.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from production import failures as node_failures
from reference import customer_features

from clv.artifacts import sha256_file
from clv.pipeline import scoring
from clv.score import load_verified
from clv.synthetic import GeneratorSettings, generate

AS_OF = date(2023, 6, 30)
HORIZON_DAYS = 60
# One network, not the automatic three: these tests prove the pipeline's behaviour, not the
# model's accuracy, and a single network trains and exports three times faster.
VARS = {
    "clv_as_of_date": AS_OF.isoformat(),
    "clv_horizon_days": HORIZON_DAYS,
    "clv_training_cutoffs": 3,
    "clv_ensemble_size": 1,
}
POPULATION = GeneratorSettings(
    n_customers=200, start_date=date(2022, 1, 1), end_date=AS_OF, seed=5, with_events=False,
    bad_rows=False,
)
OUTLIER = "outlier"  # replaced by 1000 x the median order value of the population

# (customer_id as written, transacted_at, amount): customers that stress one thing each.
AWKWARD_ROWS = [
    # refunds larger than the purchases: net spend goes negative
    ("R", "2022-09-01 10:00:00", 40.0),
    ("R", "2023-01-10 10:00:00", 60.0),
    ("R", "2023-02-01 10:00:00", -250.0),
    ("R", "2023-05-05 10:00:00", 30.0),
    # zero-amount orders around real ones, and a customer with zero-amount rows only
    ("Z", "2022-10-01 10:00:00", 0.0),
    ("Z", "2022-11-01 10:00:00", 25.0),
    ("Z", "2023-03-01 10:00:00", 0.0),
    ("Z", "2023-04-01 10:00:00", 15.0),
    ("Z", "2023-06-30 09:00:00", 0.0),
    ("Z0", "2023-02-02 10:00:00", 0.0),
    ("Z0", "2023-05-02 10:00:00", 0.0),
    # one order 1000 times the median order value
    ("O", "2022-12-01 10:00:00", 50.0),
    ("O", "2023-03-15 10:00:00", OUTLIER),
    ("O", "2023-05-20 10:00:00", 45.0),
    # first purchase on the as-of date (its last second; another with a same-day refund)
    ("N", "2023-06-30 23:59:59", 80.0),
    ("N2", "2023-06-30 08:00:00", 120.0),
    ("N2", "2023-06-30 18:00:00", -20.0),
    # one customer written with surrounding spaces
    (" S1", "2022-08-08 10:00:00", 30.0),
    ("S1 ", "2023-01-01 10:00:00", 35.0),
    (" S1 ", "2023-05-30 10:00:00", 20.0),
    # one customer written as a number, as quoted text and as padded text
    (17850, "2022-07-01 10:00:00", 20.0),
    ("17850", "2023-02-14 10:00:00", 30.0),
    (" 17850 ", "2023-05-01 10:00:00", 25.0),
]
AWKWARD_CASES = {
    "refunds_larger_than_purchases": ["R"],
    "zero_amount_orders": ["Z", "Z0"],
    "extreme_outlier_order": ["O"],
    "first_purchase_on_the_as_of_date": ["N", "N2"],
    "ids_with_spaces_or_mixed_types": ["S1", "17850"],
}
NUMERIC_COLUMNS = ["predicted_clv", "purchase_probability", "predicted_clv_p10",
                   "predicted_clv_p50", "predicted_clv_p90"]
# Frames of a traceback that mean a library error, not the project's message, reached the user.
# Everything the predictions and their export need; a plain `dbt build` would also reload the
# sample seeds each time, which these tests do not read.
PIPELINE = "+clv_predictions_export"
# What a changed clv_model_dir or clv_retrain rebuilds: the Python steps read the vars from the
# one-row model clv_run_settings, so it is rebuilt with them.
FROM_REGISTRY = "clv_run_settings int_clv__model_registry+"
LIBRARY_FRAMES = ("torch/", "pyarrow/", "onnxruntime/", "duckdb/", "clv/btyd.py", "clv/hybrid.py",
                  "clv/baselines.py")


def _awkward_rows(median_order: float) -> list[tuple[object, str, float]]:
    return [(customer, at, 1000 * median_order if amount == OUTLIER else amount)
            for customer, at, amount in AWKWARD_ROWS]


def _write_transactions(path: Path, population: pd.DataFrame, awkward: list) -> None:
    """Population rows plus the awkward ones; text is quoted and numbers are not, so 17850
    reaches DuckDB once as a number and once as quoted text."""
    frame = pd.concat([
        population[["transaction_id", "customer_id", "transacted_at", "amount"]],
        pd.DataFrame([(f"AW{i}", customer, at, amount)
                      for i, (customer, at, amount) in enumerate(awkward)],
                     columns=["transaction_id", "customer_id", "transacted_at", "amount"]),
    ], ignore_index=True).astype({"customer_id": object})
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)


def _status(result, name: str) -> str:
    return next(str(r.status) for r in result.result if r.node.name == name)


def _assert_clear_python_error(message: str, *expected: str) -> None:
    """The error ends in the project's own message, which says what to change; no library
    frame sits in between."""
    last = message.strip().splitlines()[-1].strip()
    assert re.match(r"^(ValueError|clv\.score\.ModelMismatchError): ", last), last
    for text in expected:
        assert text in last, (text, last)
    frames = re.findall(r'File "([^"]+)"', message)
    deep = [frame for frame in frames
            if any(part in frame.replace("\\", "/") for part in LIBRARY_FRAMES)
            and "dbt/adapters/duckdb" not in frame.replace("\\", "/")]
    assert not deep, deep


# ---------------------------------------------------------------------------------------------
# One build on awkward input; its model directory is the one the artifact tests damage.


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from conftest import DbtProject

    workdir = tmp_path_factory.mktemp("reliability")
    population = generate(POPULATION).transactions
    median_order = float(population.amount.astype(float).median())
    awkward = _awkward_rows(median_order)
    transactions = workdir / "transactions.csv"
    _write_transactions(transactions, population, awkward)
    # Attributes keyed by a numeric id column: DuckDB reads it as BIGINT.
    customers = workdir / "customers.csv"
    customers.write_text("customer_id,signup_date,country,age_band\n"
                         "17850,2022-06-01,GB,35-44\n")
    project = DbtProject(workdir)
    project.base_models = workdir / "models"
    project.export = workdir / "exports" / "clv_predictions.parquet"
    project.vars = {**VARS, "clv_transactions": str(transactions),
                    "clv_customers": str(customers), "clv_model_dir": str(project.base_models),
                    "clv_export_path": str(project.export)}
    project.awkward = [(str(customer).strip(), datetime.fromisoformat(at).date(), float(amount))
                       for customer, at, amount in awkward]
    project.build(vars=project.vars, select=f"{PIPELINE} clv_data_quality clv_customer_features")
    return project


@pytest.mark.slow
def test_awkward_rows_are_all_usable(built):
    quality = built.query("select reason, rows from clv_data_quality")
    assert quality.rows.sum() == 0, quality
    ids = set(built.query("select distinct customer_id from clv_customer_features").customer_id)
    assert {customer for customer, _, _ in built.awkward} <= ids
    assert all(customer == customer.strip() for customer in ids)


@pytest.mark.slow
@pytest.mark.parametrize("case", AWKWARD_CASES)
def test_awkward_customers_get_reference_features_and_finite_predictions(built, case):
    cutoffs = pd.to_datetime(built.query("select cutoff_date from int_clv__cutoffs").cutoff_date)
    features = built.query("select * from clv_customer_features")
    features["cutoff_date"] = pd.to_datetime(features["cutoff_date"]).dt.date
    features = features.set_index(["customer_id", "cutoff_date"])
    predictions = built.query("select * from clv_predictions").set_index("customer_id")
    for customer in AWKWARD_CASES[case]:
        for cutoff in cutoffs.dt.date:
            reference = customer_features(built.awkward, customer, cutoff, HORIZON_DAYS)
            if reference is None:
                assert (customer, cutoff) not in features.index
                continue
            row = features.loc[(customer, cutoff)]
            for column, value in reference.items():
                assert row[column] == pytest.approx(value, rel=1e-9, abs=1e-6), (
                    customer, cutoff, column)
        scored = predictions.loc[customer]
        assert np.isfinite(scored[NUMERIC_COLUMNS].to_numpy(float)).all(), scored
        assert 0 <= scored.purchase_probability <= 1
        assert scored.predicted_clv >= 0

    at_as_of = features.xs(AS_OF, level="cutoff_date")
    if case == "refunds_larger_than_purchases":
        assert at_as_of.loc["R", "revenue_total"] < 0
    elif case == "zero_amount_orders":
        assert at_as_of.loc["Z0", "orders_total"] == 0 and at_as_of.loc["Z", "orders_total"] == 2
    elif case == "first_purchase_on_the_as_of_date":
        assert (at_as_of.loc[["N", "N2"], "t_days"] == 0).all()
    elif case == "ids_with_spaces_or_mixed_types":
        assert at_as_of.loc["17850", "purchase_days"] == 3
        assert at_as_of.loc["S1", "purchase_days"] == 3
        # text ids in the transactions join numeric ids in the customer attributes
        assert at_as_of.loc["17850", "country"] == "GB"


@pytest.mark.slow
def test_every_customer_gets_a_finite_prediction(built):
    predictions = built.query("select * from clv_predictions")
    scoring = built.query("select customer_id from clv_scoring_examples")
    assert sorted(predictions.customer_id) == sorted(scoring.customer_id)
    assert np.isfinite(predictions[NUMERIC_COLUMNS].to_numpy(float)).all()
    assert (predictions.predicted_clv_p10 <= predictions.predicted_clv_p90).all()
    assert predictions.predicted_clv.max() < 1e7, "the outlier order must not blow them up"


# ---------------------------------------------------------------------------------------------
# Degenerate data: a clear error that names the problem and the var, never an empty success.


def _degenerate_rows(case: str) -> list[tuple[str, str, str]]:
    """(customer_id, transacted_at, amount) rows of one degenerate data set."""
    day = pd.Timestamp("2022-01-01")
    if case == "empty_source":
        return []
    if case == "no_usable_rows":
        return [("", "2023-01-01", "5"), ("A", "not a date", "5"), ("B", "2023-01-01", "abc"),
                ("C", "2023-01-02", "NaN")]
    if case == "one_customer":
        return [("A", str(day + pd.Timedelta(weeks=i)), "10") for i in range(80)]
    if case == "single_purchases":
        return [(f"C{i}", str(day + pd.Timedelta(days=3 * i)), "10") for i in range(200)]
    if case == "no_positive_labels":
        # repeat buyers early on, then nobody buys again until the as-of date
        rows = [(f"C{c}", str(day + pd.Timedelta(days=c + 20 * k)), "10")
                for c in range(60) for k in range(4)]
        return [*rows, ("late", "2023-06-30", "10")]
    if case == "history_shorter_than_horizon":
        start = pd.Timestamp("2023-05-01")
        return [(f"C{c}", str(start + pd.Timedelta(days=(7 * c + 11 * k) % 45)), "10")
                for c in range(50) for k in range(3)]
    raise ValueError(case)


# case -> (the node that must fail, texts its message must contain)
DEGENERATE = {
    "empty_source": ("int_clv__cutoffs", ["No usable transactions", "has no rows",
                                          "clv_data_quality"]),
    "no_usable_rows": ("int_clv__cutoffs", ["No usable transactions", "are excluded",
                                            "clv_data_quality"]),
    "one_customer": ("int_clv__model_registry", ["only 3 rows (1 customer(s)",
                                                 "clv_transactions"]),
    "single_purchases": ("int_clv__model_registry", ["bought on two different days",
                                                     "clv_transactions",
                                                     "clv_columns.customer_id may name an id"]),
    "no_positive_labels": ("int_clv__model_registry", ["no positive label_revenue",
                                                       "clv_horizon_days"]),
    "history_shorter_than_horizon": ("int_clv__model_registry", [
        "clv_training_examples is empty", "clv_horizon_days", "clv_as_of_date",
        "clv_retrain to 'never'"]),
}


@pytest.fixture(scope="module")
def degenerate(tmp_path_factory):
    from conftest import DbtProject

    workdir = tmp_path_factory.mktemp("degenerate")
    project = DbtProject(workdir)
    project.csv = workdir / "transactions.csv"
    project.vars = {**VARS, "clv_as_of_date": "", "clv_transactions": str(project.csv),
                    "clv_model_dir": str(workdir / "models"),
                    "clv_export_path": str(workdir / "exports" / "clv_predictions.parquet")}
    return project


def _write_degenerate(project, case: str) -> None:
    pd.DataFrame([(f"t{i}", *row) for i, row in enumerate(_degenerate_rows(case))],
                 columns=["transaction_id", "customer_id", "transacted_at", "amount"],
                 ).to_csv(project.csv, index=False)


@pytest.mark.slow
@pytest.mark.parametrize("case", DEGENERATE)
def test_degenerate_data_stops_with_a_clear_error(degenerate, case):
    _write_degenerate(degenerate, case)
    result = degenerate.build(vars=degenerate.vars, select=PIPELINE, expect_success=False)
    assert not result.success
    node, expected = DEGENERATE[case]
    failures = node_failures(result)
    assert [name for name in failures if name.startswith(node)] and len(failures) == 1, failures
    message = next(iter(failures.values()))
    if node == "int_clv__model_registry":
        _assert_clear_python_error(message, *expected)
    else:
        # the SQL layer stops with one line naming the problem, the vars and clv_data_quality
        line = next((line for line in message.splitlines() if expected[0] in line), message)
        assert all(text in line for text in expected), message
    # nothing downstream is built, so no empty predictions table looks like a result
    assert _status(result, "clv_predictions") == "skipped"
    assert not any(degenerate.workdir.glob("exports/*.parquet"))


@pytest.mark.slow
def test_short_history_scores_with_a_saved_model_when_retrain_is_never(degenerate, built):
    """The fallback the error above names: score an as-of date too early to train on with a
    model this data's longer history trained (a saved model of other data is refused)."""
    early = date(2022, 2, 15)  # six weeks after the first transaction, less than the horizon
    vars_ = {**built.vars, "clv_as_of_date": early.isoformat(), "clv_retrain": "never",
             "clv_export_path": str(degenerate.workdir / "exports" / "early.parquet")}
    degenerate.build(vars=vars_, select=PIPELINE)
    predictions = degenerate.query("select * from clv_predictions")
    first_days = pd.read_csv(built.vars["clv_transactions"], dtype=str)
    first_days["day"] = pd.to_datetime(first_days.transacted_at, errors="coerce").dt.date
    expected = {c.strip() for c in first_days.loc[first_days.day <= early, "customer_id"]
                .dropna() if c.strip()}
    assert len(predictions) == len(expected) > 0
    assert np.isfinite(predictions[NUMERIC_COLUMNS].to_numpy(float)).all()
    saved = built.query("select model_version from int_clv__model_registry")
    assert set(predictions.model_version) == set(saved.model_version)


# ---------------------------------------------------------------------------------------------
# Damaged or mismatched model files


def _edit_metadata(key: str, change):
    def damage(onnx_file: Path, metadata_file: Path) -> None:
        metadata = json.loads(metadata_file.read_text())
        metadata[key] = change(metadata[key])
        metadata_file.write_text(json.dumps(metadata))
    return damage


def _flip_one_byte(onnx_file: Path, metadata_file: Path) -> None:
    data = bytearray(onnx_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_file.write_bytes(bytes(data))


# damage -> (what it does to the ONNX file and its metadata, what the refusal must say)
DAMAGE = {
    "missing_onnx": (lambda onnx_file, _: onnx_file.unlink(), "is missing"),
    "truncated_onnx": (lambda onnx_file, _: onnx_file.write_bytes(onnx_file.read_bytes()[:999]),
                       "sha256 mismatch"),
    "tampered_onnx": (_flip_one_byte, "sha256 mismatch"),
    "unreadable_metadata": (lambda _, metadata_file: metadata_file.write_text("{"),
                            "unreadable"),
    "other_features": (_edit_metadata("features", lambda f: [*f[:-1], "another_feature"]),
                       "feature list differs"),
    "other_horizon": (_edit_metadata("horizon_days", lambda _: 365),
                      f"horizon_days: model 365, run {HORIZON_DAYS}"),
    "other_sequence": (_edit_metadata("n_periods", lambda _: 6), "n_periods: model 6, run 12"),
}


def _damaged_copy(built, damage: str | None) -> Path:
    """A fresh copy of the built model directory, at the same path every time (so the dbt vars,
    and with them dbt's parse, stay the same), with one kind of damage applied."""
    target = built.workdir / "damaged_models"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(built.base_models, target)
    if damage is not None:
        onnx_file = next(target.glob("*.onnx"))
        DAMAGE[damage][0](onnx_file, onnx_file.with_suffix(".json"))
    return target


def _predictions(project) -> pd.DataFrame:
    return project.query("select * from clv_predictions order by customer_id")


@pytest.mark.slow
@pytest.mark.parametrize("damage", DAMAGE)
def test_never_refuses_a_damaged_or_mismatched_model(built, damage):
    before = _predictions(built)
    model_dir = _damaged_copy(built, damage)
    vars_ = {**built.vars, "clv_model_dir": str(model_dir), "clv_retrain": "never"}
    result = built.build(vars=vars_, select=FROM_REGISTRY, expect_success=False)
    assert not result.success
    failures = node_failures(result)
    assert list(failures) == ["int_clv__model_registry"], failures
    _assert_clear_python_error(failures["int_clv__model_registry"], "clv_retrain is 'never'",
                               DAMAGE[damage][1], "clv_retrain to 'auto'")
    assert _status(result, "int_clv__python_scores") == "skipped"
    pd.testing.assert_frame_equal(_predictions(built), before)


@pytest.mark.slow
def test_auto_retrains_over_a_damaged_model(built):
    """The same check refuses every kind of damage above; with auto it means "train anew"
    (one kind here: each case would cost a training run)."""
    model_dir = _damaged_copy(built, "truncated_onnx")
    damaged_version = next(model_dir.glob("*.json")).stem.removeprefix("clv_model_")
    vars_ = {**built.vars, "clv_model_dir": str(model_dir), "clv_retrain": "auto"}
    built.build(vars=vars_, select=FROM_REGISTRY)
    registry = built.query("select model_version, is_current from clv_model_registry")
    current = registry.loc[registry.is_current, "model_version"].tolist()
    assert len(current) == 1 and current[0] != damaged_version
    assert len(list(model_dir.glob("*.onnx"))) == 2, "the damaged file is kept, not overwritten"
    predictions = _predictions(built)
    assert set(predictions.model_version) == set(current)
    assert len(predictions) == len(built.query("select customer_id from clv_scoring_examples"))


# ---------------------------------------------------------------------------------------------
# A run that fails part-way


@pytest.mark.slow
def test_failed_run_keeps_previous_predictions_model_and_export(built, monkeypatch):
    model_dir = _damaged_copy(built, None)  # an intact copy: this run writes into it
    previous = next(model_dir.glob("*.json")).stem.removeprefix("clv_model_")
    previous_sha = sha256_file(model_dir / f"clv_model_{previous}.onnx")
    before = _predictions(built)
    export_before = pq.read_table(built.export)
    runs_before = {p.name: p.read_bytes() for p in (model_dir / "runs").glob("*.json")}
    assert runs_before, "the built model directory holds the last scoring run"

    from conftest import failing_after_first_batch

    calls = []
    monkeypatch.setattr(scoring, "score_batches",
                        failing_after_first_batch(scoring.score_batches, calls))
    vars_ = {**built.vars, "clv_model_dir": str(model_dir), "clv_retrain": "always"}
    result = built.build(vars=vars_, select=FROM_REGISTRY, expect_success=False)

    failures = node_failures(result)
    assert len(calls) == 1, "the build must score through the patched function"
    assert list(failures) == ["int_clv__python_scores"], failures
    assert "injected failure while scoring" in failures["int_clv__python_scores"]
    assert len(list(model_dir.glob("*.onnx"))) == 2, "the failed run did train a new model"
    # the previous predictions, model file and export are untouched and usable
    pd.testing.assert_frame_equal(_predictions(built), before)
    assert sha256_file(model_dir / f"clv_model_{previous}.onnx") == previous_sha
    load_verified(model_dir, previous)
    assert pq.read_table(built.export).equals(export_before)
    # and no scoring run (BTYD fit and spend level) is saved for the scores that failed
    assert {p.name: p.read_bytes() for p in (model_dir / "runs").glob("*.json")} == runs_before
