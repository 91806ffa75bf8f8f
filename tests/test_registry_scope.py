"""Which models a warehouse's registry lists and marks current.

Two warehouses built from different data share one model directory, as two projects that both
keep the default ``onnx/`` do: each lists, reuses and scores only the models of its own data
(``clv.pipeline.registry.data_signature``). ``is_current`` in ``clv_model_registry`` is the
model behind ``clv_predictions``: a build that trains a new model and then fails while scoring
leaves it on the model of the predictions users still read.

The signature's sample and overlap are checked against a plain-Python recomputation.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import date

import duckdb
import pytest
from conftest import failing_after_first_batch
from production import FAST_VARS, ParsedProject, failures, transactions

from clv.pipeline import registry, scoring
from clv.warehouse.duckdb import DuckDBWarehouse

AS_OF = "2023-06-30"
# Everything the registry, the history and the evaluation tables need; the data tests are
# other files' business.
ARGS = ["--select", "+clv_model_registry", "+clv_predictions_history", "+clv_model_evaluation",
        "+clv_decile_calibration", "+clv_gain_curve", "+clv_feature_importance",
        "--exclude-resource-type", "test", "unit_test"]


# ---------------------------------------------------------------------------------------------
# The signature, against a plain-Python recomputation


def _reference_signature(rows: list[tuple[str, date]], size: int) -> list[int]:
    """The smallest first-32-bit md5 values of 'customer_id|first purchase date'."""
    first: dict[str, date] = {}
    for customer, day in rows:
        first[customer] = min(day, first.get(customer, day))
    hashes = {int(hashlib.md5(f"{c}|{d.isoformat()}".encode()).hexdigest()[:8], 16)
              for c, d in first.items()}
    return sorted(hashes)[:size]


def _customer_days(rows: list[tuple[str, date]]) -> duckdb.DuckDBPyConnection:
    """int_clv__customer_days' columns that the signature reads, for ``rows``."""
    connection = duckdb.connect()
    connection.execute("create table days (customer_id varchar, activity_date date)")
    connection.executemany("insert into days values (?, ?)", rows)
    connection.execute("""
        create table customer_days as
        select customer_id, activity_date,
               activity_date = min(activity_date) over (partition by customer_id)
                   as is_first_purchase_day
        from days""")
    return connection


def test_signature_is_the_smallest_md5_of_each_customers_first_purchase():
    rows = [(f"C{i:05d}", date(2022, 1, 1 + i % 28)) for i in range(3000)]
    rows += [(f"C{i:05d}", date(2023, 3, 1)) for i in range(0, 3000, 7)]  # later purchases
    connection = _customer_days(rows)
    signature = registry.data_signature(DuckDBWarehouse(connection), "customer_days")
    assert list(signature) == _reference_signature(rows, registry.SIGNATURE_SIZE)
    assert len(signature) == registry.SIGNATURE_SIZE


def test_overlap_tells_the_same_data_at_any_date_from_other_data():
    size = 64
    customers = [(f"C{i:05d}", date(2021, 1, 1 + i % 365 // 13)) for i in range(5000)]
    everything = _reference_signature(customers, size)
    earlier = _reference_signature(customers[:600], size)  # an earlier as-of date: a subset
    later = _reference_signature(customers + [(f"N{i}", date(2024, 1, 2)) for i in range(900)],
                                 size)
    other = _reference_signature([(f"C{i:05d}", date(2022, 6, 1 + i % 28))
                                  for i in range(5000)], size)  # same ids, other history
    assert registry.signature_overlap(everything, everything, size) == 1.0
    assert registry.signature_overlap(everything, earlier, size) == 1.0
    assert registry.signature_overlap(later, everything, size) == 1.0
    assert registry.signature_overlap(everything, other, size) < 0.1
    assert registry.signature_overlap(everything, [], size) == 0.0
    # two small data sets (shorter than the sample): exact containment of the smaller
    small = _reference_signature(customers[:10], size)
    assert registry.signature_overlap(small, _reference_signature(customers[:20], size),
                                      size) == 1.0
    assert registry.signature_overlap(small, _reference_signature(customers[5:20], size),
                                      size) == 0.5


# ---------------------------------------------------------------------------------------------
# Two warehouses, one model directory


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """Warehouse x (data a) and warehouse y (data b), both keeping models in one directory."""
    workdir = tmp_path_factory.mktemp("registry_scope")
    shared = workdir / "onnx"
    projects = {}
    for name, seed in (("x", 8), ("y", 9)):
        project = ParsedProject(workdir / name)
        project.workdir.mkdir()
        path = project.workdir / "transactions.csv"
        transactions(seed=seed).to_csv(path, index=False)
        project.vars = {**FAST_VARS, "clv_as_of_date": AS_OF, "clv_transactions": str(path),
                        "clv_model_dir": str(shared),
                        "clv_export_path": str(project.workdir / "exports" / "p.parquet")}
        project.build(project.vars, ARGS)
        projects[name] = project
    projects["x"].model, = projects["x"].query("select model_version from clv_predictions "
                                               "limit 1").model_version
    projects["y"].model, = projects["y"].query("select model_version from clv_predictions "
                                               "limit 1").model_version
    return workdir, shared, projects


def _registry(project):
    return project.query("select model_version, is_current from clv_model_registry "
                         "order by created_at")


def test_the_registry_says_how_the_btyd_fits_went():
    from clv.pipeline.registry import btyd_fit_note

    fine = {"status": "maximum_likelihood", "reason": None}
    assert btyd_fit_note(None) is None
    assert btyd_fit_note({"2023-01-01": fine, "2023-02-01": fine}) == (
        "maximum likelihood at all 2 cutoffs")
    degenerate = {"status": "regularized", "reason": "a = 1.7e-08: too little history"}
    assert btyd_fit_note({"2023-02-01": fine, "2023-01-01": degenerate}) == (
        "2023-01-01: regularized (a = 1.7e-08: too little history)")


@pytest.mark.slow
def test_each_warehouse_lists_only_the_models_of_its_data(shop):
    _, shared, projects = shop
    x, y = projects["x"], projects["y"]
    assert x.model != y.model
    assert len(list(shared.glob("clv_model_*.onnx"))) == 2
    assert _registry(x).values.tolist() == [[x.model, True]]
    assert _registry(y).values.tolist() == [[y.model, True]]


@pytest.mark.slow
def test_never_does_not_score_with_a_model_of_other_data(shop, tmp_path):
    _, shared, projects = shop
    x, y = projects["x"], projects["y"]
    only_x = tmp_path / "onnx"
    only_x.mkdir()
    for path in shared.glob(f"clv_model_{x.model}.*"):
        shutil.copy2(path, only_x / path.name)
    other = ParsedProject(tmp_path)
    vars_ = {**y.vars, "clv_model_dir": str(only_x), "clv_retrain": "never",
             "clv_export_path": str(tmp_path / "p.parquet")}
    result = other.build(vars_, ARGS, expect_success=False)
    failed = failures(result)
    assert list(failed) == ["int_clv__model_registry"], failed
    message = failed["int_clv__model_registry"].strip().splitlines()[-1]
    assert "none of the 1 saved model(s)" in message and "trained on other data" in message
    assert "set clv_retrain to 'auto'" in message
    assert "clv_predictions" not in set(other.query(
        "select table_name from information_schema.tables").table_name)


@pytest.mark.slow
def test_never_scores_an_earlier_date_of_the_same_data_with_its_model(shop, tmp_path):
    """A new warehouse on the same data (a backfill from scratch, another engine) at an
    earlier as-of date sees fewer customers; the model is still this data's."""
    _, _, projects = shop
    x = projects["x"]
    earlier = ParsedProject(tmp_path)
    vars_ = {**x.vars, "clv_as_of_date": "2023-03-31", "clv_retrain": "never",
             "clv_export_path": str(tmp_path / "p.parquet")}
    earlier.build(vars_, ARGS)
    assert set(earlier.query("select model_version from clv_predictions").model_version) == {
        x.model}
    assert _registry(earlier).values.tolist() == [[x.model, True]]


@pytest.mark.slow
def test_a_failed_scoring_leaves_is_current_on_the_model_behind_the_predictions(shop,
                                                                                monkeypatch):
    _, shared, projects = shop
    x = projects["x"]
    before = x.query("select * from clv_predictions order by customer_id")
    with monkeypatch.context() as patch:
        patch.setattr(scoring, "score_batches", failing_after_first_batch(scoring.score_batches))
        result = x.build({**x.vars, "clv_retrain": "always"}, ARGS, expect_success=False)
    assert list(failures(result)) == ["int_clv__python_scores"], failures(result)
    trained = x.query("select model_version from int_clv__model_registry where is_current"
                      ).model_version[0]
    assert trained != x.model, "the failed build did train (and select) a new model"
    assert (shared / f"clv_model_{trained}.onnx").is_file()
    # the predictions are the previous ones, and the registry says so
    assert x.query("select * from clv_predictions order by customer_id").equals(before)
    current = x.query("select model_version from clv_model_registry where is_current")
    assert current.model_version.tolist() == [x.model]
    assert _current_in_evaluation_marts(x) == {mart: [x.model] for mart in EVALUATION_MARTS}

    # clv_retrain never keeps scoring with the model behind the predictions, not the newer one
    x.build({**x.vars, "clv_retrain": "never"}, ARGS)
    assert set(x.query("select model_version from clv_predictions").model_version) == {x.model}

    # the next complete build scores with the new model and marks it current
    x.build(x.vars, ARGS)
    scored = set(x.query("select model_version from clv_predictions").model_version)
    current = x.query("select model_version from clv_model_registry where is_current")
    assert scored == {trained} and current.model_version.tolist() == [trained]
    assert _current_in_evaluation_marts(x) == {mart: [trained] for mart in EVALUATION_MARTS}
    assert set(_registry(x).model_version) == {x.model, trained}


EVALUATION_MARTS = ("clv_model_evaluation", "clv_decile_calibration", "clv_gain_curve",
                    "clv_feature_importance")


def _current_in_evaluation_marts(project) -> dict[str, list[str]]:
    """The model each public evaluation table marks current (is_current, from the registry)."""
    return {mart: project.query(f"select distinct model_version from {mart} where is_current"
                                ).model_version.tolist() for mart in EVALUATION_MARTS}
