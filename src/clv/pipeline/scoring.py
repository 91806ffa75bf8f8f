"""The scoring steps: every customer at the as-of date through the current model, at the
spend level of :mod:`clv.level`. Four dbt models, in order:

1. ``int_clv__scoring_plan`` (:func:`plan`): the current model, checked against the run;
   BG/NBD + Gamma-Gamma fitted at the as-of date (on at most :data:`BTYD_FIT_ROWS`
   customers, a uniform md5 sample above that), whose outputs are network inputs; with
   ``clv_scoring_engine: sql``, the whole prediction compiled into one query
   (:mod:`clv.sql_scoring`), kept under ``runs/``.
2. ``int_clv__python_scores`` (:func:`score`): with onnxruntime, the scoring examples through
   the network in batches (:meth:`Warehouse.map_batches`: streamed through this process with
   bounded memory on DuckDB and PostgreSQL, on the executors on Spark), kept while their
   totals give the spend level, which is saved with the BTYD fit as the *scoring run*
   (``<clv_model_dir>/runs/clv_run_<as-of date>_<model version>.<build key>.json``); then
   read again at that level: ``predicted_clv = network_clv * spend_factor``, with the
   purchase probability and the quantiles of the leveled distribution
   (:func:`clv.level.leveled_distribution`). On Spark with ``sql``, the plan's query in
   stages. Empty when step 3 runs the query.
3. ``int_clv__scores`` (SQL): the plan's query, run by the warehouse as a dbt model, or the
   rows of step 2.
4. ``int_clv__scoring_run`` (:func:`record`): the scoring run as a table; for the query, the
   spend level it applied is read back from its scores' totals and saved here.

:func:`predict` repeats the computation for any set of customers from a saved scoring run, so
predictions outside dbt equal ``clv_predictions`` exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clv import hybrid, level
from clv.artifacts import (
    RUNS_DIR,
    atomic_write_bytes,
    atomic_write_json,
    json_safe,
    load_artifact,
    sha256_bytes,
)
from clv.config import CUTOFF_COLUMN, ID_COLUMN
from clv.data import iter_batches, stable_floats
from clv.pipeline.log import dbt_log, logged_batches
from clv.pipeline.registry import (
    build_key,
    current_version,
    load_current,
    model_features,
    stale_features_note,
)
from clv.pipeline.settings import RunSettings
from clv.score import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_QUANTILES,
    LoadedModel,
    load_verified,
    output_schema,
    quantile_column,
    score_batches,
    spend_bound,
    ziln_quantiles_numpy,
    ziln_variance_numpy,
)
from clv.warehouse import SAMPLE_BUCKETS, Warehouse

# BG/NBD + Gamma-Gamma at the as-of date is fitted on at most this many customers: above it, a
# uniform sample (by md5 of customer_id, the same on every run) estimates the four population
# parameters as well, and scoring memory no longer grows with the number of customers.
BTYD_FIT_ROWS = 200_000
# The name the compiled scoring query reads the scoring examples by (clv.sql_scoring).
EXAMPLES_TABLE = "clv_scoring_examples"

# BG/NBD columns the network scores carry to the spend level: its expected spend (the level's
# total), its probability that the customer is alive and the repeat purchases its posterior
# rate rests on (rule 6 of clv.level).
KEPT_BTYD = ("btyd_expected_spend", "btyd_probability_alive", "frequency")
# predicted_clv_variance: the variance of the customer's spend under the leveled ZILN, the
# amount of a purchase expected at most at the model's spend bound
# (clv.score.ziln_variance_numpy), which clv_segment_summary adds up into the range of a
# segment's total.
SCORE_COLUMNS = ("customer_id", "purchase_probability", "network_clv", "predicted_clv",
                 *(quantile_column(q, "predicted_clv") for q in DEFAULT_QUANTILES),
                 "predicted_clv_variance", "btyd_expected_spend", "model_version", "scored_at")


@dataclass(frozen=True)
class ScoringRun:
    """Everything a prediction depends on besides the model file and the customer's row."""

    model_version: str
    as_of_date: str  # ISO date of the scoring examples
    horizon_days: int
    customers: int  # customers scored
    btyd_fit: hybrid.BTYDFit  # BG/NBD + Gamma-Gamma at the as-of date
    btyd_fit_customers: int  # customers the fit was estimated on
    level: level.SpendLevel
    scored_at: str  # UTC, ISO format
    scoring_engine: str = "onnxruntime"  # clv_scoring_engine: onnxruntime | sql
    # With the sql engine: the query the warehouse ran (a file name under runs/) and its sha256
    scoring_sql: str | None = None
    scoring_sql_sha256: str | None = None
    # The build that scored (clv.pipeline.registry.build_key): builds that share a model
    # directory score the same model at the same date into runs of their own
    build_key: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "as_of_date": self.as_of_date,
                "horizon_days": self.horizon_days, "customers": self.customers,
                "btyd_fit": self.btyd_fit.to_dict(),
                "btyd_fit_customers": self.btyd_fit_customers,
                "level": self.level.to_dict(), "scored_at": self.scored_at,
                "scoring_engine": self.scoring_engine, "scoring_sql": self.scoring_sql,
                "scoring_sql_sha256": self.scoring_sql_sha256, "build_key": self.build_key}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ScoringRun:
        return cls(model_version=values["model_version"], as_of_date=values["as_of_date"],
                   horizon_days=int(values["horizon_days"]), customers=int(values["customers"]),
                   btyd_fit=hybrid.BTYDFit.from_dict(values["btyd_fit"]),
                   btyd_fit_customers=int(values["btyd_fit_customers"]),
                   level=level.SpendLevel.from_dict(values["level"]),
                   scored_at=values["scored_at"],
                   scoring_engine=values.get("scoring_engine", "onnxruntime"),
                   scoring_sql=values.get("scoring_sql"),
                   scoring_sql_sha256=values.get("scoring_sql_sha256"),
                   build_key=values.get("build_key", ""))

    @classmethod
    def from_table(cls, table: pa.Table) -> ScoringRun:
        """The run of the one row of ``int_clv__scoring_run`` (:func:`run_table`)."""
        if table.num_rows != 1:
            raise ValueError(f"int_clv__scoring_run has {table.num_rows} rows, expected one: "
                             "rebuild it")
        return cls.from_dict(json.loads(table.column("scoring_run")[0].as_py()))

    def save(self, model_dir: Path) -> Path:
        path = run_path(model_dir, self.model_version, self.as_of_date, self.build_key)
        atomic_write_json(path, json_safe(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | Path) -> ScoringRun:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def run_path(model_dir: Path, model_version: str, as_of_date: str, build_key: str) -> Path:
    """Where build ``build_key``'s scoring run of ``model_version`` at ``as_of_date`` is saved:
    ``runs/clv_run_<as-of date>_<version>.<build key>.json``."""
    if not build_key or "." in build_key or "/" in build_key:
        raise ValueError(f"a scoring run's build key is a name, got {build_key!r}")
    return (Path(model_dir) / RUNS_DIR
            / f"clv_run_{as_of_date}_{model_version}.{build_key}.json")


def find_run(model_dir: Path, model_version: str, as_of_date: str) -> Path:
    """The one scoring run of ``model_version`` at ``as_of_date`` under ``model_dir``; an error
    when there is none, or when several builds sharing the directory saved one (then name the
    run: ``int_clv__scoring_run.scoring_run_file`` of the build)."""
    folder = Path(model_dir) / RUNS_DIR
    runs = sorted(folder.glob(f"clv_run_{as_of_date}_{model_version}.*.json"))
    if not runs:  # saved before runs were named by their build
        runs = [path for path in [folder / f"clv_run_{as_of_date}_{model_version}.json"]
                if path.is_file()]
    if not runs:
        raise FileNotFoundError(f"no scoring run of model {model_version} at {as_of_date} "
                                f"under {Path(model_dir) / RUNS_DIR}")
    if len(runs) > 1:
        raise ValueError(f"{len(runs)} builds saved a scoring run of model {model_version} at "
                         f"{as_of_date} ({', '.join(p.name for p in runs)}): name the one "
                         "to read (int_clv__scoring_run.scoring_run_file of its build)")
    return runs[0]


def fit_btyd(warehouse: Warehouse, examples: Any, customers: int) -> tuple[hybrid.BTYDFit, int]:
    """BG/NBD + Gamma-Gamma fitted on the scoring examples (a uniform sample above
    BTYD_FIT_ROWS customers), and how many customers it was fitted on."""
    limit = None
    if customers > BTYD_FIT_ROWS:
        limit = math.ceil(SAMPLE_BUCKETS * BTYD_FIT_ROWS / customers)
    summary = warehouse.sample(examples, [ID_COLUMN, *hybrid.BTYD_INPUTS], key=[ID_COLUMN],
                               limit=limit)
    summary = stable_floats(summary.sort_by(ID_COLUMN))
    if summary.num_rows == 0:
        raise ValueError("clv_scoring_examples is empty: no customer has a usable transaction "
                         "on or before the as-of date; check clv_data_quality and clv_as_of_date")
    repeat = pc.and_(pc.greater(summary.column("frequency"), 0),
                     pc.greater(summary.column("monetary_value"), 0))
    if not pc.any(repeat).as_py():
        raise ValueError("no customer in clv_scoring_examples bought on two different days on or "
                         "before the as-of date, so BG/NBD + Gamma-Gamma (model inputs) cannot be "
                         "fitted: load a longer history (clv_transactions) or set a later "
                         "clv_as_of_date; or, if every customer id occurs once, "
                         + hybrid.ORDER_LEVEL_ID_HINT)
    return hybrid.fit(summary), summary.num_rows


def with_btyd(batches: Iterable[pa.RecordBatch], fit: hybrid.BTYDFit,
              horizon_days: int) -> Iterator[pa.RecordBatch]:
    """Scoring example batches as the network reads them: floats rounded
    (:func:`clv.data.stable_floats`) and the BTYD outputs of ``fit`` appended; the explanations
    step reads the same inputs. An empty batch (a reader may yield one) yields nothing."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        stable = stable_floats(batch)
        yield hybrid.with_btyd_features(stable, hybrid.predict(stable, horizon_days, fit))


def _network_scores(model: LoadedModel, batches: Iterable[pa.RecordBatch],
                    fit: hybrid.BTYDFit, horizon_days: int,
                    batch_rows: int) -> pa.RecordBatchReader:
    """customer_id, purchase_probability, network_clv, the ZILN's mu and sigma, model_version
    and the :data:`KEPT_BTYD` columns, in input order."""
    return score_batches(model, with_btyd(batches, fit, horizon_days), batch_size=batch_rows,
                         quantiles=(), passthrough=KEPT_BTYD, distribution=True)


@dataclass(frozen=True)
class NetworkScores:
    """Batch function of pass 1 (picklable, for :meth:`Warehouse.map_batches`): scoring
    example batches to network scores."""

    model: LoadedModel
    fit: hybrid.BTYDFit
    horizon_days: int
    batch_rows: int

    @property
    def schema(self) -> pa.Schema:
        return output_schema((), KEPT_BTYD, distribution=True)

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        yield from _network_scores(self.model, batches, self.fit, self.horizon_days,
                                   self.batch_rows)


def _score_schema() -> pa.Schema:
    strings = {"customer_id", "model_version"}
    return pa.schema([pa.field(name, pa.string() if name in strings else
                               pa.timestamp("us") if name == "scored_at" else pa.float64())
                      for name in SCORE_COLUMNS])


@dataclass(frozen=True)
class Leveled:
    """Batch function of pass 2 (picklable): network scores at the spend level (the expected
    value, the purchase probability and the quantiles, :mod:`clv.level`), stamped with the
    scoring time."""

    spend: level.SpendLevel
    scored_at: datetime
    rate_shape: float | None  # BG/NBD's r at the as-of date (clv.level rule 6)
    # the model's clv.score.spend_bound, before the spend level: bounds the amount's expected
    # value in the variance
    spend_bound: float | None = None

    def batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        schema = _score_schema()
        network = batch.column("network_clv").to_numpy(zero_copy_only=False)
        p, mu, sigma, no_purchase, alive, repeat = (
            batch.column(name).to_numpy(zero_copy_only=False) for name in
            ("purchase_probability", "mu", "sigma", "log_no_purchase", "btyd_probability_alive",
             "frequency"))
        p, mu = level.leveled_distribution(p, mu, self.spend, alive, repeat, self.rate_shape,
                                           no_purchase)
        predicted = level.apply(network, self.spend)
        columns = {
            "customer_id": batch.column("customer_id"),
            "purchase_probability": pa.array(p),
            "network_clv": batch.column("network_clv"),
            "predicted_clv": pa.array(predicted),
            "predicted_clv_variance": pa.array(ziln_variance_numpy(
                p, predicted, sigma, self.spend.leveled_bound(self.spend_bound))),
            "btyd_expected_spend": batch.column("btyd_expected_spend"),
            "model_version": batch.column("model_version"),
            "scored_at": pa.repeat(pa.scalar(self.scored_at, pa.timestamp("us")),
                                   batch.num_rows),
        }
        for q in DEFAULT_QUANTILES:
            columns[quantile_column(q, "predicted_clv")] = pa.array(
                ziln_quantiles_numpy(p, mu, sigma, q))
        return pa.RecordBatch.from_arrays([columns[name] for name in schema.names],
                                          schema=schema)

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield self.batch(batch)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ScoringPlan:
    """What the scoring steps share, decided once per run (``int_clv__scoring_plan``): the
    model, the as-of date, BG/NBD + Gamma-Gamma fitted there and, with
    ``clv_scoring_engine: sql``, the compiled query and where it runs."""

    model_version: str
    as_of_date: str  # ISO date of the scoring examples
    horizon_days: int
    customers: int
    btyd_fit: hybrid.BTYDFit
    btyd_fit_customers: int
    scoring_engine: str  # what computes the scores: onnxruntime | sql
    build_key: str  # the build that scores (clv.pipeline.registry.build_key)
    # sql: the query (None with onnxruntime), the file under runs/ that keeps it, its sha256
    scoring_sql: str | None = None
    scoring_sql_file: str | None = None
    scoring_sql_sha256: str | None = None
    # True: dbt runs the query as the SQL model int_clv__scores; False: the Python scoring
    # step does (onnxruntime, or the query in stages where the engine cannot plan it whole)
    in_sql_model: bool = False
    note: str | None = None  # why sql was asked for and onnxruntime scores, when it does

    @property
    def as_of(self) -> date:
        return date.fromisoformat(str(self.as_of_date)[:10])

    def to_table(self) -> pa.Table:
        row = {"model_version": self.model_version, "as_of_date": self.as_of_date,
               "horizon_days": self.horizon_days, "customers": self.customers,
               "btyd_fit": json.dumps(json_safe(self.btyd_fit.to_dict()), sort_keys=True),
               "btyd_fit_customers": self.btyd_fit_customers,
               "scoring_engine": self.scoring_engine, "build_key": self.build_key,
               "scoring_sql": self.scoring_sql, "scoring_sql_file": self.scoring_sql_file,
               "scoring_sql_sha256": self.scoring_sql_sha256,
               "in_sql_model": self.in_sql_model, "note": self.note}
        return pa.Table.from_pylist([row], schema=PLAN_SCHEMA)

    @classmethod
    def from_table(cls, table: pa.Table) -> ScoringPlan:
        rows = table.to_pylist()
        if len(rows) != 1:
            raise ValueError(f"int_clv__scoring_plan has {len(rows)} rows, expected one: "
                             "rebuild it")
        row = rows[0]
        if not row.get("build_key"):
            raise ValueError("int_clv__scoring_plan was built by an earlier version (it names no "
                             "build): rebuild it and what follows it")
        return cls(model_version=row["model_version"], as_of_date=str(row["as_of_date"]),
                   horizon_days=int(row["horizon_days"]), customers=int(row["customers"]),
                   btyd_fit=hybrid.BTYDFit.from_dict(json.loads(row["btyd_fit"])),
                   btyd_fit_customers=int(row["btyd_fit_customers"]),
                   scoring_engine=row["scoring_engine"], build_key=row["build_key"],
                   scoring_sql=row["scoring_sql"],
                   scoring_sql_file=row["scoring_sql_file"],
                   scoring_sql_sha256=row["scoring_sql_sha256"],
                   in_sql_model=bool(row["in_sql_model"]), note=row["note"])


PLAN_SCHEMA = pa.schema([
    ("model_version", pa.string()), ("as_of_date", pa.string()), ("horizon_days", pa.int64()),
    ("customers", pa.int64()), ("btyd_fit", pa.string()), ("btyd_fit_customers", pa.int64()),
    ("scoring_engine", pa.string()), ("build_key", pa.string()), ("scoring_sql", pa.string()),
    ("scoring_sql_file", pa.string()), ("scoring_sql_sha256", pa.string()),
    ("in_sql_model", pa.bool_()), ("note", pa.string())])


def plan(warehouse: Warehouse, examples: Any, registry: pd.DataFrame,
         run: RunSettings, build: str) -> ScoringPlan:
    """The scoring plan: the current model (checked against the run's features and settings),
    BG/NBD + Gamma-Gamma at the as-of date and, with ``clv_scoring_engine: sql``, the query
    compiled from both (:mod:`clv.sql_scoring`), written under ``runs/`` next to the scoring
    run. A fit outside what the query evaluates is scored by onnxruntime, and the plan's note
    says why. ``build``: the build's key (:func:`clv.pipeline.registry.build_key`), which
    names its scoring run's files."""
    version = current_version(registry)
    features = model_features(warehouse.schema(examples), run)
    model = load_current(run, version, features)
    stale = stale_features_note(model.metadata)
    if stale:
        dbt_log(f"warning: {stale}")
    extent = warehouse.query(examples, f'select max("{CUTOFF_COLUMN}") as as_of_date, '
                                       "count(*) as customers from {relation}").to_pylist()[0]
    customers = int(extent["customers"])
    fit, fit_customers = fit_btyd(warehouse, examples, customers)
    onnx_plan = ScoringPlan(model_version=version, as_of_date=str(extent["as_of_date"]),
                            horizon_days=run.horizon_days, customers=customers, btyd_fit=fit,
                            btyd_fit_customers=fit_customers, scoring_engine="onnxruntime",
                            build_key=build)
    shift = level.season_shift(model.metadata, onnx_plan.as_of)
    if shift.note:
        dbt_log(shift.note)
    if run.scoring_engine != "sql":
        return onnx_plan
    return with_query(warehouse, examples, onnx_plan, run, model)


def with_query(warehouse: Warehouse, examples: Any, scoring: ScoringPlan, run: RunSettings,
               model: LoadedModel) -> ScoringPlan:
    """``scoring`` with the query compiled from ``model`` and its BTYD fit, written under
    ``runs/``; unchanged but for its note when the fit is outside what the query evaluates."""
    from clv.sql_scoring import query as compiled  # it builds on this module

    dialect = warehouse.scoring_dialect
    if dialect is None:
        raise ValueError(f"clv_scoring_engine 'sql' is not available on {type(warehouse).__name__}"
                         "; set clv_scoring_engine to onnxruntime")
    floats = [f.name for f in warehouse.schema(examples) if pa.types.is_floating(f.type)]
    version = scoring.model_version
    correction, weight = level.level_coefficients(model.metadata, scoring.as_of)
    try:
        text = compiled.compile_scoring_sql(run.model_dir, version, EXAMPLES_TABLE, dialect,
                                            btyd_fit=scoring.btyd_fit,
                                            horizon_days=scoring.horizon_days,
                                            btyd_level_correction=correction,
                                            network_level_weight=weight,
                                            model_rate_factor=level.model_rate_factor(
                                                model.metadata),
                                            float_columns=floats)
    except compiled.OutsideSqlRange as reason:
        # A BG/NBD fit whose hypergeometric series SQL does not evaluate: this run is scored
        # by onnxruntime instead, and its plan and scoring run say so.
        note = f"clv_scoring_engine 'sql': {reason}; this run is scored by onnxruntime"
        dbt_log(note)
        return dataclasses.replace(scoring, note=note)
    path = run_path(run.model_dir, version, scoring.as_of_date,
                    scoring.build_key).with_suffix(f".{dialect}.sql")
    data = text.encode("utf-8")
    atomic_write_bytes(path, data)
    in_model = warehouse.plans_whole_scoring_query
    dbt_log(f"compiled the scoring query of model {version} ({len(data):,} bytes, {path}); "
            + ("int_clv__scores runs it" if in_model else
               "the scoring step runs it in stages"))
    return dataclasses.replace(scoring, scoring_engine="sql", scoring_sql=text,
                               scoring_sql_file=path.name, scoring_sql_sha256=sha256_bytes(data),
                               in_sql_model=in_model)


def score(warehouse: Warehouse, examples: Any, registry: pd.DataFrame, run: RunSettings,
          scoring: ScoringPlan, batch_rows: int = DEFAULT_BATCH_SIZE) -> Any:
    """The Python scoring step: every customer of ``clv_scoring_examples`` through the plan's
    model at the spend level, with onnxruntime (a stream with bounded memory, a few batches of
    ``batch_rows`` rows, on a local engine; a lazy DataFrame computed on the executors on a
    distributed one), or with the plan's query in stages (:meth:`Warehouse.compute`) where the
    engine cannot plan it whole. No rows when dbt runs the query as ``int_clv__scores``."""
    if scoring.in_sql_model:
        return pa.RecordBatchReader.from_batches(_score_schema(), [])
    if scoring.scoring_sql is not None:
        dbt_log(f"scoring {scoring.customers:,} customers with model {scoring.model_version} "
                "in SQL, in stages")
        started = time.perf_counter()
        result = warehouse.compute(examples, EXAMPLES_TABLE, scoring.scoring_sql)
        dbt_log(f"scored {scoring.customers:,} customers in SQL in "
                f"{time.perf_counter() - started:.1f} s")
        return result
    version, customers, fit = scoring.model_version, scoring.customers, scoring.btyd_fit
    features = model_features(warehouse.schema(examples), run)
    model = load_current(run, version, features)
    if version != current_version(registry):
        raise ValueError(f"int_clv__scoring_plan is for model {version}, the registry's current "
                         f"model is {current_version(registry)}: rebuild int_clv__scoring_plan")
    dbt_log(f"scoring {customers:,} customers with model {version}")
    scored_at = _now()

    # Pass 1: network scores, kept (a temporary file, or the engine's cache) while the totals
    # the spend level needs are added up. Where they stream through this process, each batch
    # is a line in the dbt log.
    network = NetworkScores(model, fit, scoring.horizon_days, batch_rows)
    scores = warehouse.map_batches(examples, network, network.schema, batch_rows,
                                   order_by=[ID_COLUMN])
    if not warehouse.distributed:
        scores = pa.RecordBatchReader.from_batches(
            scores.schema, logged_batches(scores, customers, "scored"))
    started = time.perf_counter()
    kept, totals = warehouse.totals(scores, ["btyd_expected_spend", "network_clv"])
    if warehouse.distributed:
        dbt_log(f"scored {customers:,} customers on the executors in "
                f"{time.perf_counter() - started:.1f} s")
    try:
        spend = level.from_totals(totals["btyd_expected_spend"], totals["network_clv"],
                                  *level.level_coefficients(model.metadata, scoring.as_of),
                                  level.model_rate_factor(model.metadata))
        path = _save_run(scoring, spend, scored_at, run.model_dir)
    except BaseException:
        warehouse.release(kept)
        raise
    dbt_log(f"spend level: factor {spend.spend_factor:.6f} (BG/NBD total "
            f"{spend.btyd_total:,.2f} x correction {spend.btyd_level_correction:.4f} / "
            f"network total {spend.network_total:,.2f} + network weight "
            f"{spend.network_level_weight:.4f}{spend.dominance_note()}); scoring run saved as "
            f"{path}")

    # Pass 2: the kept scores at the spend level (the kept data is freed once read).
    leveled = Leveled(spend, scored_at, fit.bgnbd.r, spend_bound(model.metadata))
    return warehouse.detach(warehouse.map_batches(kept, leveled, _score_schema(), batch_rows),
                            kept)


def _save_run(scoring: ScoringPlan, spend: level.SpendLevel, scored_at: datetime,
              model_dir: Path) -> Path:
    record = ScoringRun(model_version=scoring.model_version, as_of_date=scoring.as_of_date,
                        horizon_days=scoring.horizon_days, customers=scoring.customers,
                        btyd_fit=scoring.btyd_fit,
                        btyd_fit_customers=scoring.btyd_fit_customers, level=spend,
                        scored_at=scored_at.isoformat(), scoring_engine=scoring.scoring_engine,
                        scoring_sql=scoring.scoring_sql_file,
                        scoring_sql_sha256=scoring.scoring_sql_sha256,
                        build_key=scoring.build_key)
    return record.save(model_dir)


def _sql_spend_level(warehouse: Warehouse, scores: Any, metadata: dict[str, Any], as_of: date
                     ) -> tuple[level.SpendLevel, datetime | None]:
    """The spend level the compiled query applied, from the totals of its scores (added up in
    the warehouse exactly as the query adds them) and the model's level coefficients
    (``metadata``) at ``as_of``, and the query's scoring time."""
    from clv.sql_scoring import query as compiled

    dialect = warehouse.scoring_dialect
    if dialect is None:
        raise ValueError(f"{type(warehouse).__name__} has no SQL dialect to score in")
    totals = warehouse.query(scores, (
        f"select {compiled.micro_total_sql('btyd_expected_spend', dialect)} as btyd, "
        f"{compiled.micro_total_sql('network_clv', dialect)} as network, "
        "max(scored_at) as scored_at from {relation}")).to_pylist()[0]
    columns = {"btyd": "btyd_expected_spend", "network": "network_clv"}
    capped = warehouse.query(scores, compiled.dominant_sql(
        {column: int(totals[name] or 0) for name, column in columns.items()},
        dialect)).to_pylist()[0]
    spend = level.from_totals(*(level.CappedTotal(int(totals[name] or 0),
                                                  int(capped[f"{column}_dominant_sum"] or 0),
                                                  int(capped[f"{column}_dominant"] or 0))
                                for name, column in columns.items()),
                              *level.level_coefficients(metadata, as_of),
                              level.model_rate_factor(metadata))
    return spend, totals["scored_at"]


def record(warehouse: Warehouse, scores: Any, scoring: ScoringPlan,
           model_dir: Path) -> ScoringRun:
    """The scoring run behind ``scores`` (``int_clv__scores``), saved under ``runs/``: for
    scores the compiled query computed, the spend level it applied is read back from their
    totals and saved now; onnxruntime's was saved by the scoring step, and is checked to be
    the run that wrote ``scores`` (not one overwritten since, by another project with the
    same ``clv_model_dir``)."""
    path = run_path(model_dir, scoring.model_version, scoring.as_of_date, scoring.build_key)
    if scoring.scoring_sql is not None:
        # the plan verified the model file; the level needs only its metadata
        metadata = load_artifact(model_dir, scoring.model_version).metadata
        spend, scored_at = _sql_spend_level(warehouse, scores, metadata, scoring.as_of)
        path = _save_run(scoring, spend, scored_at or _now(), model_dir)
        dbt_log(f"spend level: factor {spend.spend_factor:.6f}{spend.dominance_note()}; "
                f"scoring run saved as {path}")
        return ScoringRun.load(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no scoring run {path}: build int_clv__scores first, with this run's "
            "clv_model_dir (a run that defers to another environment, --defer, reads that "
            "environment's int_clv__scores, whose scoring run lies in its own model directory: "
            "select int_clv__scores as well)")
    saved = ScoringRun.load(path)
    scored_at = warehouse.query(scores, "select max(scored_at) from {relation}").column(0)[0]
    if scored_at.as_py() is None or scored_at.as_py().isoformat() != saved.scored_at:
        raise ValueError(f"the scoring run {path} (scored at {saved.scored_at}) did not write "
                         f"int_clv__scores (scored at {scored_at.as_py()}): rebuild "
                         "int_clv__scores and what follows it")
    return saved


RUN_SCHEMA = pa.schema([
    ("model_version", pa.string()), ("as_of_date", pa.string()),
    ("scoring_engine", pa.string()), ("customers", pa.int64()),
    ("spend_factor", pa.float64()), ("scored_at", pa.string()),
    ("scoring_run_file", pa.string()), ("scoring_run", pa.string())])


def run_table(saved: ScoringRun) -> pa.Table:
    """``int_clv__scoring_run``: the scoring run as one row, its JSON in ``scoring_run``."""
    row = {"model_version": saved.model_version, "as_of_date": saved.as_of_date,
           "scoring_engine": saved.scoring_engine, "customers": saved.customers,
           "spend_factor": saved.level.spend_factor, "scored_at": saved.scored_at,
           "scoring_run_file": run_path(Path(), saved.model_version, saved.as_of_date,
                                        saved.build_key).as_posix(),
           "scoring_run": json.dumps(json_safe(saved.to_dict()), sort_keys=True)}
    return pa.Table.from_pylist([row], schema=RUN_SCHEMA)


def score_into(warehouse: Warehouse, examples: Any, registry: pd.DataFrame, run: RunSettings,
               table: str, batch_rows: int = DEFAULT_BATCH_SIZE) -> ScoringRun:
    """The scoring steps of a build in one call, outside dbt (benchmarks, tests): the plan,
    the Python scoring step written to ``table``, and its scoring run. The query that dbt runs
    as ``int_clv__scores`` (``clv_scoring_engine: sql`` where the engine plans it whole) is
    dbt's to run: that plan is refused here. The run is keyed as a build writing ``table``."""
    scoring = plan(warehouse, examples, registry, run, build_key(warehouse, table))
    if scoring.in_sql_model:
        raise ValueError("with clv_scoring_engine 'sql' on this engine, dbt runs the scoring "
                         "query as int_clv__scores")
    warehouse.write_table(table, score(warehouse, examples, registry, run, scoring, batch_rows))
    return record(warehouse, warehouse.relation(table), scoring, run.model_dir)


def predict(examples: Any, scoring_run: str | Path, model_dir: str | Path | None = None,
            batch_rows: int = DEFAULT_BATCH_SIZE) -> pa.Table:
    """Predictions for any set of rows of ``clv_scoring_examples`` (a pyarrow Table or
    RecordBatchReader, a pandas DataFrame, ...) from a saved scoring run: equal to the
    ``clv_predictions`` columns of those customers, ``scored_at`` the run's. The network runs
    in onnxruntime: for a run scored by the compiled query (``clv_scoring_engine: sql``) the
    values agree within its tolerance (1e-5 relative), not bit for bit. ``model_dir`` defaults
    to the directory that holds the run's ``runs/`` folder."""
    path = Path(scoring_run)
    record = ScoringRun.load(path)
    model = load_verified(Path(model_dir) if model_dir else path.parent.parent,
                         record.model_version)
    network = _network_scores(model, iter_batches(examples), record.btyd_fit,
                              record.horizon_days, batch_rows)
    leveled = Leveled(record.level, datetime.fromisoformat(record.scored_at),
                      record.btyd_fit.bgnbd.r, spend_bound(model.metadata))
    return pa.Table.from_batches([leveled.batch(batch) for batch in network],
                                 schema=_score_schema())
