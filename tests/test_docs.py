"""The dbt docs and contracts of the public tables, read from the manifest of one `dbt parse`
(no build): every public model and column is described, grain first; the public marts carry
enforced contracts; Python steps are internal behind a contracted SQL model; the segment rules
read the same in the docs, the tests and the README; the exposures name what they read."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from clv.report.data import TABLES as REPORT_TABLES

# Every test reads the parsed project (a dbt parse, about 9 s): CI runs them, not the fast set.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# The tables users query, each with an enforced contract.
PUBLIC_MARTS = {
    "clv_predictions", "clv_predictions_history", "clv_prediction_changes",
    "clv_model_evaluation", "clv_model_registry", "clv_gain_curve", "clv_decile_calibration",
    "clv_feature_importance", "clv_prediction_explanations", "clv_category_value",
    "clv_data_quality", "clv_segment_summary", "clv_total_summary",
}
# Public without a contract: Python models whose interface is the file they write.
PUBLIC_WITHOUT_CONTRACT = {"clv_predictions_export", "clv_bi_database"}
KEY_TESTS = {"unique", "clv_unique_combination"}
SEGMENTS = ["high_value", "new", "active", "at_risk", "dormant"]
# The report's exposure: the model that writes it and every table the report reads.
REPORT_INPUTS = {"clv_report", *REPORT_TABLES}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> dict:
    from conftest import DbtProject

    project = DbtProject(tmp_path_factory.mktemp("docs"))
    project.run("parse")
    return json.loads((project.workdir / "target" / "manifest.json").read_text())


def _models(manifest: dict) -> dict[str, dict]:
    return {node["name"]: node for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["package_name"] == "clv"}


def _tests_on(manifest: dict, model: dict) -> list[dict]:
    return [node for node in manifest["nodes"].values()
            if node["resource_type"] == "test" and node.get("attached_node") == model["unique_id"]]


def test_public_models_are_the_marts_and_the_handoff(manifest):
    public = {name for name, node in _models(manifest).items() if node["access"] == "public"}
    assert public == PUBLIC_MARTS | PUBLIC_WITHOUT_CONTRACT


def test_every_model_description_opens_with_its_grain(manifest):
    vague = {name: node["description"][:40] for name, node in _models(manifest).items()
             if not node["description"].startswith("One row")}
    assert vague == {}


def test_every_public_model_and_column_is_described(manifest):
    for name, node in _models(manifest).items():
        if node["access"] != "public":
            continue
        assert node["columns"], f"{name}: no columns documented"
        undescribed = [column for column, spec in node["columns"].items()
                       if len(spec["description"].strip()) < 10]
        assert undescribed == [], f"{name}: columns without a description"


def test_public_marts_enforce_a_contract_on_every_column(manifest):
    models = _models(manifest)
    for name in PUBLIC_MARTS:
        node = models[name]
        assert node["language"] == "sql", f"{name}: a Python model cannot carry a contract"
        assert node["config"]["contract"]["enforced"], name
        untyped = [column for column, spec in node["columns"].items() if not spec["data_type"]]
        assert untyped == [], f"{name}: documented columns outside the contract"


def test_every_public_date_is_a_date(manifest):
    """A BI tool filters and joins on dates: a column named for a date or a cutoff holds a DATE,
    not its text."""
    models = _models(manifest)
    for name in PUBLIC_MARTS:
        for column, spec in models[name]["columns"].items():
            if column.endswith(("_date", "_cutoff")):
                assert spec["data_type"] == "date", f"{name}.{column}: {spec['data_type']}"


def test_a_public_column_name_has_one_type_and_timestamps_are_utc_without_zone(manifest):
    """A BI tool joins and compares the public tables by column name: a name has one type in
    every table (horizon_days, say), and every timestamp is UTC without a time zone, as
    scored_at is, so that a session in another time zone compares them as written."""
    models = _models(manifest)
    types: dict[str, set[str]] = {}
    for name in PUBLIC_MARTS:
        for column, spec in models[name]["columns"].items():
            types.setdefault(column, set()).add(spec["data_type"])
            assert "zone" not in spec["data_type"], f"{name}.{column}: {spec['data_type']}"
    assert {column: kinds for column, kinds in types.items() if len(kinds) > 1} == {}


def test_python_steps_are_internal_and_published_through_a_contracted_model(manifest):
    models = _models(manifest)
    for name, node in models.items():
        if node["language"] != "python" or name in PUBLIC_WITHOUT_CONTRACT:
            continue
        assert node["access"] == "protected", name
        published = name.replace("int_clv__", "clv_")
        if published in PUBLIC_MARTS:
            assert node["unique_id"] in models[published]["depends_on"]["nodes"], published


def test_every_public_mart_has_a_tested_key(manifest):
    models = _models(manifest)
    for name in PUBLIC_MARTS:
        names = {test["test_metadata"]["name"] for test in _tests_on(manifest, models[name])
                 if test.get("test_metadata")}
        assert names & KEY_TESTS, f"{name}: no unique key test"


def test_export_row_columns_are_the_documented_ones(tmp_path):
    """clv_predictions_export has no contract: its documented columns are compared with the
    row the hand-off returns."""
    from clv.pipeline import handoff

    reader = pa.RecordBatchReader.from_batches(pa.schema([("customer_id", pa.string())]), [])
    row = handoff.write_parquet(reader, tmp_path / "predictions.parquet")
    schema = (ROOT / "python_models" / "_python_models.yml").read_text()
    block = schema.split("- name: clv_predictions_export", 1)[1].split("\n  - name: ", 1)[0]
    assert re.findall(r"- name: (\w+)", block) == list(row.columns)


def test_column_families_use_docs_blocks(manifest):
    models = _models(manifest)
    features = models["clv_customer_features"]["columns"]
    windows = [name for name in features if re.search(r"_last_\d+d$", name)]
    assert len(windows) >= 15
    assert all(features[name]["doc_blocks"] for name in windows)
    sequences = models["clv_customer_sequences"]["columns"]
    lags = [name for name in sequences if name.startswith("seq_")]
    assert len(lags) == 3 * 12  # the default clv_sequence_periods
    assert all(sequences[name]["doc_blocks"] for name in lags)


def _segment_table(text: str) -> list[str]:
    """The segment names of a markdown table whose rows start with a backquoted segment."""
    return re.findall(r"^\|\s*`(\w+)`\s*\|", text, flags=re.MULTILINE)


def test_segment_rules_agree_in_docs_tests_sql_and_readme(manifest):
    rules = manifest["docs"]["doc.clv.segment_rules"]["block_contents"]
    assert _segment_table(rules) == SEGMENTS
    models = _models(manifest)
    for name in ("clv_predictions", "clv_predictions_history", "clv_segment_summary"):
        accepted = [test["test_metadata"]["kwargs"]["values"]
                    for test in _tests_on(manifest, models[name])
                    if test.get("test_metadata", {}).get("name") == "accepted_values"]
        assert accepted == [SEGMENTS], name
    predictions = (ROOT / "models" / "4_marts" / "clv_predictions.sql").read_text()
    case = predictions.split("case", 1)[1].split("end as segment", 1)[0]
    assert re.findall(r"then '(\w+)'", case) == SEGMENTS
    summary = (ROOT / "models" / "4_marts" / "clv_segment_summary.sql").read_text()
    assert re.findall(r"'(\w+)' as segment,\s+(\d) as segment_order", summary) == [
        (segment, str(order)) for order, segment in enumerate(SEGMENTS, start=1)]
    readme = (ROOT / "README.md").read_text()
    assert _segment_table(readme.split("### Segments", 1)[1]) == SEGMENTS
    # the bounds each table states are the defaults the SQL applies (clv_segment_bounds(), with
    # the defaults of clv_validate_segment_bounds in macros/clv_settings.sql)
    settings = (ROOT / "macros" / "clv_settings.sql").read_text()
    macro = settings.split("macro clv_validate_segment_bounds", 1)[1].split("endmacro", 1)[0]
    defaults = macro.split("set defaults = {", 1)[1].split("}", 1)[0]
    bounds = dict(re.findall(r"'(\w+)': ([\d.]+)", defaults))
    assert set(bounds) == {"high_value_deciles", "new_days", "active_probability",
                           "at_risk_probability"}
    stated = [f"`value_decile` 1 or {bounds['high_value_deciles']}:",
              f"less than {bounds['new_days']} days",
              f"`purchase_probability` of {bounds['active_probability']} or more",
              (f"`purchase_probability` from {bounds['at_risk_probability']} to under "
               f"{bounds['active_probability']}"),
              f"`purchase_probability` under {bounds['at_risk_probability']}"]
    for table in (rules, readme.split("### Segments", 1)[1]):
        rows = [line for line in table.splitlines() if line.startswith("| `")][:5]
        assert all(text in row for text, row in zip(stated, rows, strict=True)), rows


def test_exposures_name_the_tables_they_read(manifest):
    exposures = {node["name"]: node for node in manifest["exposures"].values()}
    report = exposures["clv_report"]
    assert report["url"] == "reports/clv_report.html"
    assert {uid.rsplit(".", 1)[1] for uid in report["depends_on"]["nodes"]} == REPORT_INPUTS
    parquet = exposures["clv_predictions_parquet"]
    assert parquet["url"] == "exports/clv_predictions.parquet"  # the default clv_export_path
    assert "model.clv.clv_predictions_export" in parquet["depends_on"]["nodes"]


@pytest.mark.slow
def test_exposure_urls_follow_the_vars(tmp_path):
    """The report and the Parquet copy are where the vars put them, not at the defaults."""
    from conftest import DbtProject

    project = DbtProject(tmp_path)
    project.run("parse", vars={"clv_report_path": "out/value.html",
                               "clv_export_path": "out/value.parquet"})
    parsed = json.loads((project.workdir / "target" / "manifest.json").read_text())
    urls = {node["name"]: node["url"] for node in parsed["exposures"].values()}
    assert urls["clv_report"] == "out/value.html"
    assert urls["clv_predictions_parquet"] == "out/value.parquet"


def test_contract_types_follow_the_target(manifest):
    """The declared types render for the target parsed (DuckDB here): `varchar` and `double
    precision`, which Spark spells `string` and `double`."""
    columns = pd.DataFrame([
        {"model": name, "column": column, "data_type": spec["data_type"]}
        for name, node in _models(manifest).items() if name in PUBLIC_MARTS
        for column, spec in node["columns"].items()])
    assert set(columns.data_type) <= {"varchar", "double precision", "bigint", "integer",
                                      "date", "timestamp", "timestamp with time zone",
                                      "boolean"}
    assert "{{" not in "".join(columns.data_type)


@pytest.mark.parametrize("engine", ["onnxruntime", "sql"])
def test_scores_compile_before_the_first_build(tmp_path, engine):
    """dbt compile (as docs generate does) on a fresh database: int_clv__scores, which reads
    the scoring plan's query at execution, compiles to the Python step's rows while there is
    no plan table yet."""
    from conftest import DbtProject

    project = DbtProject(tmp_path)
    result = project.run("compile", vars={"clv_scoring_engine": engine},
                         select="int_clv__scores")
    assert result.success
    [compiled] = [r.node.compiled_code for r in result.result.results
                  if r.node.name == "int_clv__scores"]
    assert compiled.strip().endswith('"int_clv__python_scores"')
    assert not project.database.exists() or "int_clv__scoring_plan" not in \
        project.query("select table_name from information_schema.tables").table_name.tolist()
