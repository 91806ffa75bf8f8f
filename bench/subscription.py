"""A generated subscription business, a kind of data the project was not tuned on.

Subscribers sign up from 2021 to the end of 2023 (more of them later), pay one of three plan
prices every 30 days, and cancel before each renewal with a fixed chance (4% a month); nobody
comes back. Spend in a year is then "12 or 13 bills" for a subscriber who stays, which no
lognormal holds exactly, and many customers share one value: the two things that unsettle
quantiles and rank-based alerts. The transactions run to the end of 2024, so a build as of
2023-12-31 has a year of holdout after it.

The true expected spend in the horizon after the as-of date comes from the latent state: a
subscriber who has cancelled spends nothing, one who has not pays every remaining bill until
they cancel, each renewal kept with 96%.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

PLANS = (9.99, 19.99, 49.99)
PLAN_SHARES = (0.5, 0.35, 0.15)
BILLING_DAYS = 30
MONTHLY_CANCEL = 0.04
FIRST_SIGNUP, LAST_SIGNUP, LAST_DAY = date(2021, 1, 1), date(2023, 12, 31), date(2024, 12, 31)


@dataclass(frozen=True)
class Subscriptions:
    transactions: pd.DataFrame  # transaction_id, customer_id, transacted_at, amount
    subscribers: pd.DataFrame  # customer_id, price, signup, bills (paid before cancelling)


def simulate(customers: int = 4_000, seed: int = 7) -> Subscriptions:
    """Every subscriber's bills up to LAST_DAY."""
    rng = np.random.default_rng(seed)
    span = (LAST_SIGNUP - FIRST_SIGNUP).days
    # sign-ups grow over time: a power below 1 puts more of them near the end
    offsets = (rng.uniform(size=customers) ** 0.8 * span).astype(int)
    prices = rng.choice(PLANS, size=customers, p=PLAN_SHARES)
    # bills paid before cancelling: the first, then each renewal kept with 1 - MONTHLY_CANCEL
    bills = rng.geometric(MONTHLY_CANCEL, size=customers)
    ids, stamps, amounts, numbers = [], [], [], []
    for i in range(customers):
        signup = FIRST_SIGNUP + timedelta(days=int(offsets[i]))
        for k in range(int(bills[i])):
            day = signup + timedelta(days=k * BILLING_DAYS)
            if day > LAST_DAY:
                break
            ids.append(f"S{i:05d}")
            stamps.append(f"{day.isoformat()} 03:00:00")
            amounts.append(float(prices[i]))
            numbers.append(f"INV{i:05d}-{k:03d}")
    transactions = pd.DataFrame({"transaction_id": numbers, "customer_id": ids,
                                 "transacted_at": stamps, "amount": amounts})
    subscribers = pd.DataFrame({
        "customer_id": [f"S{i:05d}" for i in range(customers)], "price": prices,
        "signup": [FIRST_SIGNUP + timedelta(days=int(o)) for o in offsets], "bills": bills})
    return Subscriptions(transactions, subscribers)


def expected_spend(data: Subscriptions, as_of: date, horizon_days: int) -> pd.DataFrame:
    """``customer_id, expected_spend``: each subscriber's true expected spend in the horizon
    after ``as_of``, given whether they had cancelled by then (the latent state)."""
    end = as_of + timedelta(days=horizon_days)
    rows = []
    for row in data.subscribers.itertuples():
        if row.signup > as_of:
            continue
        paid = (as_of - row.signup).days // BILLING_DAYS + 1  # bills due by the as-of date
        if row.bills <= paid:  # cancelled: the last bill was due on or before the as-of date
            rows.append((row.customer_id, 0.0))
            continue
        # the next bill is certain (not cancelled yet); each later one kept with 96% again
        due = [row.signup + timedelta(days=k * BILLING_DAYS) for k in range(paid, paid + 400)]
        count = sum(1 for day in due if day <= end)
        kept = sum((1 - MONTHLY_CANCEL) ** j for j in range(count))
        rows.append((row.customer_id, float(row.price) * kept))
    return pd.DataFrame(rows, columns=["customer_id", "expected_spend"])


def write_csv(data: Subscriptions, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data.transactions.to_csv(path, index=False)
    return path
