"""Synthetic e-commerce transactions with known ground truth, and an oracle for future spend.

Modules: ``settings`` (:class:`GeneratorSettings`, :class:`GeneratedData`, validation,
seasonality profiles), ``simulate`` (customers, transactions, browsing events and bad rows;
:func:`generate`), ``oracle`` (true expected spend per customer), ``write`` (CSV and Parquet
files) and ``cli`` (the ``clv-generate`` command, ``python -m clv.synthetic.cli``).
"""

from clv.synthetic.oracle import ORACLE_COLUMNS, oracle
from clv.synthetic.settings import (
    BAD_ROW_KINDS,
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    PEAK_SEASON_MONTH_FACTORS,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    TRANSACTION_COLUMNS,
    GeneratedData,
    GeneratorSettings,
    daily_seasonality,
    hour_profile,
    month_profile,
    weekday_profile,
)
from clv.synthetic.simulate import format_cents, generate
from clv.synthetic.write import write_frame

__all__ = [
    "BAD_ROW_KINDS",
    "CUSTOMER_COLUMNS",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "ORACLE_COLUMNS",
    "PEAK_SEASON_MONTH_FACTORS",
    "SECONDS_PER_DAY",
    "SECONDS_PER_HOUR",
    "TRANSACTION_COLUMNS",
    "GeneratedData",
    "GeneratorSettings",
    "daily_seasonality",
    "format_cents",
    "generate",
    "hour_profile",
    "month_profile",
    "oracle",
    "weekday_profile",
    "write_frame",
]
