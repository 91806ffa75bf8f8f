"""The whole prediction as one SQL query: ``int_clv__scores`` without Python at scoring time.

:func:`compile_scoring_sql` reads a saved model (ONNX file checked against its sha256) and the
BTYD fit of a scoring run, and returns a ``select`` over a relation of ``clv_scoring_examples``
rows whose columns are those of ``int_clv__scores`` (:data:`clv.pipeline.scoring.SCORE_COLUMNS`),
computed as :func:`clv.pipeline.scoring.predict` computes them:

1. inputs as the scoring step reads them: float columns rounded to 6 decimals half to even
   (:func:`clv.data.stable_floats`, pyarrow's rounding), the BTYD summary with nulls and NaN
   as 0 (``nan_to_num``), network inputs as float32 with nulls and non-finite values as the
   feature's fill value (:func:`clv.data.model_inputs`);
2. BG/NBD + Gamma-Gamma from the saved fit (:mod:`clv.sql_scoring.btyd`), appended as inputs;
3. the network, compiled from the ONNX graph (:mod:`clv.sql_scoring.graph`);
4. the spend level of :mod:`clv.level`: both totals over every row of the relation, each value
   rounded to micro-units as :func:`clv.level.micro_units` rounds it and summed exactly as
   decimals (an aggregate over the materialised scores, or a window where the engine has no
   materialised CTEs), or a scoring run's saved level (``saved_level``: any subset of its
   customers scores as in the run), and ``predicted_clv = network_clv * spend_factor``;
5. the distribution at that level (:func:`clv.level.leveled_distribution`, the same series and
   bounds), its quantiles ``exp(mu + sigma * ndtri((q - 1 + p) / p))`` (0 when
   ``q <= 1 - p``) and its variance ``predicted_clv^2 (exp(sigma^2) / p - 1)``, p at least
   ``predicted_clv`` over the model's spend bound times ``spend_factor``
   (:func:`clv.score.ziln_variance_numpy`).

:func:`write_scoring_sql` writes the query next to the ONNX file as
``clv_model_<version>.<dialect>.sql`` and returns its sha256. ``python -m clv.sql_scoring``
does the same from the command line.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import onnx

from clv.artifacts import atomic_write_bytes, load_artifact, sha256_bytes
from clv.config import ID_COLUMN, OUTPUT_NAMES
from clv.data import FeatureSpec
from clv.hybrid import BTYD_FEATURES, BTYD_INPUT_BOUND, BTYD_INPUTS, BTYDFit
from clv.level import (
    DOMINANT_SHARE,
    EXP_LIMIT,
    GROWTH_LIMIT,
    MICRO_BOUND,
    SERIES_BELOW,
    TINY,
    level_coefficients,
)
from clv.level import model_rate_factor as saved_rate_factor
from clv.pipeline.scoring import SCORE_COLUMNS, ScoringRun, find_run
from clv.score import DEFAULT_QUANTILES, quantile_column
from clv.score import spend_bound as score_spend_bound
from clv.sql_scoring.btyd import BTYDColumns, btyd_layers
from clv.sql_scoring.dialects import Dialect, dialect, literal
from clv.sql_scoring.graph import compile_graph
from clv.sql_scoring.nodes import EXP_BOUND, Layer, identifier
from clv.sql_scoring.special import OutsideSqlRange, ndtri_layers

# 2**52 / 10**6: above it x * 10**6 (clv.data.stable_floats' micro-units) is an integer.
_ALWAYS_INTEGRAL = 4503599627370496.0
# float32: the largest finite value, the value from which numpy rounds to infinity, and the
# value at or below which it rounds to 0 (half the smallest subnormal).
_FLOAT32_MAX = 3.4028234663852886e38
_FLOAT32_OVERFLOW = 3.4028235677973366e38
_FLOAT32_UNDERFLOW = 7.006492321624085e-46
# clv.level.micro_units: values rounded to 1e-6, 0 beyond clv.level.MICRO_BOUND.
_MICRO = 1e6


def stable_float(raw: str, scaled: str) -> str:
    """pyarrow's ``round(raw, 6)`` (half to even), given ``scaled = raw * 1e6``: unchanged when
    the scaled value is whole (or non-finite), the even neighbour on an exact tie."""
    return (f"case when {scaled} is null or not (abs({scaled}) < {literal(_ALWAYS_INTEGRAL)}) "
            f"or {scaled} = floor({scaled}) then {raw}\n"
            f"            when {scaled} - floor({scaled}) = 5.0e-1 "
            f"then 2.0e0 * floor({scaled} * 5.0e-1 + 5.0e-1) / {literal(_MICRO)}\n"
            f"            else round({scaled}) / {literal(_MICRO)} end")


def float32_input(value: str, sql: Dialect, fill: float = 0.0) -> str:
    """``value`` as onnxruntime reads it: float32, with nulls and values that are not finite
    as float32 as ``fill`` (a float32 value: the feature's fill value)."""
    return (f"case when {value} is null or not (abs({value}) < {literal(_FLOAT32_OVERFLOW)}) "
            f"then {literal(float(fill))}\n"
            f"            when abs({value}) <= {literal(_FLOAT32_UNDERFLOW)} then 0.0e0\n"
            f"            when {value} > {literal(_FLOAT32_MAX)} then {literal(_FLOAT32_MAX)}\n"
            f"            when {value} < {literal(-_FLOAT32_MAX)} then {literal(-_FLOAT32_MAX)}\n"
            f"            else cast(cast({value} as {sql.real}) as {sql.double}) end")


def _nan_to_num(value: str, sql: Dialect, low: float) -> str:
    """numpy's ``nan_to_num``: null and NaN as 0; clamped to [low, BTYD_INPUT_BOUND] (far
    beyond real data, and products stay finite), as clv.hybrid reads the inputs."""
    return (f"case when {value} is null or {sql.is_nan(value)} then 0.0e0 "
            f"when {value} > {literal(BTYD_INPUT_BOUND)} then {literal(BTYD_INPUT_BOUND)} "
            f"when {value} < {literal(low)} then {literal(low)} else {value} end")


def _micro_units(value: str, sql: Dialect) -> str:
    """``value`` in whole micro-units, rounded half away from zero (NaN as 0)."""
    return (f"cast(case when abs({value}) <= {literal(MICRO_BOUND)} then "
            f"(case when {value} < 0.0e0 then -1.0e0 else 1.0e0 end) * "
            f"floor(abs({value}) * {literal(_MICRO)} + 5.0e-1) else 0.0e0 end as {sql.decimal})")


def micro_total_sql(column: str, dialect_name: str) -> str:
    """SQL adding up ``column`` exactly in micro-units, as :func:`clv.level.micro_units` does."""
    return f"sum({_micro_units(column, dialect(dialect_name))})"


def _dominant(micro: str, total: str) -> str:
    """SQL: a value (micro-units) above a tenth of ``total`` (:mod:`clv.level` rule 7)."""
    return f"{micro} * {DOMINANT_SHARE} > {total}"


def dominant_sql(totals: dict[str, int], dialect_name: str) -> str:
    """One query over ``{relation}``: for each column of ``totals`` (column -> its total in
    micro-units), the sum (``<column>_dominant_sum``) and count (``<column>_dominant``) of its
    values above a tenth of that total (:mod:`clv.level` rule 7)."""
    sql = dialect(dialect_name)
    selected = []
    for column, total in totals.items():
        micro = _micro_units(column, sql)
        above = _dominant(micro, str(int(total)))
        selected += [f"sum(case when {above} then {micro} end) as {column}_dominant_sum",
                     f"count(case when {above} then 1 end) as {column}_dominant"]
    return f"select {', '.join(selected)} from {{relation}}"


__all__ = ["OutsideSqlRange", "compile_scoring_sql", "dominant_sql", "micro_total_sql",
           "sql_path", "write_scoring_sql"]


class _Query:
    """CTEs in order, each a select over the previous one."""

    def __init__(self, sql: Dialect) -> None:
        self.sql = sql
        self.ctes: list[tuple[str, str]] = []
        self.materialized: set[str] = set()

    @property
    def last(self) -> str:
        return self.ctes[-1][0]

    def add(self, name: str, columns: Sequence[str], source: str | None = None,
            materialized: bool = False) -> None:
        """``name`` as ``select <columns> from <source>`` (default: the previous CTE)."""
        listed = ",\n        ".join(columns)
        self.ctes.append((name, f"    select\n        {listed}\n    from {source or self.last}"))
        if materialized:
            self.materialized.add(name)

    def add_layers(self, name: str, layers: Sequence[Layer],
                   carried: Sequence[str] | None = None, keep: Sequence[str] = ()) -> None:
        """One CTE per layer, ``<name>_<n>``, each adding its columns to the previous one.

        With ``carried`` (the columns of the CTE before the first layer that the layers may
        read), every CTE after the first passes on only the columns a later layer reads, and
        ``keep`` (those read after the last layer), instead of all of them: the hidden units of
        a network's layers would otherwise add up past PostgreSQL's 1,664 columns per select
        (a three-network ensemble does)."""
        width = len(str(len(layers)))
        later_reads = _reads_after(layers)
        available = list(carried or ())
        for number, layer in enumerate(layers, start=1):
            passed = ["*"]
            if carried is not None and number > 1:
                wanted = later_reads[number - 1] | set(keep)
                passed = [column for column in available if column in wanted]
            columns = [*passed, *(f"{expression} as {column}" for column, expression in layer)]
            self.add(f"{name}_{number:0{width}d}", columns)
            self.ctes[-1] = (self.ctes[-1][0], self.ctes[-1][1] + self.sql.layer_fence)
            available = [*(passed if number > 1 else available), *(c for c, _ in layer)]

    def text(self) -> str:
        ctes = ",\n\n".join(
            f"{name} as {'materialized ' if name in self.materialized else ''}(\n{body}\n)"
            for name, body in self.ctes)
        return f"with\n\n{ctes}\n\nselect * from {self.last}\n"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _reads_after(layers: Sequence[Layer]) -> list[set[str]]:
    """Per layer, the identifiers that layer and the later ones read (a superset of the
    columns they read: function names and keywords are never columns)."""
    reads: list[set[str]] = []
    seen: set[str] = set()
    for layer in reversed(layers):
        for _, expression in layer:
            seen |= set(_IDENTIFIER.findall(expression))
        reads.append(set(seen))
    return reads[::-1]


def _names(columns: Iterable[str], prefix: str) -> dict[str, str]:
    """A distinct SQL identifier ``<prefix>_<column>`` for each source column."""
    names: dict[str, str] = {}
    for column in columns:
        base = f"{prefix}_{identifier(column)}"
        name, suffix = base, 1
        while name in names.values():
            suffix += 1
            name = f"{base}_{suffix}"
        names[column] = name
    return names


def _read_examples(query: _Query, spec: FeatureSpec, relation_sql: str,
                   float_columns: Iterable[str] | None) -> dict[str, str]:
    """CTEs reading the source columns as scoring does (rounded, then the BTYD summary as
    ``btyd_frequency``, ``btyd_recency``, ``btyd_age``, ``btyd_monetary``); returns the
    column holding each source column's stable value."""
    sql = query.sql
    source = [c for c in spec.features if c not in BTYD_FEATURES]
    source += [c for c in BTYD_INPUTS if c not in source]
    rounded = [c for c in source if float_columns is None or c in set(float_columns)]
    raw, scaled, stable = (_names(source, prefix) for prefix in ("raw", "scaled", "stable"))
    query.ctes.append(("scoring_examples", f"    select * from {relation_sql}"))
    query.add("raw_values", [f"cast({sql.quote(ID_COLUMN)} as {sql.text}) as customer_id",
                             *(f"cast({sql.quote(c)} as {sql.double}) as {raw[c]}"
                               for c in source)])
    if rounded:
        query.add_layers("scaled_values", [[
            (scaled[c], f"case when abs({raw[c]}) < 1.0e300 then {raw[c]} * {literal(_MICRO)} end")
            for c in rounded]])
    query.add("stable_values", ["customer_id", *(
        f"{stable_float(raw[c], scaled[c]) if c in rounded else raw[c]} as {stable[c]}"
        for c in source)])
    # The BTYD summary as clv.btyd reads it: finite, frequency and ages >= 0, recency <= T.
    frequency, recency, age, monetary = (stable[c] for c in BTYD_INPUTS)
    query.add("btyd_summary", ["*",
                               f"{_nan_to_num(frequency, sql, 0.0)} as btyd_frequency",
                               f"{_nan_to_num(age, sql, 0.0)} as btyd_age",
                               f"{_nan_to_num(monetary, sql, -BTYD_INPUT_BOUND)} as btyd_monetary",
                               f"{_nan_to_num(recency, sql, 0.0)} as btyd_recency_unclamped"])
    query.add_layers("btyd_inputs", [[("btyd_recency",
                                       "least(btyd_recency_unclamped, btyd_age)")]])
    return stable


def _network(query: _Query, model: onnx.ModelProto, spec: FeatureSpec,
             stable: dict[str, str]) -> None:
    """CTEs computing the network's outputs from float32 inputs (BTYD outputs included),
    ending in ``network_outputs``: customer_id, btyd_expected_spend, btyd_probability_alive,
    btyd_frequency, purchase_probability, network_clv, mu, sigma, log_no_purchase (from the
    probability when the model, saved by an earlier version, lacks that output)."""
    inputs = _names(spec.features, "input")
    # as model_inputs reads them: float32
    fill = {c: float(np.float32(v)) for c, v in zip(spec.static, spec.static_fill, strict=True)}
    query.add_layers("network_inputs", [[
        (inputs[c], float32_input(c if c in BTYD_FEATURES else stable[c], query.sql,
                                  fill.get(c, 0.0)))
        for c in spec.features]])
    periods = spec.n_periods
    sequence = np.empty((periods, len(spec.channels)), dtype=object)
    for channel, lags in enumerate(spec.sequence):
        for lag, column in enumerate(lags):  # lag 1 is the latest period, the last step
            sequence[periods - 1 - lag, channel] = inputs[column]
    graph = compile_graph(
        model, {"static": [inputs[c] for c in spec.static], "sequence": sequence},
        {name: f"network_{name}" for name in OUTPUT_NAMES}, prefix="net",
        dot_products=query.sql.dot_products)
    names = [name for name in OUTPUT_NAMES if name in graph.outputs]
    outputs = [graph.outputs[name][0] for name in names]
    kept = ["customer_id", "btyd_expected_spend", "btyd_probability_alive", "btyd_frequency"]
    query.add_layers("network", graph.layers, carried=[*kept, *inputs.values()],
                     keep=[*kept, *outputs])
    columns = dict(zip(names, outputs, strict=True))
    columns.setdefault("log_no_purchase", f"ln(greatest(1.0e0 - {columns[OUTPUT_NAMES[0]]}, "
                                          f"{literal(TINY)}))")
    query.add("network_outputs", [*kept, *(
        f"{columns[name]} as {name}" for name in OUTPUT_NAMES)])


def _leveled_distribution(query: _Query, model_rate_factor: float, shape: float) -> None:
    """CTEs adding ``leveled_probability`` and ``leveled_mu``
    (:func:`clv.level.leveled_distribution` with BG/NBD's ``shape`` r, the same series below
    ``SERIES_BELOW`` and the same bounds)."""
    p, alive = "purchase_probability", "btyd_probability_alive"
    series, tiny = literal(SERIES_BELOW), literal(TINY)

    def below_series(x: str, above: str, series_sql: str) -> str:
        return f"case when {x} > {series} then {above} else {series_sql} end"

    rate_factor = f"greatest(spend_factor, 0.0e0) / {literal(model_rate_factor)}"
    alive_share = (f"case when {alive} is null or {query.sql.is_nan(alive)} or "
                   f"abs({alive}) > 1.0e300 then 1.0e0 else {alive} end")
    q = "active_buying"
    # log(1 - q) from the network's log_no_purchase, (a - p) / a, as the Python side computes
    # it (exact where p nears 1 or nears a): (1 - p) - (1 - a) from a half on, else a + e^L - 1
    bounded = f"greatest(log_no_purchase, {literal(math.log(TINY))})"
    grown = below_series(f"abs({bounded})", f"exp({bounded}) - 1.0e0",
                         f"{bounded} * (1.0e0 + {bounded} / 2.0e0 + {bounded} * {bounded} / 6.0e0)")
    remaining = (f"(case when active_share >= 0.5e0 then exp({bounded}) - (1.0e0 - active_share) "
                 f"else active_share + {grown} end) / greatest(active_share, {tiny})")
    complement = (f"case when {q} < 1.0e0 or alive_share >= 1.0e0 "
                  f"then ln(greatest({remaining}, {tiny})) "
                  f"else ln(greatest(1.0e0 - {q}, {tiny})) end")
    gap = below_series(q, f"-({complement})",
                       f"{q} + {q} * {q} / 2.0e0 + {q} * {q} * {q} / 3.0e0")
    grown = below_series("gap_share", f"exp(least(gap_share, {literal(GROWTH_LIMIT)})) - 1.0e0",
                         "gap_share * (1.0e0 + gap_share / 2.0e0 "
                         "+ gap_share * gap_share / 6.0e0)")
    log_growth = below_series("scaled_growth", "ln(1.0e0 + scaled_growth)",
                              "scaled_growth * (1.0e0 - scaled_growth / 2.0e0 "
                              "+ scaled_growth * scaled_growth / 3.0e0)")
    # past GROWTH_LIMIT, e + log f + log(1 + e^-e (1/f - 1)), as the Python side computes it
    tail = (f"exp(-least(gap_share, {literal(EXP_LIMIT)})) "
            f"* (1.0e0 / greatest(rate_factor, {tiny}) - 1.0e0)")
    log_growth = (f"case when gap_share > {literal(GROWTH_LIMIT)} and rate_factor > 0.0e0 "
                  f"then gap_share + ln(greatest(rate_factor, {tiny})) "
                  f"+ ln(1.0e0 + {tail}) else {log_growth} end")
    bought = below_series("purchase_rate",
                          f"1.0e0 - exp(-least(purchase_rate, {literal(EXP_LIMIT)}))",
                          "purchase_rate * (1.0e0 - purchase_rate / 2.0e0 "
                          "+ purchase_rate * purchase_rate / 6.0e0)")
    shift = (f"ln(greatest(spend_factor, {tiny})) + ln(greatest({p}, {tiny})) "
             f"- ln(greatest(leveled_probability, {tiny}))")
    query.add_layers("leveled", [
        [("rate_factor", rate_factor), ("alive_share", alive_share),
         ("rate_shape", f"{literal(shape)} + btyd_frequency")],
        [("active_share", f"least(greatest(alive_share, {p}), 1.0e0)")],
        [("active_buying", f"{p} / greatest(active_share, {tiny})")],
        [("purchase_gap", gap)],
        [("gap_share", "purchase_gap / rate_shape")],
        [("scaled_growth", f"rate_factor * ({grown})")],
        [("purchase_rate", f"rate_shape * ({log_growth})")],
        [("leveled_probability",
          f"case when rate_factor = 1.0e0 then {p} else active_share * ({bought}) end")],
        [("leveled_mu", f"mu + ({shift})")],
    ])


def _quantiles(query: _Query, probability: str, mu: str) -> None:
    """CTEs adding the ZILN quantiles of ``probability`` and ``mu`` (and ``sigma``;
    :func:`clv.score.ziln_quantiles_numpy`: 0 unless q > 1 - p) as ``predicted_clv_pNN``."""
    positive = {q: f"{literal(q)} > 1.0e0 - {probability}" for q in DEFAULT_QUANTILES}
    levels = {q: f"level_p{round(q * 100):02d}" for q in DEFAULT_QUANTILES}
    query.add_layers("quantile_levels", [[
        (levels[q], (f"case when {positive[q]} then ({literal(q - 1.0)} + {probability})"
                     f" / {probability} else 5.0e-1 end")) for q in DEFAULT_QUANTILES]])
    normal = {q: f"normal_p{round(q * 100):02d}" for q in DEFAULT_QUANTILES}
    query.add_layers("normal_quantiles",
                     ndtri_layers({normal[q]: levels[q] for q in DEFAULT_QUANTILES}))
    query.add("leveled_scores", ["*", *(
        f"case when {positive[q]} then exp(least(greatest({mu} + sigma * {normal[q]}, "
        f"{literal(-EXP_BOUND)}), {literal(EXP_BOUND)})) else 0.0e0 end as "
        f"{quantile_column(q, 'predicted_clv')}" for q in DEFAULT_QUANTILES)])


def _spend_level(query: _Query, btyd_level_correction: float,
                 network_level_weight: float = 0.0, spend_factor: float | None = None) -> None:
    """CTEs adding ``spend_factor`` (:mod:`clv.level`: the correction times BG/NBD's total over
    the network's, plus the network's weight): exact sums of micro-units over every scored
    row, with each value above a tenth of its total counted as a tenth (rule 7). A given
    ``spend_factor`` (a scoring run's) is used as it is: any subset of that run's customers
    then scores as in the run."""
    if spend_factor is not None:
        query.add_layers("spend_level", [[("spend_factor", literal(spend_factor))]])
        return
    sql = query.sql
    micro = {"btyd": _micro_units("btyd_expected_spend", sql),
             "network": _micro_units("network_clv", sql)}
    totals = {f"{name}_micro_total": f"sum({value})" for name, value in micro.items()}
    dominant = {}
    for name, value in micro.items():
        above = _dominant(value, f"{name}_micro_total")
        dominant[f"{name}_dominant_sum"] = f"sum(case when {above} then {value} else 0 end)"
        dominant[f"{name}_dominant"] = f"sum(case when {above} then 1 else 0 end)"
    if sql.materialized:
        scores = query.last
        query.add("spend_totals", [f"{total} as {name}" for name, total in totals.items()])
        query.add("spend_dominant", [*(f"spend_totals.{name}" for name in totals),
                                     *(f"{value} as {name}" for name, value in dominant.items())],
                  source=f"{scores}\n    cross join spend_totals\n    group by "
                         + ", ".join(f"spend_totals.{name}" for name in totals))
        query.add("scores_with_totals", [f"{scores}.*", *(f"spend_dominant.{name}"
                                                           for name in [*totals, *dominant])],
                  source=f"{scores}\n    cross join spend_dominant")
    else:
        query.add_layers("scores_with_totals", [
            [(name, f"{total} over ()") for name, total in totals.items()],
            [(name, f"{value} over ()") for name, value in dominant.items()]])
    # clv.level.CappedTotal.capped: the others' total over 1 - dominant / 10.
    capped = {name: (f"case when {name}_micro_total > {name}_dominant_sum then "
                     f"cast({DOMINANT_SHARE} * ({name}_micro_total - {name}_dominant_sum) "
                     f"as {sql.double}) / cast(({DOMINANT_SHARE} - {name}_dominant) * {_MICRO} "
                     f"as {sql.double}) else cast({name}_micro_total as {sql.double}) / "
                     f"{literal(float(_MICRO))} end") for name in micro}
    weight = f" + {literal(network_level_weight)}" if network_level_weight else ""
    factor = (f"case when network_micro_total > 0 then {capped['btyd']} * "
              f"{literal(btyd_level_correction)} / ({capped['network']}){weight} else 1.0e0 end")
    query.add_layers("spend_level", [[("spend_factor", factor)]])


def scoring_query(model: onnx.ModelProto, spec: FeatureSpec, version: str, relation_sql: str,
                  sql: Dialect, btyd_fit: BTYDFit, horizon_days: int,
                  btyd_level_correction: float, scored_at: datetime | None = None,
                  float_columns: Iterable[str] | None = None,
                  network_level_weight: float = 0.0, model_rate_factor: float = 1.0,
                  spend_factor: float | None = None, spend_bound: float | None = None) -> str:
    """The scoring query for a loaded model (see :func:`compile_scoring_sql`); ``spend_bound``
    is the model's :func:`clv.score.spend_bound`."""
    query = _Query(sql)
    stable = _read_examples(query, spec, relation_sql, float_columns)
    # a one-time buyer's order value where Gamma-Gamma has none: the fit's own (the scored rows'
    # mean for a fit saved before it kept one)
    repeat_mean = (literal(btyd_fit.repeat_order_value)
                   if btyd_fit.repeat_order_value is not None else
                   "coalesce(avg(case when btyd_frequency > 0.0e0 and btyd_monetary > 0.0e0 "
                   "then btyd_monetary end) over (), 0.0e0)")
    query.add_layers("btyd", btyd_layers(
        btyd_fit, horizon_days,
        BTYDColumns("btyd_frequency", "btyd_recency", "btyd_age", "btyd_monetary"),
        repeat_mean))
    _network(query, model, spec, stable)
    query.add("network_scores", ["*"], materialized=query.sql.materialized)
    _spend_level(query, btyd_level_correction, network_level_weight, spend_factor)
    _leveled_distribution(query, model_rate_factor, btyd_fit.bgnbd.r)
    _quantiles(query, "leveled_probability", "leveled_mu")
    # the spend's variance, clv.score.ziln_variance_numpy: mean^2 (exp(sigma^2) / p - 1), a
    # purchase at least mean / bound likely (the amount expected at most at the spend bound at
    # the spend level)
    bounded = ("leveled_probability" if spend_bound is None else
               f"case when spend_factor > 0.0e0 then least(greatest(leveled_probability, "
               f"predicted_value / ({literal(spend_bound)} * spend_factor)), 1.0e0) "
               "else leveled_probability end")
    second = (f"exp(least(sigma * sigma, {literal(EXP_BOUND)})) / "
              f"greatest(variance_probability, 1.0e-300) - 1.0e0")
    variance = (f"case when leveled_probability > 0.0e0 then predicted_value * predicted_value "
                f"* greatest({second}, 0.0e0) else 0.0e0 end")
    query.add_layers("predicted", [[("predicted_value", "network_clv * spend_factor")],
                                   [("variance_probability", bounded)],
                                   [("predicted_variance", variance)]])
    values = {
        "customer_id": "customer_id",
        "purchase_probability": "leveled_probability",
        "network_clv": "network_clv",
        "predicted_clv": "predicted_value",
        **{name: name for name in (quantile_column(q, "predicted_clv")
                                   for q in DEFAULT_QUANTILES)},
        "predicted_clv_variance": "predicted_variance",
        "btyd_expected_spend": "btyd_expected_spend",
        "model_version": f"cast({sql.string(version)} as {sql.text})",
        "scored_at": sql.timestamp(scored_at) if scored_at else sql.utc_now,
    }
    query.add("final", [f"{values[name]} as {name}" for name in SCORE_COLUMNS])
    return query.text()


def _load_model(model_dir: Path, version: str) -> tuple[onnx.ModelProto, dict]:
    artifact = load_artifact(model_dir, version)
    data = artifact.onnx_path.read_bytes()
    if sha256_bytes(data) != artifact.metadata.get("sha256"):
        raise ValueError(f"{artifact.onnx_path.name} does not match the sha256 in "
                         f"{artifact.metadata_path.name}: modified or truncated")
    return onnx.load_from_string(data), artifact.metadata


def compile_scoring_sql(model_dir: str | Path, version: str, relation_sql: str,
                        dialect_name: str = "duckdb", *, btyd_fit: BTYDFit | None = None,
                        horizon_days: int | None = None,
                        btyd_level_correction: float | None = None,
                        as_of_date: str | None = None, scored_at: datetime | None = None,
                        float_columns: Iterable[str] | None = None,
                        network_level_weight: float | None = None,
                        model_rate_factor: float | None = None,
                        saved_level: bool = False,
                        scoring_run: str | Path | None = None) -> str:
    """The SQL computing ``int_clv__scores`` for the rows of ``relation_sql``.

    Args:
        model_dir: directory of ``clv_model_<version>.onnx`` and its metadata.
        version: the model version.
        relation_sql: what follows ``from``: a table name or a parenthesised query of
            ``clv_scoring_examples`` rows (every customer the spend level sums over).
        dialect_name: ``duckdb``, ``postgres`` or ``spark``.
        btyd_fit: BG/NBD + Gamma-Gamma at the as-of date; default the fit saved in the scoring
            run (``scoring_run``, else the run of ``version`` at ``as_of_date``).
        horizon_days: default the scoring run's, else the model's.
        btyd_level_correction: default the model's (1.0 when it has none) at the scoring
            run's date, else at ``as_of_date`` (:func:`clv.level.season_shift`), as scoring
            uses.
        as_of_date: ISO date of the scoring run to read the fit from.
        scored_at: the ``scored_at`` value; default the engine's clock (UTC) at run time.
        float_columns: the source columns of a floating type, which scoring rounds to 6
            decimals; default every column (the same for integers and decimals of up to 6
            places).
        network_level_weight: default the model's (0 when it has none), likewise.
        model_rate_factor: the purchase-rate factor inside the model's probability; default
            the model's (:func:`clv.level.model_rate_factor`), as scoring uses.
        saved_level: the spend level of the scoring run (and its ``scored_at`` unless
            given) instead of one summed over ``relation_sql``: the rows of any subset of that
            run's customers then score as ``clv_predictions`` holds them.
        scoring_run: the scoring run's file (``int_clv__scoring_run.scoring_run_file`` under
            ``model_dir``); default the one run of ``version`` at ``as_of_date``
            (:func:`clv.pipeline.scoring.find_run`: builds sharing the model directory that
            scored the same model at the same date must name theirs).
    """
    model_dir = Path(model_dir)
    model, metadata = _load_model(model_dir, version)
    run = None
    if btyd_fit is None or saved_level:
        if scoring_run is None and as_of_date is None:
            raise ValueError("give the scoring run, or as_of_date to find it, to read the fit "
                             "and the level from" if saved_level else
                             "give btyd_fit, or the scoring run (or as_of_date to find it) to "
                             "read it from")
        run = ScoringRun.load(scoring_run if scoring_run is not None
                              else find_run(model_dir, version, as_of_date))
        if run.model_version != version:
            raise ValueError(f"the scoring run {scoring_run} is of model {run.model_version}, "
                             f"not {version}")
    if btyd_fit is None:
        btyd_fit = run.btyd_fit
        horizon_days = run.horizon_days if horizon_days is None else horizon_days
    spend_factor = None
    if saved_level:
        spend_factor = run.level.spend_factor
        if model_rate_factor is None:
            model_rate_factor = run.level.model_rate_factor
            if model_rate_factor is None or not model_rate_factor > 0:
                # a run saved before the probability followed the level kept the network's
                # probability (SpendLevel.purchase_rate_factor 1): the query's rate factor,
                # the spend factor over this one, is then 1 as well
                if not spend_factor > 0:
                    raise ValueError(f"the scoring run of model {version} at {run.as_of_date} "
                                     "predates the leveled probability and has a spend factor "
                                     f"of {spend_factor}: the query cannot keep its "
                                     "probability; score it with clv.pipeline.scoring.predict")
                model_rate_factor = spend_factor
        scored_at = scored_at or datetime.fromisoformat(run.scored_at)
    if horizon_days is None:
        horizon_days = int(metadata["horizon_days"])
    scoring_date = run.as_of_date if run is not None else as_of_date
    saved_correction, saved_weight = level_coefficients(
        metadata, date.fromisoformat(str(scoring_date)[:10]) if scoring_date else None)
    if btyd_level_correction is None:
        btyd_level_correction = saved_correction
    if network_level_weight is None:
        network_level_weight = saved_weight
    if model_rate_factor is None:
        model_rate_factor = saved_rate_factor(metadata)
    return scoring_query(model, FeatureSpec.from_dict(metadata), version, relation_sql,
                         dialect(dialect_name), btyd_fit, horizon_days, btyd_level_correction,
                         scored_at, float_columns, network_level_weight, model_rate_factor,
                         spend_factor, score_spend_bound(metadata))


def sql_path(model_dir: str | Path, version: str, dialect_name: str) -> Path:
    """Where the compiled query of ``version`` for ``dialect_name`` is written."""
    return Path(model_dir) / f"clv_model_{version}.{dialect_name}.sql"


def write_scoring_sql(model_dir: str | Path, version: str, relation_sql: str,
                      dialect_name: str = "duckdb", *, btyd_fit: BTYDFit | None = None,
                      horizon_days: int | None = None,
                      btyd_level_correction: float | None = None,
                      as_of_date: str | None = None,
                      float_columns: Iterable[str] | None = None,
                      network_level_weight: float | None = None,
                      saved_level: bool = False,
                      scoring_run: str | Path | None = None) -> tuple[Path, str]:
    """Compile (arguments as :func:`compile_scoring_sql`; ``scored_at`` is the engine's clock,
    or with ``saved_level`` the scoring run's) and write the query next to the ONNX file,
    atomically; returns its path and sha256."""
    text = compile_scoring_sql(model_dir, version, relation_sql, dialect_name,
                               btyd_fit=btyd_fit, horizon_days=horizon_days,
                               btyd_level_correction=btyd_level_correction,
                               as_of_date=as_of_date, float_columns=float_columns,
                               network_level_weight=network_level_weight,
                               saved_level=saved_level, scoring_run=scoring_run)
    data = text.encode("utf-8")
    path = sql_path(model_dir, version, dialect_name)
    atomic_write_bytes(path, data)
    return path, sha256_bytes(data)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clv.sql_scoring",
        description="Write the scoring query of a saved model next to its ONNX file.")
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--version", required=True)
    run = parser.add_mutually_exclusive_group(required=True)
    run.add_argument("--as-of-date",
                     help="ISO date of the scoring run whose BTYD fit (and spend level) the "
                          "query uses: the model's one run at that date")
    run.add_argument("--run-file", type=Path,
                     help="the scoring run itself: a path, or one under --model-dir as "
                          "int_clv__scoring_run.scoring_run_file names it; where builds sharing "
                          "the model directory scored the model at the same date")
    parser.add_argument("--relation", required=True,
                        help="the relation of clv_scoring_examples rows (SQL after 'from')")
    parser.add_argument("--dialect", default="duckdb", choices=["duckdb", "postgres", "spark"])
    parser.add_argument("--level", default="saved", choices=["saved", "relation"],
                        help="saved (default): the scoring run's spend level, so any subset of "
                             "its customers scores as in clv_predictions; relation: summed over "
                             "the relation's rows, as a build does")
    args = parser.parse_args(argv)
    run_file = args.run_file
    if run_file is not None and not run_file.is_absolute() and not run_file.is_file():
        run_file = args.model_dir / run_file  # as int_clv__scoring_run names it
    try:
        path, digest = write_scoring_sql(args.model_dir, args.version, args.relation,
                                         args.dialect, as_of_date=args.as_of_date,
                                         saved_level=args.level == "saved",
                                         scoring_run=run_file)
    except (OSError, ValueError, KeyError) as error:  # a missing model or run, two runs
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(json.dumps({"path": str(path), "sha256": digest}))
    return 0
