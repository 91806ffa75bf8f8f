"""One customer far above the rest: the spend level with and without rule 7 of clv.level.

    python bench/bench_wholesaler.py [--retail-file invoices.csv]

Builds the public retail invoices (the accuracy benchmark's retail protocol: as-of 2011-06-09,
91-day horizon) as they are, and with one generated wholesaler added (3,923 orders of 150
items at 2.00 over the file's year, at random times), then compares, on the holdout, the
wholesaler's prediction and the other customers' total with what they spent. The spend factor
the plain totals would give (every customer counted in full) is recomputed from the same
build's scores and the scoring run's coefficients, so the two rules are compared on one
network.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from bench_accuracy import RETAIL_FILE, build, retail
from common import OUT_DIR

WHOLESALER = "W-1"
ORDERS, ITEMS, PRICE = 3923, 150, 2.0


def with_wholesaler(source: Path) -> Path:
    frame = pd.read_csv(source, dtype=str)
    times = pd.to_datetime(frame.InvoiceDate, format="%m/%d/%Y %H:%M")
    rng = np.random.default_rng(0)
    stamps = np.sort(rng.uniform(times.min().value, times.max().value, ORDERS))
    orders = pd.DataFrame({
        "InvoiceNo": [f"W{i:05d}" for i in range(ORDERS)],
        "InvoiceDate": [pd.Timestamp(int(t)).strftime("%m/%d/%Y %H:%M") for t in stamps],
        "CustomerID": WHOLESALER, "Quantity": str(ITEMS), "UnitPrice": f"{PRICE:.2f}"})
    for column in frame.columns.difference(orders.columns):
        orders[column] = frame[column].iloc[0]
    path = OUT_DIR / "retail_wholesaler.csv"
    pd.concat([frame, orders[frame.columns]], ignore_index=True).to_csv(path, index=False)
    return path


def holdout_spend(path: Path, as_of: str, horizon_days: int) -> pd.Series:
    """Net spend per customer id in the horizon after the as-of date."""
    frame = pd.read_csv(path, dtype=str)
    times = pd.to_datetime(frame.InvoiceDate, format="%m/%d/%Y %H:%M")
    start = pd.Timestamp(as_of) + timedelta(days=1)
    inside = (times >= start) & (times < start + timedelta(days=horizon_days))
    amounts = frame.Quantity.astype(float) * frame.UnitPrice.astype(float)
    return amounts[inside].groupby(frame.CustomerID[inside]).sum()


def scores(database: Path, model_dir: Path) -> tuple[pd.DataFrame, dict]:
    with duckdb.connect(str(database), read_only=True) as connection:
        frame = connection.sql("select customer_id, predicted_clv, network_clv, "
                               "btyd_expected_spend from int_clv__scores").df()
    run = max((model_dir / "runs").glob("clv_run_*.json"), key=lambda p: p.stat().st_mtime)
    return frame.set_index("customer_id"), json.loads(run.read_text())["level"]


def plain_factor(frame: pd.DataFrame, spend: dict) -> float:
    """The spend factor with every customer counted in full in both totals."""
    return (spend["btyd_level_correction"] * frame.btyd_expected_spend.sum()
            / frame.network_clv.sum() + spend["network_level_weight"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retail-file", type=Path, default=RETAIL_FILE,
                        help="the Online Retail invoices CSV (as bench/bench_accuracy.py)")
    source = parser.parse_args().retail_file
    if not source.exists():
        raise SystemExit(f"{source} not found")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    plain = retail(source, "retail_plain")
    mixed = retail(with_wholesaler(source), "retail_wholesaler")
    actual = holdout_spend(mixed.transactions, mixed.as_of, mixed.horizon_days)
    base, _ = scores(*build(plain, 42))
    frame, spend = scores(*build(mixed, 42))
    others = frame.index != WHOLESALER
    spent = actual.reindex(frame.index).fillna(0.0)
    base_spent = actual.reindex(base.index).fillna(0.0)
    old = frame.network_clv * plain_factor(frame, spend)
    row = frame.loc[WHOLESALER]
    print(f"\nretail invoices, as of {mixed.as_of}, horizon {mixed.horizon_days} days; the "
          f"wholesaler: {ORDERS:,} orders of {ITEMS} x {PRICE:.2f}, "
          f"{row.network_clv / frame.network_clv.sum():.1%} of the network's total, spent "
          f"{spent[WHOLESALER]:,.0f} in the horizon; BG/NBD + Gamma-Gamma predicted "
          f"{row.btyd_expected_spend:,.0f}\n")
    print("| spend level | wholesaler predicted | other customers' total vs spent | "
          "everyone's total vs spent |")
    print("|---|---|---|---|")
    for name, values in (("plain totals", old), ("rule 7 (this version)", frame.predicted_clv)):
        print(f"| {name} | {values[WHOLESALER]:,.0f} | "
              f"{values[others].sum() / spent[others].sum() - 1:+.1%} | "
              f"{values.sum() / spent.sum() - 1:+.1%} |")
    print(f"| without the wholesaler | - | {base.predicted_clv.sum() / base_spent.sum() - 1:+.1%} "
          "| - |")
    print(f"\nrule 7 counted as a tenth: {spend.get('network_dominant', 0)} of the network's "
          f"total, {spend.get('btyd_dominant', 0)} of BG/NBD's")


if __name__ == "__main__":
    main()
