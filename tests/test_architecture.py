"""The shape of the code: one boundary to the warehouse, thin Python models, layers that only
look upstream. Cheap checks that keep the architecture from eroding."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "clv"
MODEL_LAYERS = ("1_staging", "2_intermediate", "3_features", "4_marts")
# python_models/ run between the features and the marts (training, scoring, evaluation), except
# the hand-offs (the Parquet copy, the BI database copy and the report), which read marts and so
# come last.
HANDOFF = {"clv_predictions_export", "clv_bi_database", "clv_report"}
REF = re.compile(r"""ref\(\s*['"]([A-Za-z0-9_]+)['"]\s*\)""")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


# The engines' client libraries, and the warehouse implementations built on them.
ENGINE_MODULES = {"duckdb", "psycopg2", "pyspark", "py4j", "clv.warehouse.duckdb",
                  "clv.warehouse.postgres", "clv.warehouse.spark"}
# Outside clv.warehouse, who may name an engine: `clv build` opens the warehouse of a target's
# type, and the BI copy is a DuckDB file whatever the warehouse.
ENGINE_AWARE = {"src/clv/build.py": {"clv.warehouse.postgres", "clv.warehouse.spark"},
                "src/clv/pipeline/handoff.py": {"clv.warehouse.duckdb"}}


def _modules(path: Path) -> set[str]:
    """Every module ``path`` imports, in full (``a.b`` for ``from a.b import c``), and its
    top-level package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            full = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            full = [node.module]
        else:
            continue
        names |= set(full) | {name.split(".")[0] for name in full}
    return names


def test_only_the_warehouse_package_talks_to_the_engine():
    offenders = {}
    for path in [*PACKAGE.rglob("*.py"), *(ROOT / "python_models").glob("*.py")]:
        name = path.relative_to(ROOT).as_posix()
        if "warehouse" in path.parts:
            continue
        named = _modules(path) & ENGINE_MODULES - ENGINE_AWARE.get(name, set())
        if named:
            offenders[name] = sorted(named)
    assert offenders == {}


def test_python_models_are_one_call_into_the_pipeline():
    for path in (ROOT / "python_models").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        model = next(node for node in tree.body
                     if isinstance(node, ast.FunctionDef) and node.name == "model")
        assert len(model.body) <= 5, f"{path.name}: keep the work in clv.pipeline"
        assert all(name in {"clv"} for name in _imports(path)), path.name


def _layer_of_models() -> dict[str, int]:
    layers = {}
    for index, layer in enumerate(MODEL_LAYERS):
        for path in (ROOT / "models" / layer).glob("*.sql"):
            layers[path.stem] = index
    for path in (ROOT / "python_models").glob("*.py"):
        layers[path.stem] = len(MODEL_LAYERS) - 0.5 if path.stem in HANDOFF else 2.5
    return layers


def test_models_only_ref_their_own_or_earlier_layers():
    layers = _layer_of_models()
    backwards = []
    for name, layer in layers.items():
        folder = "python_models" if layer % 1 else f"models/{MODEL_LAYERS[int(layer)]}"
        suffix = ".py" if layer % 1 else ".sql"
        text = (ROOT / folder / f"{name}{suffix}").read_text(encoding="utf-8")
        backwards += [f"{name} refs {ref}" for ref in REF.findall(text)
                      if ref in layers and layers[ref] > layer]
    assert backwards == []
    assert layers, "no models found"


def test_predicted_clv_is_computed_only_by_the_spend_level():
    """`predicted_clv` is the network's value times the spend factor in clv.level.apply (and in
    the compiled scoring query, its SQL twin) only: the marts select it, never compute it, and
    no other Python multiplies by the factor (the explanations call clv.level.apply)."""
    for path in (ROOT / "models").rglob("*.sql"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\*\s*[\w.]*\s+as\s+predicted_clv", text), path.name
        assert "spend_factor" not in text, path.name
    twins = {ROOT / "src/clv/level.py", ROOT / "src/clv/sql_scoring/query.py"}

    def is_factor(node: ast.AST) -> bool:
        return ((isinstance(node, ast.Name) and node.id == "spend_factor")
                or (isinstance(node, ast.Attribute) and node.attr == "spend_factor"))

    computed = [f"{path.relative_to(ROOT)}:{node.lineno}"
                for path in (ROOT / "src").rglob("*.py") if path not in twins
                for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)
                and (is_factor(node.left) or is_factor(node.right))]
    assert computed == []


def test_every_relation_name_fits_postgresql():
    """dbt names a unit test's temporary relation after the test: PostgreSQL refuses a name
    above 63 characters, so a longer one fails the build there only."""
    import yaml

    names = [path.stem for folder in ("models", "python_models", "data_tests")
             for path in (ROOT / folder).rglob("*") if path.suffix in {".sql", ".py"}]
    for path in (ROOT / "models").rglob("*unit_tests.yml"):
        names += [test["name"] for test in yaml.safe_load(path.read_text())["unit_tests"]]
    assert len(names) > 40
    assert [name for name in names if len(name) > 63] == []


def test_every_model_is_built_after_the_settings():
    """`dbt build --select clv_run_settings+`, as the README says to run after changing a var,
    rebuilds every model: each one reads the validated settings or a model that does."""
    paths = [*(ROOT / "models").rglob("*.sql"), *(ROOT / "python_models").glob("*.py")]
    texts = {path.stem: path.read_text(encoding="utf-8") for path in paths}
    refs = {name: set(REF.findall(text)) & set(texts) for name, text in texts.items()}
    after: set[str] = {"clv_run_settings"}
    while True:
        more = {name for name, read in refs.items() if read & after} - after
        if not more:
            break
        after |= more
    assert sorted(set(texts) - after) == []
    assert len(texts) > 30
