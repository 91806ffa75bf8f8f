"""Settings and output types of the synthetic-data generator, and its seasonality profiles.

:class:`GeneratorSettings` determines a data set (equal settings give equal data) and is
validated on construction; :class:`GeneratedData` holds what
:func:`clv.synthetic.simulate.generate` returns. The month, weekday and hour-of-day profiles are
shared by the simulation and the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from numpy.typing import NDArray

SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400
HOURS_PER_DAY = 24

BAD_ROW_KINDS: tuple[str, ...] = (
    "missing_customer_id",
    "invalid_timestamp",
    "invalid_amount",
    "duplicate_transaction",
    "after_as_of_date",
)
TRANSACTION_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "customer_id",
    "transacted_at",
    "amount",
    "product_category",
)
CUSTOMER_COLUMNS: tuple[str, ...] = ("customer_id", "signup_date", "country", "age_band")
EVENT_COLUMNS: tuple[str, ...] = ("customer_id", "event_at", "event_type")
EVENT_TYPES: tuple[str, ...] = ("view", "add_to_cart", "wishlist")
# Month factors of the seasonal-peak case (:meth:`GeneratorSettings.seasonal_peak`): after
# normalisation November and December bring about 1.8 and 2.2 times an average month's
# purchases and July about two thirds, so a quarter over the year's end sees about 2.3 times
# the purchases of the quarter before it (the default profile: 1.6 times).
PEAK_SEASON_MONTH_FACTORS: tuple[float, ...] = (
    0.85, 0.80, 0.85, 0.85, 0.85, 0.75, 0.70, 0.75, 0.85, 1.15, 1.85, 2.25,
)


@dataclass(frozen=True)
class GeneratorSettings:
    """Everything that determines a generated data set (equal settings give equal data)."""

    # --- population and period -------------------------------------------------------------
    n_customers: int = 10_000  # number of customers simulated
    start_date: date = date(2021, 1, 1)  # first day of the period
    end_date: date = date(2023, 12, 31)  # last day of the period, inclusive
    seed: int = 42  # root of all random streams
    closed_cohort: bool = False  # True: everyone is acquired in the first closed_cohort_days
    closed_cohort_days: int = 60  # length of the acquisition window of a closed cohort
    acquisition_growth: float = 1.0  # open cohort: acquisitions/day at the end are (1 + g)x start
    bad_rows: bool = True  # mix known bad rows into the transactions
    bad_row_fraction: float = 0.005  # bad rows as a share of valid transaction rows (all kinds)
    with_events: bool = True  # also simulate browsing events

    # --- purchase frequency and lifetime (Pareto/NBD) ---------------------------------------
    purchase_shape: float = 0.75  # r of lambda ~ Gamma(r, rate=alpha); small r = heterogeneous
    purchase_rate: float = 36.0  # alpha in days; mean base rate r / alpha ~ 0.021 per day
    dropout_shape: float = 0.6  # s of mu ~ Gamma(s, rate=beta)
    dropout_rate: float = 450.0  # beta in days; mean dropout rate s / beta = 1 / 750 per day

    # --- order values -------------------------------------------------------------------------
    order_value_median: float = 55.0  # median over customers of the mean order value
    order_value_customer_sigma: float = 0.6  # log-sd of the customer mean order value
    order_value_order_sigma: float = 0.45  # log-sd of single orders around the customer mean

    # --- refunds ------------------------------------------------------------------------------
    refund_probability: float = 0.05  # mean share of orders that get refunded
    refund_concentration: float = 10.0  # a + b of the Beta distribution of customer refund shares
    full_refund_share: float = 0.7  # share of refunds that return the whole order value
    partial_refund_range: tuple[float, float] = (0.1, 0.9)  # uniform fraction of partial refunds
    refund_delay_days: tuple[float, float] = (1.0, 30.0)  # uniform delay of a refund after order

    # --- product categories -------------------------------------------------------------------
    categories: tuple[str, ...] = (
        "electronics",
        "fashion",
        "home",
        "beauty",
        "sports",
        "books",
        "toys",
        "grocery",
    )
    category_popularity: tuple[float, ...] = (0.16, 0.22, 0.14, 0.12, 0.10, 0.10, 0.07, 0.09)
    category_concentration: float = 3.0  # Dirichlet total of customer preferences; small = loyal

    # --- customer attributes ------------------------------------------------------------------
    countries: tuple[str, ...] = ("DE", "FR", "NL", "GB", "US")
    country_weights: tuple[float, ...] = (0.30, 0.20, 0.10, 0.20, 0.20)
    country_order_value_factors: tuple[float, ...] = (1.0, 0.95, 1.0, 1.1, 1.25)
    age_bands: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
    age_band_weights: tuple[float, ...] = (0.12, 0.27, 0.24, 0.18, 0.12, 0.07)
    age_band_rate_factors: tuple[float, ...] = (0.8, 1.1, 1.15, 1.0, 0.9, 0.8)
    signup_same_day_share: float = 0.6  # share of customers signing up on the acquisition day
    signup_max_lead_days: int = 60  # others sign up 1..this many days earlier (not before start)

    # --- seasonality (multiplicative, each profile normalised to mean 1) -----------------------
    month_factors: tuple[float, ...] = (
        0.95, 0.90, 0.95, 0.95, 0.95, 0.85, 0.80, 0.85, 0.95, 1.05, 1.45, 1.62,
    )  # January .. December, weighted by days per month when normalised
    weekday_effect: bool = True  # apply weekday_factors (otherwise all weekdays are equal)
    weekday_factors: tuple[float, ...] = (0.95, 0.95, 0.95, 1.0, 1.0, 1.05, 1.1)  # Mon .. Sun
    hour_factors: tuple[float, ...] = (
        0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.35, 0.60, 0.90, 1.10, 1.20, 1.30,
        1.40, 1.40, 1.30, 1.25, 1.30, 1.40, 1.55, 1.75, 1.85, 1.60, 1.10, 0.60,
    )  # hour of day 0 .. 23

    # --- browsing events ----------------------------------------------------------------------
    pre_purchase_events_per_order: float = 1.2  # Poisson mean of events shortly before an order
    pre_purchase_mean_hours: float = 20.0  # mean lead time of those events before the order
    browse_events_per_order: float = 1.2  # events without purchase, relative to the purchase rate
    pre_purchase_event_weights: tuple[float, ...] = (0.65, 0.30, 0.05)  # over EVENT_TYPES
    browse_event_weights: tuple[float, ...] = (0.80, 0.05, 0.15)  # over EVENT_TYPES

    def __post_init__(self) -> None:
        _validate_settings(self)

    @classmethod
    def seasonal_peak(cls, **overrides: object) -> GeneratorSettings:
        """Settings with a strong yearly peak in November and December
        (:data:`PEAK_SEASON_MONTH_FACTORS`); ``overrides`` set any other field."""
        return cls(**{"month_factors": PEAK_SEASON_MONTH_FACTORS, **overrides})

    @property
    def period_days(self) -> int:
        """Number of days in the period, both ends included."""
        return (self.end_date - self.start_date).days + 1

    @property
    def mean_refund_fraction_if_refunded(self) -> float:
        """Expected refunded fraction of an order's value, given that it is refunded."""
        low, high = self.partial_refund_range
        return self.full_refund_share + (1.0 - self.full_refund_share) * (low + high) / 2.0


@dataclass(frozen=True, eq=False)
class GeneratedData:
    """Output of :func:`generate`.

    transactions: all columns strings (``TRANSACTION_COLUMNS``), bad rows included; valid rows
        are ordered by time, each bad row directly follows the row it was derived from.
    customers: customer_id, signup_date (datetime64 at midnight), country, age_band.
    events: customer_id, event_at (datetime64[s]), event_type; empty when events are disabled.
    bad_row_counts: number of injected rows per kind in ``BAD_ROW_KINDS``.
    latent: one row per customer with the true parameters (see :func:`generate`).
    settings: the settings that produced the data.
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    events: pd.DataFrame
    bad_row_counts: dict[str, int]
    latent: pd.DataFrame
    settings: GeneratorSettings


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _validate_settings(settings: GeneratorSettings) -> None:
    """Raise ValueError for settings that cannot produce a data set."""
    checks: list[tuple[bool, str]] = [
        (settings.n_customers >= 1, "n_customers must be at least 1"),
        (settings.end_date >= settings.start_date, "end_date must not be before start_date"),
        (settings.closed_cohort_days >= 1, "closed_cohort_days must be at least 1"),
        (settings.acquisition_growth > -1.0, "acquisition_growth must exceed -1"),
        (0.0 <= settings.bad_row_fraction < 1.0, "bad_row_fraction must be in [0, 1)"),
        (min(settings.purchase_shape, settings.purchase_rate) > 0, "purchase Gamma must be > 0"),
        (min(settings.dropout_shape, settings.dropout_rate) > 0, "dropout Gamma must be > 0"),
        (settings.order_value_median > 0, "order_value_median must be positive"),
        (0.0 < settings.refund_probability < 1.0, "refund_probability must be in (0, 1)"),
        (settings.refund_concentration > 0, "refund_concentration must be positive"),
        (0.0 <= settings.full_refund_share <= 1.0, "full_refund_share must be in [0, 1]"),
        (
            0.0 < settings.partial_refund_range[0] <= settings.partial_refund_range[1] <= 1.0,
            "partial_refund_range must be an increasing pair in (0, 1]",
        ),
        (
            0.0 < settings.refund_delay_days[0] <= settings.refund_delay_days[1],
            "refund_delay_days must be an increasing positive pair",
        ),
        (len(settings.categories) >= 1, "at least one category is needed"),
        (
            len(settings.category_popularity) == len(settings.categories),
            "category_popularity must match categories",
        ),
        (
            len(settings.country_weights) == len(settings.countries)
            == len(settings.country_order_value_factors),
            "country weights and factors must match countries",
        ),
        (
            len(settings.age_band_weights) == len(settings.age_bands)
            == len(settings.age_band_rate_factors),
            "age band weights and factors must match age_bands",
        ),
        (0.0 <= settings.signup_same_day_share <= 1.0, "signup_same_day_share must be in [0, 1]"),
        (settings.signup_max_lead_days >= 1, "signup_max_lead_days must be at least 1"),
        (
            min(settings.pre_purchase_events_per_order, settings.browse_events_per_order) >= 0,
            "event rates must not be negative",
        ),
        (len(settings.month_factors) == 12, "month_factors needs 12 values"),
        (len(settings.weekday_factors) == 7, "weekday_factors needs 7 values"),
        (len(settings.hour_factors) == HOURS_PER_DAY, "hour_factors needs 24 values"),
        (
            min(settings.month_factors + settings.weekday_factors + settings.hour_factors) > 0,
            "seasonality factors must be positive",
        ),
        (
            len(settings.pre_purchase_event_weights) == len(EVENT_TYPES)
            and len(settings.browse_event_weights) == len(EVENT_TYPES),
            "event weights need one value per event type",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


# --------------------------------------------------------------------------------------------
# seasonality
# --------------------------------------------------------------------------------------------


def month_profile(settings: GeneratorSettings) -> NDArray[np.float64]:
    """Month factors (January first) scaled so that their day-weighted mean over a year is 1."""
    days_in_month = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)
    raw = np.asarray(settings.month_factors, dtype=np.float64)
    return raw / (np.sum(raw * days_in_month) / days_in_month.sum())


def weekday_profile(settings: GeneratorSettings) -> NDArray[np.float64]:
    """Weekday factors (Monday first) with mean 1; all ones without a weekday effect."""
    if not settings.weekday_effect:
        return np.ones(7)
    raw = np.asarray(settings.weekday_factors, dtype=np.float64)
    return raw / raw.mean()


def hour_profile(settings: GeneratorSettings) -> NDArray[np.float64]:
    """Hour-of-day factors (midnight first) with mean 1."""
    raw = np.asarray(settings.hour_factors, dtype=np.float64)
    return raw / raw.mean()


def daily_seasonality(days: NDArray[np.datetime64], settings: GeneratorSettings) -> NDArray:
    """Multiplicative purchase intensity of each calendar day (month x weekday factor)."""
    day_numbers = days.astype("datetime64[D]").astype(np.int64)
    months = days.astype("datetime64[M]").astype(np.int64) % 12
    weekdays = (day_numbers + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return month_profile(settings)[months] * weekday_profile(settings)[weekdays]


def _period_days_array(first: date, n_days: int) -> NDArray[np.datetime64]:
    """Consecutive calendar days starting at ``first``."""
    return np.datetime64(first, "D") + np.arange(n_days)
