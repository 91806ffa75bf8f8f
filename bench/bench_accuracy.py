"""Accuracy benchmark: the whole project end to end against BTYD and naive baselines.

    python bench/bench_accuracy.py                 # every data set
    python bench/bench_accuracy.py --only retail   # generated, closed_cohort, retail,
                                                   # retail_christmas

For each data set it runs `dbt build` with the documented vars into a fresh DuckDB file and
model directory, then scores `clv_predictions` on the holdout after the as-of date, beside
BG/NBD + Gamma-Gamma fitted at the as-of date, the naive baselines and, on generated data, two
references: the best prediction any model can make from the transaction history (the posterior
expected spend under the generator's true population settings, bench/history_reference.py) and
the oracle's true expected spend from each customer's latent parameters, all on the same
customers. The holdout's actual spend is read
from the project's own classified transactions, so parsing is the same for every predictor.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from common import OUT_DIR, PROJECT_DIR, dbt_command
from history_reference import history_posterior_spend

from clv import metrics
from clv.baselines import btyd_expected_spend, naive_average_rate, naive_last_period
from clv.synthetic import GeneratorSettings, generate, oracle, write_frame

RETAIL_FILE = PROJECT_DIR.parent / "shared" / "data" / "online_retail_invoices.csv"
METRICS = ("normalized_gini", "spearman", "aggregate_error", "decile_mape", "top_decile_capture")


@dataclass
class DataSet:
    name: str
    transactions: Path
    as_of: str
    horizon_days: int
    vars: dict = field(default_factory=dict)
    oracle: pd.DataFrame | None = None
    history_reference: pd.DataFrame | None = None


def generated(name: str, closed_cohort: bool, customers: int) -> DataSet:
    settings = GeneratorSettings(
        n_customers=customers, start_date=date(2021, 1, 1), end_date=date(2024, 12, 31),
        seed=2024, closed_cohort=closed_cohort, with_events=False,
    )
    data = generate(settings)
    path = OUT_DIR / f"{name}.parquet"
    write_frame(data.transactions, path)
    truth = oracle(data, date(2023, 12, 31), 365)
    reference = history_posterior_spend(data, date(2023, 12, 31), 365)
    return DataSet(name, path, "2023-12-31", 365, {}, truth, reference)


def retail(path: Path = RETAIL_FILE, name: str = "retail", as_of: str = "2011-06-09") -> DataSet:
    return DataSet(name, path, as_of, 91, {
        "clv_columns": {
            "customer_id": "nullif(CustomerID, '(blank)')",
            "transacted_at": "InvoiceDate",
            "amount": "Quantity * UnitPrice",
            "transaction_id": "InvoiceNo",
        },
        "clv_timestamp_format": "%m/%d/%Y %H:%M",
    })


def build(data: DataSet) -> Path:
    database = OUT_DIR / f"{data.name}.duckdb"
    model_dir = OUT_DIR / f"{data.name}_onnx"
    database.unlink(missing_ok=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    vars_ = {"clv_transactions": str(data.transactions), "clv_as_of_date": data.as_of,
             "clv_horizon_days": data.horizon_days, "clv_model_dir": str(model_dir), **data.vars}
    command = dbt_command("build", "--vars", json.dumps(vars_),
                          "--target-path", str(OUT_DIR / "target"),
                          "--log-path", str(OUT_DIR / "logs"))
    result = subprocess.run(command, env={**__import__("os").environ,
                                          "CLV_DUCKDB_PATH": str(database)},
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stdout[-5000:])
        raise SystemExit(f"dbt build failed for {data.name}")
    return database


def evaluate(data: DataSet, database: Path) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as connection:
        frame = connection.sql(f"""
            with actual as (
                select customer_id, greatest(sum(amount), 0) as actual
                from int_clv__transactions_classified
                where (exclusion_reason is null or exclusion_reason = 'after_as_of_date')
                  and transacted_date > date '{data.as_of}'
                  and transacted_date <= date '{data.as_of}' + {data.horizon_days}
                group by customer_id
            )
            select p.customer_id, p.predicted_clv, p.purchase_probability,
                   e.frequency, e.recency_days, e.t_days, e.monetary_value,
                   e.revenue_last_horizon, e.revenue_total,
                   coalesce(a.actual, 0) as actual
            from clv_predictions p
            join clv_scoring_examples e using (customer_id)
            left join actual a using (customer_id)
        """).df()
    btyd = btyd_expected_spend(frame.frequency, frame.recency_days, frame.t_days,
                               frame.monetary_value, data.horizon_days)
    predictors = {
        "network (clv_predictions)": frame.predicted_clv.to_numpy(float),
        "BG/NBD + Gamma-Gamma": btyd.expected_spend,
        "naive: last horizon repeated": naive_last_period(frame.revenue_last_horizon),
        "naive: average rate": naive_average_rate(frame.revenue_total, frame.t_days,
                                                  data.horizon_days),
    }
    if data.history_reference is not None:
        best = frame[["customer_id"]].merge(data.history_reference, on="customer_id", how="left")
        predictors["best from history (posterior under the true settings)"] = (
            best.expected_spend.fillna(0).to_numpy())
    if data.oracle is not None:
        truth = frame[["customer_id"]].merge(data.oracle, on="customer_id", how="left")
        predictors["oracle (true expected spend)"] = truth.expected_spend.fillna(0).to_numpy()
    actual = frame.actual.to_numpy(float)
    rows = []
    for name, predicted in predictors.items():
        scores = metrics.evaluate(actual, predicted)
        rows.append({"model": name, **{m: scores[m] for m in METRICS}})
    table = pd.DataFrame(rows)
    table.attrs["customers"] = len(frame)
    table.attrs["zero_share"] = float(np.mean(actual <= 0))
    return table


def print_table(data: DataSet, table: pd.DataFrame) -> None:
    print(f"\n### {data.name}: as of {data.as_of}, horizon {data.horizon_days} days, "
          f"{table.attrs['customers']:,} customers, "
          f"{table.attrs['zero_share']:.1%} spend nothing in the holdout\n")
    print("| model | norm. Gini | Spearman | aggregate error | decile MAPE | top-10% capture |")
    print("|---|---|---|---|---|---|")
    for row in table.itertuples(index=False):
        print(f"| {row.model} | {row.normalized_gini:.3f} | {row.spearman:.3f} | "
              f"{row.aggregate_error:+.1%} | {row.decile_mape:.3f} | "
              f"{row.top_decile_capture:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["generated", "closed_cohort", "retail",
                                           "retail_christmas"])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--retail-file", type=Path, default=RETAIL_FILE,
                        help="the Online Retail invoices CSV (default: the shared data folder)")
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    makers = {
        "generated": lambda: generated("generated", False, args.customers),
        "closed_cohort": lambda: generated("closed_cohort", True, args.customers),
        "retail": lambda: retail(args.retail_file),
        # the data README's harder variant: the horizon runs into the Christmas peak
        "retail_christmas": lambda: retail(args.retail_file, "retail_christmas", "2011-09-09"),
    }
    for name, make in makers.items():
        if args.only and name != args.only:
            continue
        if name.startswith("retail") and not args.retail_file.exists():
            print(f"\n### retail: skipped, {args.retail_file} not found")
            continue
        data = make()
        print_table(data, evaluate(data, build(data)))


if __name__ == "__main__":
    main()
