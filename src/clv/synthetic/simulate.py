"""Simulation of synthetic e-commerce transactions with known ground truth.

Every customer follows a heterogeneous Pareto/NBD-like process:

* acquisition (the first purchase) happens at a time drawn over ``[start_date, end_date]``
  (growing over time and following the seasonal profile), or within the first
  ``closed_cohort_days`` days for a closed cohort;
* while alive, further purchases arrive as a Poisson process with intensity
  ``purchase_rate_per_day * seasonality(t)``, where the rate is Gamma(r, alpha) distributed
  across customers and seasonality combines month, weekday and hour-of-day factors;
* the lifetime after acquisition is Exponential(mu), with mu Gamma(s, beta) distributed;
* order values are lognormal around a customer-specific mean that is itself lognormal;
* a customer-specific share of orders (about 5 % on average) is refunded, fully or in part,
  1-30 days after the order, as a separate negative row.

The latent per-customer parameters are returned alongside the data, and
:func:`clv.synthetic.oracle.oracle` turns them into the true expected net spend over a future
horizon. Optionally, a known number of bad rows of five kinds is mixed into the transactions,
which are therefore all strings; the string columns are rendered here as well.

All randomness derives from ``GeneratorSettings.seed``: equal settings give identical frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from clv.synthetic.settings import (
    BAD_ROW_KINDS,
    EVENT_TYPES,
    HOURS_PER_DAY,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    GeneratedData,
    GeneratorSettings,
    _period_days_array,
    daily_seasonality,
    hour_profile,
)

# Replacement values used for the bad-row kinds that corrupt one field (cycled in row order).
MISSING_CUSTOMER_IDS: tuple[str | None, ...] = (None, "")
INVALID_TIMESTAMPS: tuple[str, ...] = (
    "not a date",
    "2023-13-45",
    "2022-02-30 12:00:00",
    "24:61:00",
)
INVALID_AMOUNTS: tuple[str | None, ...] = (None, "NaN", "abc", "inf")

_CHUNK_CUSTOMERS = 100_000  # customers per simulated block (fixed: output depends on settings only)
_RENDER_ROWS = 1_000_000  # rows rendered to strings at a time
_MAX_LIFETIME_DAYS = 36_525.0  # lifetimes are capped at 100 years to keep timestamps representable
_CUSTOMER_ID_WIDTH = 7  # digits after the 'C' prefix (widened automatically when needed)
_TRANSACTION_ID_WIDTH = 9  # digits after the 'T' prefix (widened automatically when needed)
_FUTURE_YEAR = 2099  # rows of kind after_as_of_date carry a clock-error date in this year
_STREAM_ACQUISITION = 0  # seed-sequence keys of the independent random streams
_STREAM_CUSTOMERS = 1
_STREAM_BAD_ROWS = 2


@dataclass(frozen=True, eq=False)
class _CustomerBlock:
    """Numeric simulation output for one block of customers (global customer indices)."""

    acquired_s: NDArray[np.int64]  # per customer: seconds since 1970
    death_s: NDArray[np.int64]
    purchase_rate: NDArray[np.float64]
    dropout_rate: NDArray[np.float64]
    mean_order_value: NDArray[np.float64]
    refund_probability: NDArray[np.float64]
    signup_day: NDArray[np.int64]  # days since 1970-01-01
    country: NDArray[np.int8]
    age_band: NDArray[np.int8]
    row_customer: NDArray[np.int64]  # per transaction row (orders, then refunds)
    row_s: NDArray[np.int64]
    row_cents: NDArray[np.int64]
    row_category: NDArray[np.int8]
    event_customer: NDArray[np.int64]  # per browsing event
    event_s: NDArray[np.int64]
    event_type: NDArray[np.int8]


@dataclass(frozen=True, eq=False)
class _TransactionRows:
    """Transaction rows in file order, numeric, with the markers needed to render strings."""

    customer: NDArray[np.int64]
    seconds: NDArray[np.int64]
    cents: NDArray[np.int64]
    category: NDArray[np.int8]
    kind: NDArray[np.int8]  # 0 for valid rows, 1 + index in BAD_ROW_KINDS for bad rows
    transaction_number: NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _normalised(weights: Sequence[float]) -> NDArray[np.float64]:
    """Weights scaled to sum to one."""
    array = np.asarray(weights, dtype=np.float64)
    return array / array.sum()


def _day_number(day: date) -> int:
    """Days since 1970-01-01."""
    return (day - date(1970, 1, 1)).days


def _hourly_intensity(settings: GeneratorSettings) -> NDArray[np.float64]:
    """Seasonal intensity of every hour of the period (mean about 1)."""
    days = _period_days_array(settings.start_date, settings.period_days)
    daily = daily_seasonality(days, settings)
    return (daily[:, None] * hour_profile(settings)[None, :]).ravel()


def _cumulative(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Running sum with a leading zero (the integral of a step function at its knots)."""
    return np.concatenate(([0.0], np.cumsum(values)))


# --------------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _TimeScale:
    """Cumulative seasonal purchase intensity (in effective days) over the hours of the period.

    ``knots[h]`` integrates the intensity over hours ``[0, h)``; ``guide[b]`` is the last knot at
    or below ``b * step`` and makes the inverse mapping a table look-up plus a short scan.
    """

    knots: NDArray[np.float64]
    guide: NDArray[np.int64]
    step: float


def _time_scale(settings: GeneratorSettings, refine: int = 8) -> _TimeScale:
    """Time scale of the period with ``refine`` guide bins per hour on average."""
    knots = _cumulative(_hourly_intensity(settings) / HOURS_PER_DAY)
    n_bins = refine * (knots.size - 1)
    step = float(knots[-1]) / n_bins
    guide = np.searchsorted(knots, np.arange(n_bins + 1) * step, side="right") - 1
    return _TimeScale(knots=knots, guide=guide.astype(np.int64), step=step)


def _scale_at(scale: _TimeScale, hours: NDArray[np.float64]) -> NDArray[np.float64]:
    """Cumulative intensity at times in hours since the start (linear within each hour)."""
    knots = scale.knots
    index = np.clip(np.floor(hours).astype(np.int64), 0, knots.size - 2)
    return knots[index] + (hours - index) * (knots[index + 1] - knots[index])


def _hours_at(scale: _TimeScale, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of :func:`_scale_at`: the time in hours where the cumulative intensity is reached."""
    knots, last = scale.knots, scale.knots.size - 2
    bins = np.clip((values / scale.step).astype(np.int64), 0, scale.guide.size - 1)
    index = np.minimum(scale.guide[bins], last)
    while True:
        move = (values >= knots[index + 1]) & (index < last)
        if not move.any():
            break
        index += move
    return index + (values - knots[index]) / (knots[index + 1] - knots[index])


def _rng(settings: GeneratorSettings, *key: int) -> np.random.Generator:
    """Independent random stream identified by ``key`` under the settings' seed."""
    return np.random.default_rng(np.random.SeedSequence(settings.seed, spawn_key=key))


def _acquisition_hours(settings: GeneratorSettings, rng: np.random.Generator) -> NDArray:
    """Sorted acquisition times in hours since the start of the period."""
    intensity = _hourly_intensity(settings)
    n_hours = intensity.size
    if settings.closed_cohort:
        weights = intensity[: min(n_hours, settings.closed_cohort_days * HOURS_PER_DAY)]
    else:
        position = (np.arange(n_hours) + 0.5) / n_hours
        weights = intensity * (1.0 + settings.acquisition_growth * position)
    knots = _cumulative(weights)
    targets = np.sort(rng.random(settings.n_customers)) * knots[-1]
    return np.interp(targets, knots, np.arange(knots.size, dtype=np.float64))


def _poisson_times(
    rng: np.random.Generator,
    counts: NDArray[np.int64],
    start: NDArray[np.float64],
    stop: NDArray[np.float64],
    scale: _TimeScale,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Owners and times (hours) of ``counts`` points per owner, placed with the seasonal density.

    ``start`` and ``stop`` are positions on the cumulative-intensity scale; points uniform on
    that scale and mapped back to hours form an inhomogeneous Poisson process.
    """
    owner = np.repeat(np.arange(counts.size), counts)
    position = start[owner] + rng.random(owner.size) * (stop - start)[owner]
    return owner, _hours_at(scale, position)


def _draw_categories(
    rng: np.random.Generator, preferences: NDArray[np.float64], owner: NDArray[np.int64]
) -> NDArray[np.int8]:
    """One category per row from the owner's preference vector (inverse CDF, column by column)."""
    cumulative = np.cumsum(preferences, axis=1)
    draws = rng.random(owner.size)
    category = np.zeros(owner.size, dtype=np.int8)
    for column in range(preferences.shape[1] - 1):
        category += draws > cumulative[owner, column]
    return category


def _to_seconds(start_s: int, hours: NDArray[np.float64]) -> NDArray[np.int64]:
    """Whole seconds since 1970 for times in hours since the start of the period."""
    return start_s + np.floor(hours * SECONDS_PER_HOUR).astype(np.int64)


def _simulate_block(
    settings: GeneratorSettings,
    acquired_hours: NDArray[np.float64],
    first_customer: int,
    scale: _TimeScale,
    rng: np.random.Generator,
) -> _CustomerBlock:
    """Simulate the customers whose acquisition times are given (one block)."""
    n = acquired_hours.size
    start_s = _day_number(settings.start_date) * SECONDS_PER_DAY
    end_s = start_s + settings.period_days * SECONDS_PER_DAY  # exclusive

    # latent parameters
    age_band = rng.choice(len(settings.age_bands), n, p=_normalised(settings.age_band_weights))
    country = rng.choice(len(settings.countries), n, p=_normalised(settings.country_weights))
    purchase_rate = rng.gamma(settings.purchase_shape, 1.0 / settings.purchase_rate, n)
    purchase_rate *= np.asarray(settings.age_band_rate_factors)[age_band]
    dropout_rate = rng.gamma(settings.dropout_shape, 1.0 / settings.dropout_rate, n)
    lifetime_days = np.minimum(rng.exponential(1.0, n) / dropout_rate, _MAX_LIFETIME_DAYS)
    death_hours = acquired_hours + lifetime_days * HOURS_PER_DAY
    mean_order_value = settings.order_value_median * np.exp(
        settings.order_value_customer_sigma * rng.standard_normal(n)
    )
    mean_order_value *= np.asarray(settings.country_order_value_factors)[country]
    refund_a = settings.refund_probability * settings.refund_concentration
    refund_b = (1.0 - settings.refund_probability) * settings.refund_concentration
    refund_probability = rng.beta(refund_a, refund_b, n)
    preferences = rng.dirichlet(
        settings.category_concentration * _normalised(settings.category_popularity), n
    )

    # signup on the acquisition day or somewhat earlier, never before the start
    acquired_s = _to_seconds(start_s, acquired_hours)
    lead = rng.integers(1, settings.signup_max_lead_days + 1, n)
    lead = np.where(rng.random(n) < settings.signup_same_day_share, 0, lead)
    signup_day = np.maximum(acquired_s // SECONDS_PER_DAY - lead, start_s // SECONDS_PER_DAY)

    # purchases: one at acquisition, then Poisson while alive and before the end
    stop_hours = np.minimum(death_hours, settings.period_days * HOURS_PER_DAY)
    scale_start = _scale_at(scale, acquired_hours)
    scale_stop = _scale_at(scale, stop_hours)
    repeat_counts = rng.poisson(purchase_rate * (scale_stop - scale_start))
    repeat_owner, repeat_hours = _poisson_times(rng, repeat_counts, scale_start, scale_stop, scale)
    order_owner = np.concatenate((np.arange(n), repeat_owner))
    repeat_s = np.minimum(_to_seconds(start_s, repeat_hours), end_s - 1)
    order_s = np.concatenate((acquired_s, repeat_s))
    sigma = settings.order_value_order_sigma
    value = mean_order_value[order_owner] * np.exp(
        sigma * rng.standard_normal(order_owner.size) - sigma * sigma / 2.0
    )
    order_cents = np.maximum(np.rint(value * 100.0).astype(np.int64), 1)
    order_category = _draw_categories(rng, preferences, order_owner)

    # refunds: a later negative row per refunded order, kept only when dated within the period
    refunded = np.flatnonzero(rng.random(order_owner.size) < refund_probability[order_owner])
    low, high = settings.partial_refund_range
    fraction = np.where(
        rng.random(refunded.size) < settings.full_refund_share,
        1.0,
        rng.uniform(low, high, refunded.size),
    )
    refund_cents = np.maximum(np.rint(fraction * order_cents[refunded]).astype(np.int64), 1)
    delay_low, delay_high = settings.refund_delay_days
    delay_s = np.floor(rng.uniform(delay_low, delay_high, refunded.size) * SECONDS_PER_DAY)
    refund_s = order_s[refunded] + delay_s.astype(np.int64)
    kept = refund_s < end_s
    refunded = refunded[kept]

    event_owner, event_s, event_type = _simulate_events(
        settings, rng, order_owner, order_s, signup_day, purchase_rate, scale_start, scale_stop,
        scale,
    )
    return _CustomerBlock(
        acquired_s=acquired_s,
        death_s=_to_seconds(start_s, death_hours),
        purchase_rate=purchase_rate,
        dropout_rate=dropout_rate,
        mean_order_value=mean_order_value,
        refund_probability=refund_probability,
        signup_day=signup_day,
        country=country.astype(np.int8),
        age_band=age_band.astype(np.int8),
        row_customer=first_customer + np.concatenate((order_owner, order_owner[refunded])),
        row_s=np.concatenate((order_s, refund_s[kept])),
        row_cents=np.concatenate((order_cents, -refund_cents[kept])),
        row_category=np.concatenate((order_category, order_category[refunded])),
        event_customer=first_customer + event_owner,
        event_s=event_s,
        event_type=event_type,
    )


def _simulate_events(
    settings: GeneratorSettings,
    rng: np.random.Generator,
    order_owner: NDArray[np.int64],
    order_s: NDArray[np.int64],
    signup_day: NDArray[np.int64],
    purchase_rate: NDArray[np.float64],
    scale_start: NDArray[np.float64],
    scale_stop: NDArray[np.float64],
    scale: _TimeScale,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int8]]:
    """Browsing events (owner, seconds, type index): some before orders, some without orders.

    Events before an order fall minutes to days earlier and are dropped when they would precede
    the signup day; the others follow the seasonal pattern while the customer is alive.
    """
    if not settings.with_events:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int8)
    start_s = _day_number(settings.start_date) * SECONDS_PER_DAY

    per_order = rng.poisson(settings.pre_purchase_events_per_order, order_owner.size)
    pre_owner = np.repeat(order_owner, per_order)
    lead_s = 60 + np.floor(
        rng.exponential(settings.pre_purchase_mean_hours * SECONDS_PER_HOUR, pre_owner.size)
    ).astype(np.int64)
    pre_s = np.repeat(order_s, per_order) - lead_s
    pre_type = rng.choice(
        len(EVENT_TYPES), pre_owner.size, p=_normalised(settings.pre_purchase_event_weights)
    )
    keep = pre_s >= signup_day[pre_owner] * SECONDS_PER_DAY

    browse_counts = rng.poisson(
        settings.browse_events_per_order * purchase_rate * (scale_stop - scale_start)
    )
    browse_owner, browse_hours = _poisson_times(rng, browse_counts, scale_start, scale_stop, scale)
    browse_s = np.minimum(
        _to_seconds(start_s, browse_hours), start_s + settings.period_days * SECONDS_PER_DAY - 1
    )
    browse_type = rng.choice(
        len(EVENT_TYPES), browse_owner.size, p=_normalised(settings.browse_event_weights)
    )
    return (
        np.concatenate((pre_owner[keep], browse_owner)),
        np.concatenate((pre_s[keep], browse_s)),
        np.concatenate((pre_type[keep], browse_type)).astype(np.int8),
    )


def _simulate_customers(settings: GeneratorSettings) -> list[_CustomerBlock]:
    """Simulate all customers block by block; customers are numbered in acquisition order."""
    acquired_hours = _acquisition_hours(settings, _rng(settings, _STREAM_ACQUISITION))
    scale = _time_scale(settings)
    blocks = []
    for block, first in enumerate(range(0, settings.n_customers, _CHUNK_CUSTOMERS)):
        rng = _rng(settings, _STREAM_CUSTOMERS, block)
        hours = acquired_hours[first : first + _CHUNK_CUSTOMERS]
        blocks.append(_simulate_block(settings, hours, first, scale, rng))
    return blocks


def _concat(blocks: list[_CustomerBlock], name: str) -> NDArray:
    """One field of all blocks, concatenated."""
    return np.concatenate([getattr(block, name) for block in blocks])


def _time_order(seconds: NDArray[np.int64]) -> NDArray[np.int64]:
    """Indices that sort ``seconds`` ascending, ties kept in their original order.

    Sorting the unique keys ``(seconds - min) * n + index`` is much faster than a stable argsort
    and equally deterministic.
    """
    n = seconds.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    key = seconds - seconds.min()
    if int(key.max()) >= (np.iinfo(np.int64).max - n) // n:
        return np.argsort(seconds, kind="stable")
    key *= n
    key += np.arange(n)
    key.sort()
    key %= n
    return key


# --------------------------------------------------------------------------------------------
# bad rows
# --------------------------------------------------------------------------------------------


def bad_row_plan(n_valid_rows: int, settings: GeneratorSettings) -> dict[str, int]:
    """Number of bad rows per kind: the fraction split evenly, at least one of each kind."""
    if not settings.bad_rows or n_valid_rows == 0:
        return dict.fromkeys(BAD_ROW_KINDS, 0)
    per_kind = max(1, round(settings.bad_row_fraction * n_valid_rows / len(BAD_ROW_KINDS)))
    return dict.fromkeys(BAD_ROW_KINDS, per_kind)


def _kind_code(kind: str) -> int:
    """Row marker of a bad-row kind (0 marks valid rows)."""
    return 1 + BAD_ROW_KINDS.index(kind)


def _assemble_rows(
    customer: NDArray[np.int64],
    seconds: NDArray[np.int64],
    cents: NDArray[np.int64],
    category: NDArray[np.int8],
    plan: dict[str, int],
    settings: GeneratorSettings,
) -> _TransactionRows:
    """Valid rows in time order with bad rows, each inserted right after its source row.

    Every bad row copies one valid row and changes exactly one thing: the customer, timestamp or
    amount is broken later when rendering, the row is repeated as is (same transaction id), or
    a purchase is moved past the end date. All but the repeats get fresh transaction ids.
    """
    order = _time_order(seconds)
    customer, seconds, cents, category = (a[order] for a in (customer, seconds, cents, category))
    n_valid = seconds.size
    rng = _rng(settings, _STREAM_BAD_ROWS)
    purchases = np.flatnonzero(cents > 0)
    sources, codes = [], []
    for kind in BAD_ROW_KINDS:
        pool = purchases if kind == "after_as_of_date" else np.arange(n_valid)
        count = plan[kind]
        sources.append(rng.choice(pool, count, replace=count > pool.size))
        codes.append(np.full(count, _kind_code(kind), dtype=np.int8))
    source = np.concatenate(sources).astype(np.int64)
    code = np.concatenate(codes)

    bad_seconds = seconds[source]
    after_end = code == _kind_code("after_as_of_date")
    # A far-future date, as a misconfigured clock writes: after any as-of date a run can use.
    future_s = _day_number(date(_FUTURE_YEAR, 1, 1)) * SECONDS_PER_DAY
    bad_seconds[after_end] = future_s + rng.integers(
        0, 365 * SECONDS_PER_DAY, int(after_end.sum())
    )

    def place(valid: NDArray, bad: NDArray) -> NDArray:
        return np.insert(valid, source + 1, bad)

    kind = place(np.zeros(n_valid, dtype=np.int8), code)
    origin = place(np.arange(n_valid), source)
    duplicate = kind == _kind_code("duplicate_transaction")
    number = np.cumsum(~duplicate)
    origin_of_duplicate = origin[duplicate]
    position = origin_of_duplicate + np.searchsorted(np.sort(source), origin_of_duplicate)
    number[duplicate] = number[position]
    return _TransactionRows(
        customer=place(customer, customer[source]),
        seconds=place(seconds, bad_seconds),
        cents=place(cents, cents[source]),
        category=place(category, category[source]),
        kind=kind,
        transaction_number=number,
    )


# --------------------------------------------------------------------------------------------
# rendering strings
# --------------------------------------------------------------------------------------------


def _strings_from_chars(
    chars: NDArray[np.uint8], keep: NDArray[np.bool_] | None = None
) -> pa.Array:
    """Arrow strings whose row i holds the (kept) ASCII bytes of ``chars[i]``; below 2 GB."""
    n, width = chars.shape
    if keep is None:
        data = np.ascontiguousarray(chars).reshape(-1)
        lengths = np.full(n, width, dtype=np.int64)
    else:
        data = chars[keep]
        lengths = keep.sum(axis=1)
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    return pa.Array.from_buffers(pa.string(), n, buffers)


def _digit_matrix(numbers: NDArray[np.int64], width: int) -> NDArray[np.uint8]:
    """ASCII digits of non-negative integers, zero-padded on the left to ``width`` columns."""
    numbers = np.asarray(numbers)
    small = numbers.size == 0 or int(numbers.max()) < 2**32
    remaining = numbers.astype(np.uint32 if small else np.uint64)
    digits = np.empty((width, numbers.size), dtype=np.uint8)
    for row in range(width - 1, -1, -1):
        digits[row] = remaining % 10
        remaining //= 10
    digits += ord("0")
    return digits.T


def _n_digits(value: int) -> int:
    """Number of decimal digits of a non-negative integer."""
    return len(str(max(int(value), 0)))


def format_codes(prefix: str, numbers: NDArray[np.int64], width: int) -> pa.Array:
    """Identifiers such as 'C0000123': an ASCII prefix plus numbers zero-padded to ``width``.

    Numbers with more digits than ``width`` are rendered in full (the width grows).
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size:
        width = max(width, _n_digits(int(numbers.max())))
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    chars = np.empty((numbers.size, head.size + width), dtype=np.uint8)
    chars[:, : head.size] = head
    chars[:, head.size :] = _digit_matrix(numbers, width)
    return _strings_from_chars(chars)


def format_cents(cents: NDArray[np.int64]) -> pa.Array:
    """Decimal strings with two decimals ('45.10', '-3.05', '0.99') for amounts in cents."""
    cents = np.asarray(cents, dtype=np.int64)
    magnitude = np.abs(cents)
    whole = magnitude // 100
    int_width = _n_digits(int(whole.max())) if cents.size else 1
    chars = np.empty((cents.size, int_width + 4), dtype=np.uint8)
    chars[:, 0] = ord("-")
    chars[:, 1 : 1 + int_width] = _digit_matrix(whole, int_width)
    chars[:, 1 + int_width] = ord(".")
    chars[:, 2 + int_width :] = _digit_matrix(magnitude % 100, 2)
    whole_digits = np.ones(cents.size, dtype=np.int64)
    for power in range(1, int_width):
        whole_digits += whole >= 10**power
    keep = np.ones(chars.shape, dtype=bool)
    keep[:, 0] = cents < 0
    keep[:, 1 : 1 + int_width] = np.arange(int_width) >= (int_width - whole_digits)[:, None]
    return _strings_from_chars(chars, keep)


def format_timestamps(seconds: NDArray[np.int64]) -> pa.Array:
    """'YYYY-MM-DD HH:MM:SS' strings for whole seconds since 1970-01-01."""
    stamps = pa.array(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]"))
    return stamps.cast(pa.string())


def _patch(
    array: pa.Array,
    positions: NDArray[np.int64],
    ranks: NDArray[np.int64],
    values: Sequence[str | None],
) -> pa.Array:
    """Replace the strings at ``positions`` with ``values[rank % len(values)]``."""
    if positions.size == 0:
        return array
    replacements = pa.array([values[rank % len(values)] for rank in ranks], type=pa.string())
    pick = np.arange(len(array))
    pick[positions] = len(array) + np.arange(positions.size)
    return pa.concat_arrays([array, replacements]).take(pa.array(pick))


def _render(n_rows: int, render: Callable[[int, int], pa.Array]) -> pa.ChunkedArray:
    """A string column rendered slice by slice (bounded temporary memory)."""
    chunks = [render(lo, min(n_rows, lo + _RENDER_ROWS)) for lo in range(0, n_rows, _RENDER_ROWS)]
    return pa.chunked_array(chunks, type=pa.string())


def customer_codes(customer_index: NDArray[np.int64], n_customers: int) -> pa.Array:
    """Customer identifiers ('C0000001' for index 0) with a width fixed by ``n_customers``."""
    width = max(_CUSTOMER_ID_WIDTH, _n_digits(n_customers))
    return format_codes("C", np.asarray(customer_index, dtype=np.int64) + 1, width)


def _customer_column(customer_index: NDArray[np.int64], n_customers: int) -> pa.ChunkedArray:
    """Customer identifiers for many rows, rendered slice by slice."""
    return _render(
        customer_index.size,
        lambda lo, hi: customer_codes(customer_index[lo:hi], n_customers),
    )


def _labels(names: Sequence[str], index: NDArray[np.int8]) -> pa.Array:
    """Strings ``names[index]`` as an Arrow array."""
    return pa.array(list(names), type=pa.string()).take(pa.array(index))


def _transactions_frame(rows: _TransactionRows, settings: GeneratorSettings) -> pd.DataFrame:
    """Render transaction rows as an all-string frame, breaking the bad rows' fields."""
    n = rows.kind.size
    id_width = max(_TRANSACTION_ID_WIDTH, _n_digits(int(rows.transaction_number.max())))
    broken = {
        kind: np.flatnonzero(rows.kind == _kind_code(kind))
        for kind in ("missing_customer_id", "invalid_timestamp", "invalid_amount")
    }

    def patched(
        array: pa.Array, lo: int, hi: int, kind: str, values: Sequence[str | None]
    ) -> pa.Array:
        positions = broken[kind]
        first, last = np.searchsorted(positions, [lo, hi])
        return _patch(array, positions[first:last] - lo, np.arange(first, last), values)

    columns = {
        "transaction_id": _render(
            n, lambda lo, hi: format_codes("T", rows.transaction_number[lo:hi], id_width)
        ),
        "customer_id": _render(
            n,
            lambda lo, hi: patched(
                customer_codes(rows.customer[lo:hi], settings.n_customers),
                lo, hi, "missing_customer_id", MISSING_CUSTOMER_IDS,
            ),
        ),
        "transacted_at": _render(
            n,
            lambda lo, hi: patched(
                format_timestamps(rows.seconds[lo:hi]),
                lo, hi, "invalid_timestamp", INVALID_TIMESTAMPS,
            ),
        ),
        "amount": _render(
            n,
            lambda lo, hi: patched(
                format_cents(rows.cents[lo:hi]), lo, hi, "invalid_amount", INVALID_AMOUNTS
            ),
        ),
        "product_category": _render(
            n, lambda lo, hi: _labels(settings.categories, rows.category[lo:hi])
        ),
    }
    return pa.table(columns).to_pandas()


# --------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------


def _customers_frame(blocks: list[_CustomerBlock], settings: GeneratorSettings) -> pd.DataFrame:
    """Customer attributes, one row per customer in identifier order."""
    signup_s = _concat(blocks, "signup_day") * SECONDS_PER_DAY
    table = pa.table(
        {
            "customer_id": _customer_column(np.arange(signup_s.size), settings.n_customers),
            "signup_date": pa.array(signup_s.astype("datetime64[s]")),
            "country": _labels(settings.countries, _concat(blocks, "country")),
            "age_band": _labels(settings.age_bands, _concat(blocks, "age_band")),
        }
    )
    return table.to_pandas()


def _events_frame(blocks: list[_CustomerBlock], settings: GeneratorSettings) -> pd.DataFrame:
    """Browsing events ordered by time."""
    seconds = _concat(blocks, "event_s")
    order = _time_order(seconds)
    seconds = seconds[order]
    customer = _concat(blocks, "event_customer")[order]
    event_type = _concat(blocks, "event_type")[order]
    n = seconds.size
    table = pa.table(
        {
            "customer_id": _customer_column(customer, settings.n_customers),
            "event_at": pa.array(seconds.astype("datetime64[s]")),
            "event_type": _render(n, lambda lo, hi: _labels(EVENT_TYPES, event_type[lo:hi])),
        }
    )
    return table.to_pandas()


def _latent_frame(blocks: list[_CustomerBlock], settings: GeneratorSettings) -> pd.DataFrame:
    """True per-customer parameters (see :func:`generate`)."""
    refund_probability = _concat(blocks, "refund_probability")
    mean_refund_fraction = refund_probability * settings.mean_refund_fraction_if_refunded
    mean_order_value = _concat(blocks, "mean_order_value")
    customer = _customer_column(np.arange(refund_probability.size), settings.n_customers)
    frame = pa.table({"customer_id": customer}).to_pandas()
    frame["acquired_at"] = _concat(blocks, "acquired_s").astype("datetime64[s]")
    frame["death_at"] = _concat(blocks, "death_s").astype("datetime64[s]")
    frame["purchase_rate_per_day"] = _concat(blocks, "purchase_rate")
    frame["dropout_rate_per_day"] = _concat(blocks, "dropout_rate")
    frame["mean_order_value"] = mean_order_value
    frame["refund_probability"] = refund_probability
    frame["mean_refund_fraction"] = mean_refund_fraction
    frame["mean_net_order_value"] = mean_order_value * (1.0 - mean_refund_fraction)
    return frame


def generate(settings: GeneratorSettings | None = None) -> GeneratedData:
    """Simulate transactions, customers, browsing events and the latent truth.

    The latent frame has one row per customer: customer_id, acquired_at (time of the first
    purchase), death_at (end of the active life; may lie far beyond the period, lifetimes are
    capped at 100 years), purchase_rate_per_day (lambda, multiplied by the seasonality),
    dropout_rate_per_day (mu), mean_order_value (expected gross value of an order),
    refund_probability (chance that an order gets refunded), mean_refund_fraction (expected
    refunded share of an order's value) and mean_net_order_value
    (= mean_order_value * (1 - mean_refund_fraction)).
    """
    settings = settings or GeneratorSettings()
    blocks = _simulate_customers(settings)
    customers = _customers_frame(blocks, settings)
    latent = _latent_frame(blocks, settings)
    events = _events_frame(blocks, settings)
    seconds = _concat(blocks, "row_s")
    plan = bad_row_plan(seconds.size, settings)
    rows = _assemble_rows(
        _concat(blocks, "row_customer"),
        seconds,
        _concat(blocks, "row_cents"),
        _concat(blocks, "row_category"),
        plan,
        settings,
    )
    del blocks, seconds
    return GeneratedData(
        transactions=_transactions_frame(rows, settings),
        customers=customers,
        events=events,
        bad_row_counts=dict(plan),
        latent=latent,
        settings=settings,
    )
