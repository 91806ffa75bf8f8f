"""The run's settings as the Python steps see them.

The dbt vars are validated once, in ``macros/clv_settings.sql``; the one-row model
``clv_run_settings`` carries the validated values, and every Python model reads that row. This
module only converts its types.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from clv.config import TrainSettings
from clv.hybrid import BTYD_FEATURES

# The columns of clv_run_settings (models/clv_run_settings.sql) that this package reads or
# knows: a row with other columns comes from another version of the dbt package
# (:meth:`RunSettings.for_step`).
RUN_SETTINGS_COLUMNS = frozenset({
    "as_of_date", "horizon_days", "training_cutoffs", "cutoff_spacing_days", "period_days",
    "sequence_periods", "retrain", "model_dir", "keep_models", "seed", "ensemble_size",
    "max_train_rows", "max_validation_rows", "export_path", "bi_database_path",
    "static_features", "channels", "explanations", "scoring_engine", "time_zone",
    "feature_groups", "predictions_relation", "history_relation", "python_relations",
})


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value)
    return tuple(item.strip() for item in str(value or "").split(",") if item.strip())


def _relation_parts(this: Any) -> tuple[str, ...]:
    """A Python step's own relation (``dbt.this``) as its lower-case parts: dbt passes an object
    with ``database`` (none on some engines), ``schema`` and ``identifier``; ``clv build`` the
    text ``schema.alias``."""
    schema, identifier = getattr(this, "schema", None), getattr(this, "identifier", None)
    if schema and identifier:
        database = getattr(this, "database", None)
        parts = (database, schema, identifier) if database else (schema, identifier)
    else:
        parts = tuple(part.strip('"`') for part in str(this).split("."))
    return tuple(str(part).lower() for part in parts)


def _same_relation(first: tuple[str, ...], second: tuple[str, ...]) -> bool:
    """Whether two relations' parts name one relation, as far as both name it (one may lack
    the database)."""
    common = min(len(first), len(second))
    return common >= 2 and first[-common:] == second[-common:]


def _groups(value: Any) -> dict[str, tuple[str, ...]]:
    """The ``feature_groups`` JSON text (group -> columns, in declared order) as a dict."""
    return {str(name): _names(columns) for name, columns in json.loads(value or "{}").items()}


def _require_this_version(columns: list[str]) -> None:
    """Stop unless the settings row has the columns this package knows: the dbt package (its
    SQL, from ``dbt deps``) and the Python package ``clv`` (from pip) are installed separately,
    and a pair of different versions would read each other's tables wrongly."""
    missing = sorted(RUN_SETTINGS_COLUMNS - set(columns))
    unknown = sorted(set(columns) - RUN_SETTINGS_COLUMNS)
    if not missing and not unknown:
        return
    from clv import __version__

    differences = "; ".join(
        f"{label} {', '.join(names)}" for label, names in
        (("it lacks", missing), ("this package does not know", unknown)) if names)
    raise ValueError(
        f"clv_run_settings does not have the columns of the Python package clv {__version__} "
        f"({differences}): the dbt package and the Python package clv are of different "
        "versions, or clv_run_settings was not built again since an upgrade. Install both from "
        "the same revision (the packages.yml revision and pip's), then build clv_run_settings "
        "with the rest")


@dataclass(frozen=True)
class RunSettings:
    """What the training, scoring and export steps need to know about this run."""

    model_dir: Path  # clv_model_dir: where models and scoring runs are saved
    retrain: str  # clv_retrain: always | never | auto
    horizon_days: int  # clv_horizon_days
    period_days: int  # clv_period_days
    sequence_periods: int  # clv_sequence_periods
    seed: int  # clv_seed
    static_features: tuple[str, ...]  # the SQL layer's declared static features
    channels: tuple[str, ...]  # sequence channels, in network order
    export_path: Path = Path("exports/clv_predictions.parquet")  # clv_export_path
    bi_database_path: Path | None = None  # clv_bi_database_path; None: no BI database copy
    ensemble_size: int = 0  # clv_ensemble_size: networks averaged; 0 = automatic
    # clv_max_train_rows, clv_max_validation_rows: int_clv__training_sample's caps (the
    # training's own defaults when a settings row predates them)
    max_train_rows: int = TrainSettings.max_train_rows
    max_validation_rows: int = TrainSettings.max_validation_rows
    explanations: bool = True  # clv_explanations: fill clv_prediction_explanations
    scoring_engine: str = "onnxruntime"  # clv_scoring_engine: onnxruntime | sql
    # clv_feature_groups() in macros/clv_settings.sql: static feature group -> its columns,
    # in declared order (the units of feature importance and of the explanations)
    feature_groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    keep_models: int = 5  # clv_keep_models: the most recently used models kept per data set
    # Where this build writes clv_predictions and clv_predictions_history (schema.table, as dbt
    # resolved them); empty when not known, and then neither is read
    published_relations: tuple[str, ...] = ()
    # Not a var: the training step's sample of this warehouse's customers (see
    # clv.pipeline.registry.data_signature), which tells this data's models from others'
    data_signature: tuple[int, ...] = ()
    # Not a var: the build that runs (clv.pipeline.registry.build_key); a model's retention is
    # the business of the build that trained it
    trained_by: str = ""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunSettings:
        """From the one row of ``clv_run_settings`` (already validated by the macro)."""
        return cls(
            model_dir=Path(str(row["model_dir"])),
            retrain=str(row["retrain"]),
            horizon_days=int(row["horizon_days"]),
            period_days=int(row["period_days"]),
            sequence_periods=int(row["sequence_periods"]),
            seed=int(row["seed"]),
            static_features=_names(row["static_features"]),
            channels=_names(row["channels"]),
            export_path=Path(str(row["export_path"])),
            bi_database_path=(Path(str(row["bi_database_path"]))
                              if row.get("bi_database_path") else None),
            ensemble_size=int(row["ensemble_size"]),
            max_train_rows=int(row.get("max_train_rows") or cls.max_train_rows),
            max_validation_rows=int(row.get("max_validation_rows") or cls.max_validation_rows),
            explanations=bool(row["explanations"]),
            scoring_engine=str(row.get("scoring_engine") or "onnxruntime"),
            feature_groups=_groups(row["feature_groups"]),
            keep_models=int(row.get("keep_models") or 5),
            published_relations=tuple(str(row.get(name) or "") for name in
                                      ("predictions_relation", "history_relation")),
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> RunSettings:
        """The settings of ``table``, the one row of ``clv_run_settings`` (the Python models of
        earlier revisions read them through this method: the version check is here)."""
        _require_this_version(table.column_names)
        if table.num_rows != 1:
            raise ValueError(f"clv_run_settings must hold one row, found {table.num_rows}")
        return cls.from_row(table.to_pylist()[0])

    @classmethod
    def for_step(cls, table: pa.Table, step: Any) -> RunSettings:
        """The settings a Python step acts on: ``table``, the row of ``clv_run_settings``, once
        the step (``step``: its ``dbt.this``) has found itself among the relations that row's
        build meant to build (``python_relations``). A row of another environment, which a run
        that defers clv_run_settings (``--defer``, ``dbt clone``) reads, names that
        environment's model directory and files: the step stops rather than train, export or
        prune there. (Each model names ``dbt.ref("clv_run_settings")`` itself: dbt finds a
        Python model's refs in its own source.)"""
        settings = cls.from_table(table)
        listed = table.to_pylist()[0]["python_relations"]
        relations = [str(name) for name in json.loads(listed or "[]")]
        if not relations:  # where the steps are is not known (no graph)
            return settings
        this = _relation_parts(step)
        if not any(_same_relation(this, tuple(name.split("."))) for name in relations):
            shown = ", ".join(relations[:2]) + (", ..." if len(relations) > 2 else "")
            builds = ".".join(this)
            raise ValueError(
                "clv_run_settings was built by another environment's run: it lists clv's Python "
                f"steps at {shown}, and this run builds {builds}. A run that "
                "defers clv_run_settings (--defer, dbt clone) reads the settings of the "
                "environment it defers to, whose model directory and export path are that "
                "environment's; build clv_run_settings in this run (add it to --select) or once "
                "in this environment")
        return settings

    @property
    def model_static_features(self) -> tuple[str, ...]:
        """The network's static inputs: the declared SQL features and the BTYD outputs."""
        return self.static_features + tuple(f for f in BTYD_FEATURES
                                            if f not in self.static_features)
