"""Saved models: which one a run may use, the registry table that lists them, and how many
the model directory keeps.

A model fits a run when its file is intact (sha256) and its features, horizon and sequence
shape equal the run's (:func:`clv.score.load_verified` checks both).

A model *belongs* to this warehouse when it was trained on this warehouse's data and fits its
settings. Several warehouses may share one model directory (the default ``onnx/``); each lists,
reuses, scores with and prunes only its own models. The data is recognised by its
:func:`data_signature`, a sample of its customers that the training step writes into the
model's metadata last, once everything else is saved: a model without it (its training was
interrupted, or it predates signatures) is never reused or scored with by a warehouse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from clv import artifacts, level
from clv.artifacts import PREFIX, ModelArtifact, list_artifacts
from clv.config import FEATURE_CHANGES, FEATURE_DEFINITIONS
from clv.data import feature_spec
from clv.hybrid import BTYD_FEATURES
from clv.pipeline.history import newest_runs_sql
from clv.pipeline.log import dbt_debug, dbt_log
from clv.pipeline.settings import RunSettings
from clv.score import LoadedModel, ModelMismatchError, SettingsMismatchError, load_verified

# data_signature: the customers with the smallest md5 of (customer_id, first purchase date).
SIGNATURE_SIZE = 1024
# Two signatures are the same data when at least this share of the customers both samples can
# hold is in both (1.0 for the same data on any later or earlier as-of date, about 0 for
# another data set).
SAME_DATA_OVERLAP = 0.5
# A model this build trained is still its data's, for retention, while this share of its
# customers is still in the data: a rolling window of transactions moves most customers' first
# purchases within months (about 40% still match after three months of a two-year window),
# while another data set shares about none.
OWN_DATA_OVERLAP = 0.05
SIGNATURE_KEY = "data_signature"
# The build that trained a model (build_key): only that build deletes it (clv_keep_models)
TRAINED_BY_KEY = "trained_by"
# Per build, the models its clv_predictions and history hold (pins/<build_key>.json): no build
# deletes a model another build's tables need, whoever trained it
PINS_DIR = "pins"
# Present while a training step runs (see train_and_list).
JOURNAL = ".clv_training_step.json"
# The tables whose model versions the model directory must keep (read as the previous build
# left them: they are built after this step).
PUBLISHED_TABLES = ("clv_predictions", "clv_predictions_history")

REGISTRY_COLUMNS = ["model_version", "created_at", "is_current", "horizon_days", "period_days",
                    "sequence_periods", "training_cutoffs", "validation_cutoff", "training_rows",
                    "validation_rows", "validation_loss", "normalized_gini", "aggregate_error",
                    "decile_mape", "btyd_level_correction", "network_level_weight",
                    "level_log_sd", "is_seasonal_level", "level_note", "btyd_fit_note",
                    "feature_note", "settings",
                    "feature_count", "onnx_path", "sha256"]


def model_features(schema: pa.Schema, run: RunSettings) -> list[str]:
    """The network's feature list for an example table, BTYD outputs included."""
    extra = [pa.field(name, pa.float64()) for name in BTYD_FEATURES if name not in schema.names]
    spec = feature_spec(pa.schema(list(schema) + extra), run.model_static_features, run.channels)
    return list(spec.features)


def expected_metadata(features: list[str], run: RunSettings) -> dict[str, Any]:
    """Metadata a saved model must carry to score this run."""
    return {
        "features": features,
        "horizon_days": run.horizon_days,
        "n_periods": run.sequence_periods,
        "period_days": run.period_days,
    }


def load_current(run: RunSettings, version: str, features: list[str]) -> LoadedModel:
    """The registry's current model ``version``, checked against this run's settings. A model
    that fits other settings was chosen by a registry built with other vars than this step's
    (a run that left int_clv__model_registry out and changed clv_horizon_days, say): the error
    says to build the registry with them."""
    if not artifacts.metadata_path(run.model_dir, version).is_file():
        raise ModelMismatchError(
            f"int_clv__model_registry names model {version}, which {run.model_dir} "
            "(clv_model_dir) does not hold: the registry was most likely built by a run with "
            "another clv_model_dir (or the model's files were removed). A run that defers to "
            "another environment (--defer) reads that environment's registry, whose model lies "
            "in its own model directory: select the training step as well (--select "
            "clv_run_settings+, or +int_clv__model_registry+ with the steps after it)")
    try:
        return load_verified(run.model_dir, version, expected_metadata(features, run))
    except SettingsMismatchError as error:
        raise SettingsMismatchError(
            f"{error}. int_clv__model_registry chose this model with other vars: build it and "
            "what it reads with these vars too (select +int_clv__model_registry+), or run this "
            "step with the vars it was built with") from error


def stale_features_note(metadata: dict[str, Any]) -> str | None:
    """What changed in the features since the model was trained, or None when it was trained
    on the features this version computes. It still scores (they have the same columns), but
    its inputs have moved a little from what it learned on. A model of this version's features
    saved before the fill values were kept (no ``static_fill``) reads a missing input as 0,
    which the note says too."""
    saved = int(metadata.get("feature_definitions") or 1)
    retrain = ("retrain once with clv_retrain: always at the history's latest as-of date "
               "(clv_as_of_date)")
    if saved == FEATURE_DEFINITIONS:
        if "static_features" in metadata and "static_fill" not in metadata:
            return (f"model {metadata.get('model_version')} was saved before missing model "
                    "inputs read as the training median: it reads a missing value (an extra "
                    f"feature, a sign-up date) as 0; {retrain}")
        return None
    if saved > FEATURE_DEFINITIONS:
        return (f"model {metadata.get('model_version')} was trained by a newer version of clv "
                f"(feature definitions {saved}; this version computes {FEATURE_DEFINITIONS}): "
                f"upgrade clv, or {retrain}")
    changes = "; ".join(FEATURE_CHANGES.get(n, f"definitions {n}")
                        for n in range(saved + 1, FEATURE_DEFINITIONS + 1))
    return (f"model {metadata.get('model_version')} was trained before this version's feature "
            f"changes ({changes}); {retrain}")


def data_signature(warehouse: Any, customer_days: Any) -> tuple[int, ...]:
    """A sample of the warehouse's customers that identifies its data: the
    :data:`SIGNATURE_SIZE` smallest md5 buckets (first 32 bits) of ``customer_id|first purchase
    date``, from ``int_clv__customer_days``, ascending.

    New customers enter it and customers before an earlier as-of date leave it, but a
    customer's value never changes (the first purchase stays where it was), so the same data
    at two dates overlaps fully (:func:`signature_overlap`); it is the same on every engine (md5
    of the same text).
    """
    key = warehouse.md5_int(warehouse.key_sql(["customer_id", "activity_date"]))
    table = warehouse.query(customer_days, (
        f"select distinct {key} as h from {{relation}} where is_first_purchase_day "
        f"order by h limit {SIGNATURE_SIZE}"))
    return tuple(sorted(int(h) for h in table.column("h").to_pylist()))


def signature_overlap(first: Sequence[int], second: Sequence[int],
                      size: int = SIGNATURE_SIZE) -> float:
    """The share of the smaller data set's customers found in the other, estimated from two
    signatures (bottom-k samples of the same hash).

    Below the smaller of the two samples' bounds both hold every customer of their data
    (:func:`_complete_parts`), so the share is exact there: 1.0 when one data set holds the
    other (the same data at another as-of date), about 0 for unrelated ones.
    """
    if not first or not second:
        return 0.0
    left, right = _complete_parts(first, second, size)
    smaller = min(len(left), len(right))
    return len(left & right) / smaller if smaller else 0.0


def holds_more(first: Sequence[int], second: Sequence[int],
               size: int = SIGNATURE_SIZE) -> bool:
    """Whether the data behind signature ``first`` holds customers that ``second``'s does not,
    read where both samples are complete (as :func:`signature_overlap` reads them)."""
    left, right = _complete_parts(first, second, size)
    return bool(left - right)


def _complete_parts(first: Sequence[int], second: Sequence[int],
                    size: int) -> tuple[set[int], set[int]]:
    """The values of two signatures up to the smaller of their bounds, where both samples hold
    every customer of their data: a full sample (``size`` values) covers the hashes up to its
    largest, a shorter one is every customer."""
    def bound(values: Sequence[int]) -> float:
        return max(values) if len(values) >= size else math.inf

    limit = min(bound(first), bound(second)) if first and second else math.inf
    return {v for v in first if v <= limit}, {v for v in second if v <= limit}


def is_finished(artifact: ModelArtifact) -> bool:
    """True once the training step that made ``artifact`` finished: it writes the data
    signature last."""
    signature = artifact.metadata.get(SIGNATURE_KEY)
    return isinstance(signature, list) and bool(signature)


def data_problem(artifact: ModelArtifact, run: RunSettings) -> str | None:
    """Why ``artifact`` is not a model of this warehouse's data (None when it is)."""
    if not is_finished(artifact):
        return ("it has no data signature: its training step never finished, or it was "
                "trained before models recorded their data")
    signature = artifact.metadata[SIGNATURE_KEY]
    overlap = signature_overlap(signature, run.data_signature)
    if overlap < SAME_DATA_OVERLAP:
        return f"it was trained on other data ({overlap:.0%} of the customers match)"
    return None


def _settings_json(meta: dict[str, Any]) -> str:
    """The training settings as JSON, with the number of networks trained (what an automatic
    ``ensemble_size`` of 0 chose; absent from models saved before it was recorded)."""
    settings = meta.get("hyperparameters")
    if not isinstance(settings, dict):
        return json.dumps(settings)
    networks = {"networks": meta["networks"]} if "networks" in meta else {}
    return json.dumps({**settings, **networks}, sort_keys=True)


def settings_problem(artifact: ModelArtifact, run: RunSettings,
                     features: list[str]) -> str | None:
    """Which of this run's settings ``artifact`` does not fit (None when it fits)."""
    meta = artifact.metadata
    problems = [f"{key}: model {meta.get(key)}, run {value}"
                for key, value in expected_metadata(features, run).items()
                if key != "features" and meta.get(key) != value]
    if meta.get("features") != features:
        problems.insert(0, "feature list differs")
    return "; ".join(problems) or None


def retrain_reason(run: RunSettings, features: list[str]) -> str:
    """Why no saved model is reused (``clv_retrain: auto`` trains one), in a line: the newest
    saved model of this warehouse's data that fits the run's settings (else the newest of any
    settings: another job's horizon, say), and what of it differs from this run."""
    ours = [a for a in list_artifacts(run.model_dir)
            if not run.data_signature or data_problem(a, run) is None]
    if not ours:
        return f"clv_model_dir {run.model_dir} holds no model of this data"
    fitting = [a for a in ours if settings_problem(a, run, features) is None]
    newest = max(fitting or ours,
                 key=lambda a: (str(a.metadata.get("created_at") or ""), a.version))
    if not fitting:
        return (f"the newest model of this data, {newest.version}, has other settings "
                f"({settings_problem(newest, run, features)})")
    saved = int(newest.metadata.get("feature_definitions") or 1)
    if saved != FEATURE_DEFINITIONS:
        return (f"the newest model of this data, {newest.version}, was trained on feature "
                f"definitions {saved}; this version computes {FEATURE_DEFINITIONS}")
    return (f"the examples differ from those the newest model of this data, {newest.version}, "
            "was trained on (transactions added or corrected, another as-of date, or other "
            "training settings: clv_seed, clv_ensemble_size, the row caps)")


def belongs(artifact: ModelArtifact, run: RunSettings, features: list[str]) -> bool:
    """A finished model of this warehouse's data that fits this run's settings. Without a
    data signature in ``run`` (a caller outside the training step) every model is this data's."""
    if run.data_signature and data_problem(artifact, run) is not None:
        return False
    return settings_problem(artifact, run, features) is None


def reusable(artifact: ModelArtifact | None, run: RunSettings, features: list[str]) -> bool:
    if artifact is None:
        return False
    if run.data_signature and not is_finished(artifact):
        dbt_log(f"saved model {artifact.version} cannot be reused, retraining: its training "
                "step never finished (no data signature)")
        return False
    try:
        load_verified(run.model_dir, artifact.version, expected_metadata(features, run))
    except ModelMismatchError as error:
        dbt_log(f"saved model {artifact.version} cannot be reused, retraining: {error}")
        return False
    return True


def broken_artifacts(model_dir: Path) -> list[str]:
    """What is wrong with each model in ``model_dir`` that cannot even be listed: a metadata
    file that does not parse, or one half of the ONNX + metadata pair missing."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    problems = []
    for path in sorted(model_dir.glob(f"{PREFIX}*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            problems.append(f"metadata {path.name} is unreadable ({error})")
            continue
        if not path.with_suffix(".onnx").is_file():
            problems.append(f"ONNX file {path.with_suffix('.onnx').name} is missing next to "
                            f"{path.name}")
    problems.extend(f"metadata {path.with_suffix('.json').name} is missing next to {path.name}"
                    for path in sorted(model_dir.glob(f"{PREFIX}*.onnx"))
                    if not path.with_suffix(".json").is_file())
    return problems


def newest_compatible(run: RunSettings, features: list[str],
                      preferred: str | Sequence[str] | None = None) -> ModelArtifact:
    """For clv_retrain = never: the first of ``preferred`` (models retrained since, then the
    one scored with last, :func:`scored_version`, the last of them) that is saved and fits
    this run, else the newest saved model of this warehouse's data that fits, or a clear
    error. Models of other data (and unfinished ones) are never used, so a model
    trained elsewhere into the same directory (an experiment, another target) does not take
    over the predictions; the ``preferred`` model is this data's even when the customers have
    moved on since (a rolling window). A ``preferred`` model whose files are there but damaged
    (modified, truncated, unreadable metadata, one file of the pair gone) is an error, not a
    reason to score with another model: the predictions would move to an older model without
    a word."""
    order = [preferred] if isinstance(preferred, str) else list(preferred or ())
    preferred = order[-1] if order else None  # the one scored with last
    saved = list_artifacts(run.model_dir)
    broken = broken_artifacts(run.model_dir)
    if preferred is not None and all(a.version != preferred for a in saved):
        _refuse_if_damaged(run.model_dir, preferred, listed=False)  # files that cannot be listed
    if run.data_signature:
        # The model scored with last is this warehouse's whatever its customers now: a
        # source that keeps a rolling window (the last year) shares fewer of them each month.
        others = {a.version: problem for a in saved
                  if (problem := data_problem(a, run)) is not None
                  and not (a.version in order and is_finished(a))}
        saved = [a for a in saved if a.version not in others]
        if others and not saved:
            raise ModelMismatchError(
                f"clv_retrain is 'never' but none of the {len(others)} saved model(s) in "
                f"{run.model_dir} was trained on this warehouse's data ("
                + "; ".join(f"{version}: {problem}" for version, problem
                            in list(others.items())[-3:])
                + "); set clv_retrain to 'auto' to train one for this data")
    if not saved:
        if broken:
            raise ModelMismatchError(
                f"clv_retrain is 'never' but {run.model_dir} holds no usable model: "
                + "; ".join(broken[:3]) + "; set clv_retrain to 'auto' to train a new one")
        raise ModelMismatchError(
            f"clv_retrain is 'never' but {run.model_dir} holds no model; run once with "
            "clv_retrain 'auto' or 'always' to train one")
    problems = []
    newest_first = saved[::-1]
    rank = {version: i for i, version in enumerate(order)}
    for artifact in sorted(newest_first, key=lambda a: rank.get(a.version, len(order))):
        try:
            load_verified(run.model_dir, artifact.version, expected_metadata(features, run))
            return artifact
        except ModelMismatchError as error:
            if artifact.version == preferred:  # damage stops; other settings try the next
                _refuse_if_damaged(run.model_dir, preferred, listed=True)
            dbt_log(f"saved model {artifact.version} cannot be used: {error}")
            problems.append(str(error))
    raise ModelMismatchError(
        "clv_retrain is 'never' but no saved model fits this run (set clv_retrain to 'auto' to "
        "train one): " + " | ".join((problems + broken)[:3]))


def _refuse_if_damaged(model_dir: Path, version: str, listed: bool) -> None:
    """ModelMismatchError when model ``version``'s files are in ``model_dir`` but cannot be
    loaded intact (whatever the run's settings); nothing when it loads, or has no file there."""
    files = [Path(model_dir) / f"{PREFIX}{version}{suffix}" for suffix in (".onnx", ".json")]
    if not listed and not any(path.exists() for path in files):
        return
    try:
        load_verified(model_dir, version)
    except ModelMismatchError as error:
        raise ModelMismatchError(
            f"clv_retrain is 'never' but model {version}, the one scored with last, is "
            f"damaged: {error}; restore its files, or set clv_retrain to 'auto' to train a new "
            "one") from error


def current_version(registry: pd.DataFrame) -> str:
    """The model the registry marks current."""
    current = registry.loc[registry["is_current"].astype(bool), "model_version"]
    if current.empty:
        raise ModelMismatchError("clv_model_registry marks no current model; rebuild it")
    return str(current.iloc[0])


def registry_frame(model_dir: Path, current: str | None, run: RunSettings | None = None,
                   features: list[str] | None = None) -> pd.DataFrame:
    """One row per saved model, newest last; ``is_current`` marks the one this run uses.

    With ``run`` and ``features``: the models of this warehouse (:func:`belongs`) only."""
    rows = []
    for artifact in list_artifacts(model_dir):
        if (run is not None and features is not None and artifact.version != current
                and not belongs(artifact, run, features)):
            continue
        meta = artifact.metadata
        metrics_ = meta.get("validation_metrics") or {}
        rows.append({
            "model_version": artifact.version,
            "created_at": _utc_without_zone(meta.get("created_at")),
            "is_current": artifact.version == current,
            "horizon_days": meta.get("horizon_days"),
            "period_days": meta.get("period_days"),
            "sequence_periods": meta.get("n_periods"),
            "training_cutoffs": ",".join(meta.get("training_cutoffs") or []),
            "validation_cutoff": meta.get("validation_cutoff"),
            "training_rows": meta.get("training_rows"),
            "validation_rows": meta.get("validation_rows"),
            "validation_loss": meta.get("validation_loss"),
            "normalized_gini": metrics_.get("normalized_gini"),
            "aggregate_error": metrics_.get("aggregate_error"),
            "decile_mape": metrics_.get("decile_mape"),
            "btyd_level_correction": meta.get("btyd_level_correction"),
            "network_level_weight": meta.get("network_level_weight"),
            "level_log_sd": level.level_log_sd(meta),
            "is_seasonal_level": (meta.get("spend_level") or {}).get("seasonal"),
            "level_note": _joined((meta.get("spend_level") or {}).get("reason"),
                                  level.capped_correction_note(meta),
                                  level.level_log_sd_note(meta)),
            "btyd_fit_note": btyd_fit_note(meta.get("btyd_fits")),
            "feature_note": stale_features_note(meta),
            "settings": _settings_json(meta),
            "feature_count": len(meta.get("features") or []),
            "onnx_path": str(Path(model_dir) / artifact.onnx_path.name),
            "sha256": meta.get("sha256"),
        })
    # typed, so a column that is null for every model (no model has a note) is still text or
    # a flag in the warehouse, not a column of type NULL ("string" keeps a null a null on
    # pandas 2 too, where "str" writes the text "None")
    return pd.DataFrame(rows, columns=REGISTRY_COLUMNS).astype(
        {"btyd_level_correction": float, "network_level_weight": float, "level_log_sd": float,
         "is_seasonal_level": "boolean", "level_note": "string", "btyd_fit_note": "string",
         "feature_note": "string"})


def _joined(*notes: str | None) -> str | None:
    """The notes that are there, as one; None when there is none."""
    present = [note for note in notes if note]
    return "; ".join(present) if present else None


def _utc_without_zone(instant: str | None) -> pd.Timestamp:
    """A saved ISO instant as UTC without a time zone, as every timestamp of the public tables
    is (a value saved without an offset is UTC already)."""
    stamp = pd.Timestamp(instant)
    return stamp if pd.isna(stamp) or stamp.tzinfo is None else (
        stamp.tz_convert("UTC").tz_localize(None))


def btyd_fit_note(fits: Mapping[str, Any] | None) -> str | None:
    """How the BG/NBD fits at a model's cutoffs went, in words: maximum likelihood everywhere,
    or the cutoffs whose fit was degenerate and what was done (``clv.btyd``); None for a model
    saved before fits were checked."""
    if not fits:
        return None
    checked = {cutoff: fit for cutoff, fit in sorted(fits.items())
               if (fit.get("status") or "maximum_likelihood") != "maximum_likelihood"}
    if not checked:
        return f"maximum likelihood at all {len(fits)} cutoffs"
    return "; ".join(f"{cutoff}: {fit['status']} ({fit.get('reason') or 'degenerate'})"
                     for cutoff, fit in checked.items())


def build_key(warehouse: Any, this: Any) -> str:
    """Which build this is, as a short hash of the warehouse's location and the schema of
    ``this`` (no path is stored): two targets or schemas sharing a model directory differ.
    ``this`` is a dbt relation, or a table name (qualified or not: the default schema)."""
    name = str(this)
    schema = str(getattr(this, "schema", None) or (name.rsplit(".", 1)[0] if "." in name
                                                   else ""))
    identity = json.dumps([type(warehouse).__name__, warehouse.location(), schema.lower()])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _published(run: RunSettings) -> dict[str, str]:
    """The public tables (:data:`PUBLISHED_TABLES`) and where this build writes them, as
    ``clv_run_settings`` says (a folder's own schema included); empty when not known."""
    relations = run.published_relations
    if len(relations) != len(PUBLISHED_TABLES) or not all(relations):
        return {}
    return dict(zip(PUBLISHED_TABLES, relations, strict=True))


def scored_version(warehouse: Any, run: RunSettings) -> str | None:
    """The model of the history's latest scoring run (at its latest as-of date, the newest by
    ``scored_at``): what a daily ``clv_retrain: never`` job goes on scoring with, unless a
    model was retrained since (:func:`retrained_since`). A build at an older date (a backfill,
    a past date re-run with another model) publishes that date in clv_predictions, and must
    not hand the next day to its model. Without a readable history with rows, the model behind
    clv_predictions as the previous build left it; None when neither is known (or
    clv_predictions holds several models). Runs over another horizon than the run's are
    another job's (a weekly 90-day value beside a daily year's), as for the movements."""
    relations = _published(run)
    history, predictions = (relations.get(name) for name in PUBLISHED_TABLES[::-1])
    horizon = str(int(run.horizon_days))
    latest = newest_runs_sql("{relation}", horizon) + " limit 1"
    published = f"select distinct model_version from {{relation}} where horizon_days = {horizon}"
    for relation, sql in ((history, latest), (predictions, published)):
        if relation is None:
            continue
        try:
            table = warehouse.query(relation, sql)
        except Exception as error:  # noqa: BLE001 - a missing table looks different per engine
            dbt_debug(f"no model behind {relation} to prefer "
                      f"({str(error).splitlines()[0][:200]})")
            continue
        versions = {str(v) for v in table.column("model_version").to_pylist() if v}
        if versions:
            return versions.pop() if len(versions) == 1 else None
    return None


def _data_until(metadata: Mapping[str, Any]) -> str | None:
    """The latest training or validation cutoff of a model (YYYY-MM-DD): how recent its data
    is."""
    cutoffs = [str(c)[:10] for c in [*(metadata.get("training_cutoffs") or []),
                                     metadata.get("validation_cutoff")] if c]
    return max(cutoffs) if cutoffs else None


def retrained_since(model_dir: Path, latest: str, scored: set[str],
                    horizon_days: int) -> list[str]:
    """The models retrained since ``latest`` (the model of the history's latest run), newest
    first: created after it, scored in this warehouse's published tables (``scored``: so this
    target's, not another's sharing the directory) and trained on data at least as recent
    (their latest cutoff no earlier). A retrain (``clv_retrain: always`` or ``auto``) at an
    as-of date before the history's latest, such as the default as-of date after re-scores
    past the data's end, goes on scoring; a model trained at an earlier date, on older data,
    does not take over. :func:`newest_compatible` tries them in this order, then ``latest``,
    so one that does not fit the run's settings hands back to ``latest``. A model over another
    horizon than the run's ``horizon_days`` (another job's, sharing the history) is not one of
    them."""
    saved = {a.version: (str(a.metadata.get("created_at") or ""), _data_until(a.metadata),
                         a.metadata.get("horizon_days"))
             for a in list_artifacts(model_dir)}
    created, until, _ = saved.get(latest, ("", None, None))
    if until is None:
        return []
    newer = [(saved[v][0], v) for v in scored & saved.keys()
             if saved[v][0] > created and (saved[v][1] or "") >= until
             and saved[v][2] == horizon_days]
    return [version for _, version in sorted(newer, reverse=True)]


def published_versions(warehouse: Any, run: RunSettings) -> set[str] | None:
    """The model versions in clv_predictions and clv_predictions_history as the previous build
    left them, or None when either cannot be read (on the first build, or after an error) or
    where they are is not known: then nothing is pruned. Why is a line in the dbt log."""
    relations = _published(run)
    if not relations:
        return None
    versions: set[str] = set()
    for relation in relations.values():
        try:
            table = warehouse.query(relation, "select distinct model_version from {relation}")
        except Exception as error:  # noqa: BLE001 - a missing table looks different per engine
            dbt_debug(f"old models are kept this time: {relation} cannot be read "
                      f"({str(error).splitlines()[0][:200]})")
            return None
        versions |= {str(v) for v in table.column("model_version").to_pylist() if v}
    return versions


def retention(models: Iterable[ModelArtifact], keep_versions: set[str],
              keep_models: int) -> list[ModelArtifact]:
    """Which of this warehouse's ``models`` to delete: all but the ``keep_models`` most
    recently used (:func:`clv.artifacts.last_used`) and those in ``keep_versions`` (the model
    this run uses and every model behind clv_predictions and its history)."""
    ranked = sorted(models, key=lambda a: (artifacts.last_used(a),
                                           str(a.metadata.get("created_at", "")), a.version),
                    reverse=True)
    recent = {a.version for a in ranked[:keep_models]}
    return [a for a in ranked if a.version not in recent | keep_versions]


def beyond_retention(run: RunSettings, features: list[str],
                     keep_versions: set[str]) -> list[ModelArtifact]:
    """This warehouse's models that :func:`prune` deletes; none without a data signature (no
    customer has a purchase day). Models of other settings are never among them, nor models
    another build trained (another target or schema on the same data, or a larger warehouse's
    that this data is a copy of part of, sharing the directory: its predictions and history may
    need them), nor models of wholly other data. A model this build trained goes while any
    real share of its customers (:data:`OWN_DATA_OVERLAP`) is still in the data, however many
    are gone (a rolling window: after a few months most first purchases have moved; a deleted
    customer). A model saved before builds were told apart counts as this build's when it is
    of this data and holds no customer this data lacks (otherwise it may be a larger
    warehouse's, and stays)."""
    if not run.data_signature:
        return []

    def own(artifact: ModelArtifact) -> bool:
        trained_by = artifact.metadata.get(TRAINED_BY_KEY)
        if trained_by is not None:
            return trained_by == run.trained_by and signature_overlap(
                artifact.metadata[SIGNATURE_KEY], run.data_signature) >= OWN_DATA_OVERLAP
        return (data_problem(artifact, run) is None
                and not holds_more(artifact.metadata[SIGNATURE_KEY], run.data_signature))

    ours = [a for a in list_artifacts(run.model_dir)
            if is_finished(a) and settings_problem(a, run, features) is None and own(a)]
    return retention(ours, keep_versions, run.keep_models)


def prune(run: RunSettings, features: list[str], keep_versions: set[str]) -> list[str]:
    """Delete this warehouse's models beyond the retention (and their scoring runs); return the
    versions deleted."""
    removed = []
    for artifact in beyond_retention(run, features, keep_versions):
        files = artifacts.remove_artifact(run.model_dir, artifact.version)
        dbt_log(f"clv_keep_models {run.keep_models}: deleted model {artifact.version} "
                f"({len(files)} files with its scoring runs)")
        removed.append(artifact.version)
    return removed


def pin(model_dir: Path, build: str, versions: set[str]) -> None:
    """Record the models build ``build`` needs (its clv_predictions and history's, and the one
    it uses), so that no other build sharing the directory deletes them; the file is written
    only when the set changes. When the tables cannot be read, the caller adds to the
    build's previous pin instead of replacing it."""
    if not build:
        return
    path = Path(model_dir) / PINS_DIR / f"{build}.json"
    if pinned(model_dir, build) != versions or not path.is_file():
        artifacts.atomic_write_json(path, {"model_versions": sorted(versions)})


def pinned(model_dir: Path, build: str | None = None) -> set[str]:
    """Every model a build sharing ``model_dir`` recorded as needed (:func:`pin`), or only
    build ``build``'s; a pin file of a build that is gone keeps its models until the file is
    deleted."""
    versions: set[str] = set()
    pattern = f"{build}.json" if build else "*.json"
    for path in sorted((Path(model_dir) / PINS_DIR).glob(pattern)):
        try:
            versions |= set(json.loads(path.read_text(encoding="utf-8"))["model_versions"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            dbt_log(f"pin file {path.name} cannot be read ({error}): ignored")
    return versions


def _sign(artifact: ModelArtifact, run: RunSettings) -> None:
    """Save the data signature (and the build that trained it) in the metadata of the model
    this run trained: the last write of a training step, so a model carries it only once
    everything else is saved."""
    metadata = artifacts.read_metadata(artifact.metadata_path)
    if run.trained_by:
        metadata[TRAINED_BY_KEY] = run.trained_by
    metadata[SIGNATURE_KEY] = list(run.data_signature)
    artifacts.atomic_write_json(artifact.metadata_path, metadata)


def remove_unfinished(model_dir: Path, since: float) -> list[str]:
    """Delete the models a training step that started at ``since`` left without a data
    signature (it died or failed before its last write); returns their versions."""
    removed = []
    for artifact in list_artifacts(model_dir):
        if not is_finished(artifact) and artifacts.last_used(artifact) >= since:
            artifacts.remove_artifact(model_dir, artifact.version)
            removed.append(artifact.version)
    return removed


def train_and_list(warehouse: Any, examples: Any, customer_days: Any, run: RunSettings,
                   this: Any = None) -> pd.DataFrame:
    """The training step: under the model directory's lock, remove what interrupted writes
    left, train or reuse a model of this warehouse's data (:func:`clv.pipeline.training.
    train_or_reuse`), record the data it belongs to, delete models beyond ``clv_keep_models``,
    and return this warehouse's models with the one this run uses marked ``is_current``.

    A journal file marks a step in progress; one found at the start belongs to a step that
    died, and the files written since it started (models without a signature, temporary files)
    are deleted. A step that fails deletes its own unfinished model before it stops."""
    from clv.pipeline import training  # it builds on this module

    with artifacts.locked(run.model_dir, log=dbt_log):
        journal = Path(run.model_dir) / JOURNAL
        # a journal left under a real lock is a dead step's (a live one would hold the lock)
        died = journal.stat().st_mtime - 1 if journal.exists() and artifacts.LOCKS else None
        leftovers = artifacts.remove_leftovers(run.model_dir, interrupted_at=died)
        if died is not None:
            leftovers += remove_unfinished(run.model_dir, died)
        if leftovers:
            dbt_log(f"removed {len(leftovers)} file(s) or model(s) left by an interrupted "
                    "build: " + ", ".join(leftovers[:5]))
        artifacts.atomic_write_json(journal, {"pid": os.getpid(), "started": time.time()})
        started = journal.stat().st_mtime - 1
        try:
            frame = _train_and_list(training, warehouse, examples, customer_days, run, this)
        except BaseException:
            with contextlib.suppress(Exception):
                for version in remove_unfinished(run.model_dir, started):
                    dbt_log(f"deleted model {version}: the training step failed before it "
                            "was finished")
            raise
        finally:
            with contextlib.suppress(OSError):
                journal.unlink()
        return frame


def _train_and_list(training: Any, warehouse: Any, examples: Any, customer_days: Any,
                    run: RunSettings, this: Any) -> pd.DataFrame:
    run = dataclasses.replace(run, data_signature=data_signature(warehouse, customer_days),
                              trained_by=build_key(warehouse, this) if this is not None else "")
    features = model_features(warehouse.schema(examples), run)
    others = [a for a in list_artifacts(run.model_dir) if not belongs(a, run, features)]
    if others:
        dbt_log(f"{len(others)} saved model(s) in {run.model_dir} belong to other data or "
                "settings: not listed, reused, scored or deleted by this warehouse")
    published = published_versions(warehouse, run)
    preferred: list[str] = []
    if run.retrain == "never" and (latest := scored_version(warehouse, run)) is not None:
        preferred = [*retrained_since(run.model_dir, latest, published or set(),
                                      run.horizon_days), latest]
        if len(preferred) > 1:
            dbt_log(f"model {preferred[0]} was trained after {latest}, the model of the "
                    "history's latest scoring run, on data as recent: it goes on scoring "
                    "where it fits the run")
    current = current_version(training.train_or_reuse(warehouse, examples, run,
                                                      preferred=preferred))
    artifact = artifacts.load_artifact(run.model_dir, current)
    if not is_finished(artifact):
        _sign(artifact, run)
    artifacts.touch(artifact)
    pin(run.model_dir, run.trained_by, {current} | (published if published is not None
                                                    else pinned(run.model_dir, run.trained_by)))
    if published is not None:
        prune(run, features, published | {current} | pinned(run.model_dir))
    elif this is not None and (kept := beyond_retention(run, features, {current})):
        # On a first build there is nothing to delete yet, so nothing to say.
        dbt_log(f"clv_keep_models {run.keep_models}: {len(kept)} older model(s) kept this time, "
                f"as {' or '.join(PUBLISHED_TABLES)} cannot be read (see the dbt log)")
    return registry_frame(run.model_dir, current, run, features)
