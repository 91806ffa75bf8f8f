"""Peers for the feature benchmark: the BTYD summary at one cutoff, two ways.

    python bench/btyd_summary_peers.py lifetimes PATH AS_OF
    python bench/btyd_summary_peers.py duckdb PATH AS_OF
    python bench/btyd_summary_peers.py ours DATABASE AS_OF CUSTOMER_DAYS_SQL
    python bench/btyd_summary_peers.py ours_parsed DATABASE AS_OF CUSTOMER_DAYS_SQL

`lifetimes` and `duckdb` read the generated transactions (all-text columns), parse them and
keep usable purchases on or before AS_OF before the clock starts; the clock then times
frequency, recency, T and monetary value per customer. `ours` times this project's own SQL
from the raw text: the compiled `int_clv__customer_days` (parsing, data-quality checks,
duplicates, daily sums) over the views of a database that `dbt run` built, then the four
columns exactly as `clv_customer_features` computes them, at the one cutoff AS_OF.
`ours_parsed` does the same from the parsed, classified rows, copied into memory before the clock
starts, like the other peers' input. Each prints the seconds its summary took.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

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


def project_summary(database: str, as_of: str, customer_days_sql: str,
                    from_parsed: bool = False) -> float:
    """This project's SQL for the four BTYD columns at one cutoff: from the raw text, or with
    ``from_parsed`` from the parsed, classified rows held in memory before the clock starts
    (where the lifetimes and DuckDB peers start theirs)."""
    customer_days = Path(customer_days_sql).read_text()
    if from_parsed:
        connection = duckdb.connect()
        catalog = Path(database).stem
        connection.execute(f"attach '{database}' as \"{catalog}\" (read_only)")
        connection.execute(f"""
            create table parsed as
            select * from "{catalog}"."main"."int_clv__transactions_classified"
        """)
        customer_days = customer_days.replace(
            f'"{catalog}"."main"."int_clv__transactions_classified"', "parsed")
    else:
        connection = duckdb.connect(database, read_only=True)
    started = time.perf_counter()
    summary = connection.sql(f"""
        with customer_days as ({customer_days}),
        aggregated as (
            select
                customer_id,
                min(activity_date) as first_activity_date,
                min(case when is_purchase_day then activity_date end) as first_purchase_date,
                max(case when is_purchase_day then activity_date end) as last_purchase_date,
                count(case when is_purchase_day then 1 end) as purchase_days,
                sum(case when is_purchase_day and not is_first_purchase_day
                         then gross_revenue else 0 end) as repeat_gross_revenue
            from customer_days
            where activity_date <= date '{as_of}'
            group by customer_id
        )
        select
            customer_id,
            greatest(purchase_days - 1, 0) as frequency,
            coalesce(date_diff('day', first_purchase_date, last_purchase_date), 0) as recency_days,
            date_diff('day', coalesce(first_purchase_date, first_activity_date), date '{as_of}')
                as t_days,
            case when purchase_days > 1 then repeat_gross_revenue / (purchase_days - 1) else 0 end
                as monetary_value
        from aggregated
    """).arrow().read_all()
    seconds = time.perf_counter() - started
    print(f"customers={summary.num_rows}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["lifetimes", "duckdb", "ours", "ours_parsed"])
    parser.add_argument("path", help="transactions file (lifetimes, duckdb) or DuckDB database")
    parser.add_argument("as_of", help="the cutoff, YYYY-MM-DD")
    parser.add_argument("customer_days_sql", nargs="?",
                        help="compiled int_clv__customer_days.sql (ours, ours_parsed)")
    args = parser.parse_args()
    if args.kind in ("ours", "ours_parsed"):
        if args.customer_days_sql is None:
            parser.error(f"{args.kind} needs CUSTOMER_DAYS_SQL")
        seconds = project_summary(args.path, args.as_of, args.customer_days_sql,
                                  from_parsed=args.kind == "ours_parsed")
    else:
        run = {"lifetimes": lifetimes_summary, "duckdb": duckdb_summary}[args.kind]
        seconds = run(args.path, args.as_of)
    print(f"summary_seconds={seconds:.3f}")


if __name__ == "__main__":
    main()
