"""The explanation steps (the method is :mod:`clv.explain`).

- At training, :func:`training_metadata` adds two keys to the new model's metadata: the
  reference customer (``reference_inputs``) and the permutation importance of each feature group
  on the validation cutoff (``feature_importance``), both from the exported ONNX graph.
- :func:`feature_importance_table` lists the importance of every saved model.
- After scoring, :func:`explain` streams every scoring customer's three largest group
  contributions, in the units of ``predicted_clv`` (the scoring run's spend factor), unless the
  var ``clv_explanations`` is false.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from clv.artifacts import ModelArtifact
from clv.config import ID_COLUMN
from clv.data import model_inputs
from clv.explain import (
    EXPLANATION_SCHEMA,
    InputGroup,
    Reference,
    explain_batches,
    explanation_stages,
    feature_groups,
    parallel_stages,
    permutation_importance,
)
from clv.hybrid import BTYDFit
from clv.level import SpendLevel
from clv.pipeline.evaluation import metadata_rows
from clv.pipeline.log import dbt_log, logged_batches
from clv.pipeline.registry import current_version, load_current, model_features
from clv.pipeline.scoring import ScoringRun, with_btyd
from clv.pipeline.settings import RunSettings
from clv.score import DEFAULT_BATCH_SIZE, LoadedModel, load_verified
from clv.warehouse import Warehouse

if TYPE_CHECKING:  # the training result; importing clv.train would load PyTorch
    from clv.train import TrainResult

IMPORTANCE_COLUMNS = {"model_version": "string", "is_current": "bool",
                      "validation_cutoff": "string", "feature_group": "string",
                      "columns": "int64", "repeats": "int64", "baseline_gini": "float64",
                      "permuted_gini": "float64", "gini_drop": "float64",
                      "gini_drop_std": "float64", "baseline_aggregate_error": "float64",
                      "permuted_aggregate_error": "float64", "aggregate_error_change": "float64"}


def training_metadata(artifact: ModelArtifact, result: TrainResult, examples: pa.Table,
                      run: RunSettings, seed: int) -> dict[str, Any]:
    """``reference_inputs`` and ``feature_importance`` for the model just exported.

    The reference is the per-column median of ``examples`` (the training sample, BTYD outputs
    included), its static inputs the model's fill values (what a missing value reads as); the
    importance shuffles each group of ``run.feature_groups`` on the validation
    rows and scores them with the exported graph, as scoring will.
    """
    model = load_verified(artifact.onnx_path.parent, artifact.version)
    groups = feature_groups(model.spec, run.feature_groups)
    reference = Reference.median_of(*model_inputs(examples, model.spec),
                                    fill=model.spec.static_fill)
    label = result.validation.column("label").to_numpy()
    stages = parallel_stages(explanation_stages(model, reference, log=dbt_log), model.workers)
    importance = permutation_importance(stages, result.validation_static,
                                        result.validation_sequence, label, groups, seed)
    dbt_log("feature importance (normalized Gini drop with the group shuffled, validation "
            "cutoff): " + ", ".join(f"{row['feature_group']} {row['gini_drop']:+.3f}"
                                    for row in importance if row["gini_drop"] is not None))
    return {"reference_inputs": reference.to_dict(), "feature_importance": importance}


def feature_importance_table(registry: pd.DataFrame) -> pd.DataFrame:
    """One row per model per feature group, from each model's metadata (none for models saved
    before feature importance existed)."""
    return pd.DataFrame(metadata_rows(registry, "feature_importance")).reindex(
        columns=list(IMPORTANCE_COLUMNS)).astype(IMPORTANCE_COLUMNS)


@dataclass(frozen=True)
class Explained:
    """Batch function (picklable, for :meth:`Warehouse.map_batches`): scoring example batches
    to explanation rows."""

    model: LoadedModel
    btyd_fit: BTYDFit
    horizon_days: int
    groups: tuple[InputGroup, ...]
    reference: Reference
    spend: SpendLevel
    batch_rows: int
    as_of: date | None = None  # the scoring run's, on every row

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from explain_batches(self.model, with_btyd(batches, self.btyd_fit,
                                                         self.horizon_days),
                                   self.groups, self.reference, self.spend,
                                   self.batch_rows, log=dbt_log, as_of=self.as_of)


def _empty(reason: str) -> pa.RecordBatchReader:
    dbt_log(f"clv_prediction_explanations is left empty: {reason}")
    return pa.RecordBatchReader.from_batches(EXPLANATION_SCHEMA, [])


def explain(warehouse: Warehouse, examples: Any, scoring_run: pa.Table, registry: pd.DataFrame,
            run: RunSettings, batch_rows: int = DEFAULT_BATCH_SIZE) -> Any:
    """Stream one explanation row per customer of ``clv_scoring_examples``
    (:data:`clv.explain.EXPLANATION_SCHEMA`) with the current model, the inputs and spend
    factor of the scoring run in ``scoring_run`` (the row of ``int_clv__scoring_run``); empty,
    with a log line, when ``clv_explanations`` is false or the model predates explanations."""
    if not run.explanations:
        return _empty("the var clv_explanations is false")
    version = current_version(registry)
    features = model_features(warehouse.schema(examples), run)
    model = load_current(run, version, features)
    if "reference_inputs" not in model.metadata:
        return _empty(f"model {version} was saved before explanations existed (its metadata "
                      "has no reference_inputs); run once with clv_retrain 'always' to retrain")
    record = ScoringRun.from_table(scoring_run)
    if record.model_version != version:
        raise ValueError(f"int_clv__scoring_run is of model {record.model_version}, the "
                         f"registry's current model is {version}: rebuild int_clv__scores and "
                         "what follows it")
    groups = feature_groups(model.spec, run.feature_groups)
    reference = Reference.from_dict(model.metadata["reference_inputs"], model.spec)
    dbt_log(f"explaining {record.customers:,} predictions of model {version} by "
            f"{len(groups)} feature groups against the reference customer")
    explained = Explained(model, record.btyd_fit, run.horizon_days, tuple(groups), reference,
                          record.level, batch_rows,
                          date.fromisoformat(str(record.as_of_date)[:10]))
    rows = warehouse.map_batches(examples, explained, EXPLANATION_SCHEMA, batch_rows,
                                 order_by=[ID_COLUMN])
    if warehouse.distributed:  # computed on the executors when the table is written
        return rows
    return pa.RecordBatchReader.from_batches(
        EXPLANATION_SCHEMA, logged_batches(rows, record.customers, "explained"))
