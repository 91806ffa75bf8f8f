"""The ``clv-generate`` command line: generate a data set and write its frames to files."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from clv.synthetic.oracle import oracle
from clv.synthetic.settings import GeneratorSettings
from clv.synthetic.simulate import generate
from clv.synthetic.write import _FILE_SUFFIXES, write_frame


def _parser(prog: str = "clv-generate") -> argparse.ArgumentParser:
    """Command-line options of ``clv-generate`` (``clv generate``)."""
    defaults = GeneratorSettings()
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Generate synthetic e-commerce transactions with known ground truth.",
    )
    add = parser.add_argument
    add("--customers", type=int, default=defaults.n_customers, help="number of customers")
    add("--seed", type=int, default=defaults.seed, help="random seed")
    add("--start", type=date.fromisoformat, default=defaults.start_date, help="first day")
    add("--end", type=date.fromisoformat, default=defaults.end_date, help="last day (inclusive)")
    add("--closed-cohort", action="store_true", help="acquire everyone in the first 60 days")
    add("--seasonal-peak", action="store_true",
        help="a strong yearly peak in November and December (GeneratorSettings.seasonal_peak)")
    add("--days-between-orders", type=float,
        default=defaults.purchase_rate / defaults.purchase_shape,
        help="1 over the customers' mean purchase rate while active, in days "
             "(default: %(default)g)")
    add("--lifetime-days", type=float, default=defaults.dropout_rate / defaults.dropout_shape,
        help="1 over the customers' mean dropout rate, in days (default: %(default)g; "
             "near --days-between-orders, most customers buy once)")
    add("--order-value", type=float, default=defaults.order_value_median,
        help="median over customers of their mean order value (default: %(default)g)")
    add("--refund-share", type=float, default=defaults.refund_probability,
        help="mean share of orders refunded (default: %(default)g)")
    add("--no-bad-rows", action="store_true", help="omit the injected bad rows")
    add("--no-events", action="store_true", help="omit browsing events")
    add("--out", type=Path, required=True, help="transactions file (.csv or .parquet)")
    add("--customers-out", type=Path, help="customers file (.csv or .parquet)")
    add("--events-out", type=Path, help="events file (.csv or .parquet)")
    add("--oracle-out", type=Path, help="true expected spend per customer (.csv or .parquet)")
    add("--as-of", type=date.fromisoformat, help="as-of date of the oracle (default: --end)")
    add("--horizon-days", type=int, default=365, help="oracle horizon in days (default: 365)")
    return parser


def _settings_from_args(args: argparse.Namespace) -> GeneratorSettings:
    """Generator settings for parsed command-line options (ValueError when invalid)."""
    if args.no_events and args.events_out is not None:
        raise ValueError("--events-out cannot be combined with --no-events")
    if args.horizon_days < 1:
        raise ValueError("--horizon-days must be at least 1")
    outputs = (args.out, args.customers_out, args.events_out, args.oracle_out)
    for path in (path for path in outputs if path is not None):
        if path.suffix.lower() not in _FILE_SUFFIXES:
            raise ValueError(f"unsupported file extension in {path}: use .csv or .parquet")
    for option, value in (("--days-between-orders", args.days_between_orders),
                          ("--lifetime-days", args.lifetime_days),
                          ("--order-value", args.order_value)):
        if not value > 0:
            raise ValueError(f"{option} must be above 0")
    if not 0 < args.refund_share < 1:
        raise ValueError("--refund-share must lie between 0 and 1")
    defaults = GeneratorSettings()
    make = GeneratorSettings.seasonal_peak if args.seasonal_peak else GeneratorSettings
    return make(
        # the heterogeneity (the Gamma shapes) stays; the scales set the means
        purchase_rate=defaults.purchase_shape * args.days_between_orders,
        dropout_rate=defaults.dropout_shape * args.lifetime_days,
        order_value_median=args.order_value,
        refund_probability=args.refund_share,
        n_customers=args.customers,
        start_date=args.start,
        end_date=args.end,
        seed=args.seed,
        closed_cohort=args.closed_cohort,
        bad_rows=not args.no_bad_rows,
        with_events=not args.no_events,
    )


def main(argv: Sequence[str] | None = None, prog: str = "clv-generate") -> int:
    """Entry point of ``clv-generate``; returns the process exit code."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    try:
        settings = _settings_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    data = generate(settings)
    write_frame(data.transactions, args.out)
    if args.customers_out is not None:
        write_frame(data.customers, args.customers_out)
    if args.events_out is not None:
        write_frame(data.events, args.events_out)
    if args.oracle_out is not None:
        as_of = args.as_of or settings.end_date
        write_frame(oracle(data, as_of, args.horizon_days), args.oracle_out)
    print(
        f"clv-generate: {len(data.transactions):,} transaction rows "
        f"({sum(data.bad_row_counts.values()):,} bad), {settings.n_customers:,} customers, "
        f"{len(data.events):,} events in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
