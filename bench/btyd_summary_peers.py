"""Peers for the feature benchmark: the BTYD summary at one cutoff, two ways.

    python bench/btyd_summary_peers.py lifetimes PATH AS_OF
    python bench/btyd_summary_peers.py duckdb PATH AS_OF

Reads the generated transactions (all-text columns), keeps usable purchases on or before
AS_OF, and computes frequency, recency, T and monetary value per customer; prints the seconds
the summary itself took.
"""

from __future__ import annotations

import sys
import time

import duckdb


def _purchases_frame(path: str, as_of: str):
    return duckdb.sql(f"""
        select customer_id, try_cast(transacted_at as timestamp) as transacted_at,
               try_cast(amount as double) as amount
        from '{path}'
        where nullif(trim(customer_id), '') is not null
          and try_cast(transacted_at as timestamp) < date '{as_of}' + 1
          and try_cast(amount as double) > 0 and isfinite(try_cast(amount as double))
    """).df()


def lifetimes_summary(path: str, as_of: str) -> float:
    from lifetimes.utils import summary_data_from_transaction_data

    frame = _purchases_frame(path, as_of)
    started = time.perf_counter()
    summary = summary_data_from_transaction_data(
        frame, "customer_id", "transacted_at", monetary_value_col="amount",
        observation_period_end=as_of, freq="D",
    )
    seconds = time.perf_counter() - started
    print(f"customers={len(summary)}")
    return seconds


def duckdb_summary(path: str, as_of: str) -> float:
    connection = duckdb.connect()
    connection.register("purchases", _purchases_frame(path, as_of))
    started = time.perf_counter()
    summary = connection.sql(f"""
        with days as (
            select customer_id, cast(transacted_at as date) as day, sum(amount) as spend
            from purchases group by 1, 2
        ), ranked as (
            select *, min(day) over (partition by customer_id) as first_day from days
        )
        select customer_id,
               count(*) - 1 as frequency,
               date_diff('day', min(day), max(day)) as recency,
               date_diff('day', min(day), date '{as_of}') as t,
               coalesce(sum(spend) filter (where day > first_day)
                        / nullif(count(*) - 1, 0), 0) as monetary_value
        from ranked group by customer_id
    """).arrow().read_all()
    seconds = time.perf_counter() - started
    print(f"customers={summary.num_rows}")
    return seconds


if __name__ == "__main__":
    kind, path, as_of = sys.argv[1:4]
    run = {"lifetimes": lifetimes_summary, "duckdb": duckdb_summary}[kind]
    print(f"summary_seconds={run(path, as_of):.3f}")
