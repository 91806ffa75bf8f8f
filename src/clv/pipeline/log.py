"""Log lines of the pipeline steps, in dbt's own log.

Two levels, as dbt itself uses them: :func:`dbt_log` is a line on the console and in the log
file (``logs/dbt.log``), at most a few per step; :func:`dbt_debug` is detail for the log file
only (every training epoch, every scoring batch). Outside dbt, ``dbt_log`` prints and
``dbt_debug`` says nothing.

:func:`logged_batches` reports a stream's progress: a ``dbt_debug`` line per batch with the
customers done and the rate, and one ``dbt_log`` line when the stream ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def _logger() -> Any:
    try:
        from dbt.adapters.events.logging import AdapterLogger
    except ImportError:  # pragma: no cover - only outside a dbt install
        return None
    return AdapterLogger("clv")


def dbt_log(message: str) -> None:
    """A line on dbt's console and in its log file."""
    logger = _logger()
    if logger is None:  # pragma: no cover - only outside a dbt install
        print(message)
        return
    logger.info(message)


def dbt_debug(message: str) -> None:
    """A line in dbt's log file only (dbt's debug level), for progress detail."""
    logger = _logger()
    if logger is not None:
        logger.debug(message)


def logged_batches(batches: Iterable[Any], total: int, done_verb: str,
                   unit: str = "customers", detail: Callable[[str], None] = dbt_debug,
                   summary: Callable[[str], None] = dbt_log) -> Iterator[Any]:
    """``batches`` (anything with ``num_rows``) passed through unchanged, with a ``detail``
    line per batch (``scored 16,384 of 100,000 customers (16%), 412,000 customers/s``) and a
    ``summary`` line when the stream ends (``scored 100,000 customers in 0.3 s, ...``)."""
    started = time.perf_counter()
    done = 0
    for batch in batches:
        done += batch.num_rows
        elapsed = time.perf_counter() - started
        share = f" ({done / total:.0%})" if total > 0 else ""
        detail(f"{done_verb} {done:,} of {total:,} {unit}{share}, {_rate(done, elapsed, unit)}")
        yield batch
    elapsed = time.perf_counter() - started
    summary(f"{done_verb} {done:,} {unit} in {elapsed:.1f} s ({_rate(done, elapsed, unit)})")


def _rate(done: int, seconds: float, unit: str) -> str:
    return f"{done / seconds:,.0f} {unit}/s" if seconds > 0 else "at once"
