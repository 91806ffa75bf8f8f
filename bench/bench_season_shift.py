"""A seasonal model scored at other dates: the spend level with and without rule 9 of clv.level.

    python bench/bench_season_shift.py [--customers 6000]

Generates the accuracy benchmark's seasonal case (a strong yearly peak in November and
December), trains a model at the end of September for a 91-day horizon (the peak window), then
scores the end of June before it and the end of December after it with that model
(`clv_retrain: never`, as a backfill or a daily job between retrains do), and trains a model
at each of those dates for comparison. Each prediction's total and mean purchase probability
are compared with the actual net spend in the 91 days after its date and the share of
customers who spent. The total without rule 9 is the same run's divided by its factor (the
factor multiplies both level coefficients, so the total is linear in it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
from bench_accuracy import actual_spend_sql, generated_settings
from common import OUT_DIR, dbt_command

from clv.synthetic import generate, write_frame

TRAINED, HORIZON = "2023-09-30", 91
SCORED = ("2023-06-30", "2023-12-31")


def outcome(database: Path, as_of: str) -> dict:
    """Predicted and actual totals and purchase rates at ``as_of`` (clv_predictions_history)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.sql(f"""
            with actual as ({actual_spend_sql(as_of, HORIZON)})
            select sum(p.predicted_clv), sum(coalesce(a.actual, 0)), avg(p.purchase_probability),
                   avg(case when a.actual > 0 then 1.0 else 0.0 end), any_value(p.model_version)
            from clv_predictions_history p left join actual a using (customer_id)
            where p.as_of_date = date '{as_of}'
        """).fetchall()[0]
    return dict(zip(("predicted", "actual", "probability", "bought", "model"), row, strict=True))


def shift_factor(model_dir: Path, model: str, as_of: str) -> float:
    """Rule 9's factor in the scoring run at ``as_of``: its correction over the model's."""
    metadata = json.loads((model_dir / f"clv_model_{model}.json").read_text())
    run = json.loads(next((model_dir / "runs").glob(f"clv_run_{as_of}_{model}.*.json")).read_text())
    return run["level"]["btyd_level_correction"] / metadata["btyd_level_correction"]


def dbt_build(transactions: Path, as_of: str, retrain: str, database: Path,
              model_dir: Path) -> None:
    vars_ = {"clv_transactions": str(transactions), "clv_as_of_date": as_of,
             "clv_horizon_days": HORIZON, "clv_model_dir": str(model_dir),
             "clv_retrain": retrain}
    result = subprocess.run(dbt_command("build", "--vars", json.dumps(vars_),
                                        "--target-path", str(OUT_DIR / "target"),
                                        "--log-path", str(OUT_DIR / "logs")),
                            env={**os.environ, "CLV_DUCKDB_PATH": str(database)},
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        print(result.stdout[-5000:])
        raise SystemExit(f"dbt build failed at {as_of} (clv_retrain {retrain})")


def fresh(name: str) -> tuple[Path, Path]:
    """An empty database path and model directory under bench/out."""
    database, model_dir = OUT_DIR / f"{name}.duckdb", OUT_DIR / f"{name}_onnx"
    database.unlink(missing_ok=True)
    database.with_name(database.name + ".wal").unlink(missing_ok=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    return database, model_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=6000)
    args = parser.parse_args()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / "season_shift.parquet"
    write_frame(generate(generated_settings(False, args.customers, seasonal_peak=True))
                .transactions, path)
    database, model_dir = fresh("season_shift")
    dbt_build(path, TRAINED, "always", database, model_dir)
    rows = []
    for as_of in SCORED:
        dbt_build(path, as_of, "never", database, model_dir)  # the September model
        reused = outcome(database, as_of)
        own_database, own_models = fresh(f"season_shift_{as_of}")
        dbt_build(path, as_of, "always", own_database, own_models)
        rows.append((as_of, reused, shift_factor(model_dir, reused["model"], as_of),
                     outcome(own_database, as_of)))
    print(f"\ngenerated seasonal case ({args.customers:,} customers, peak in November and "
          f"December), horizon {HORIZON} days; the model trained at {TRAINED}, scored at other "
          "dates with clv_retrain: never\n")
    print("| as-of date | actual spend | September model, rule 9 (this version) | the same "
          "without rule 9 | model trained at the date | mean purchase probability (rule 9 / "
          "own model) against the share who spent |")
    print("|---|---|---|---|---|---|")
    for as_of, reused, factor, own in rows:
        actual = reused["actual"]

        def error(total: float, actual: float = actual) -> str:
            return f"{total:,.0f} ({total / actual - 1:+.1%})"

        print(f"| {as_of} | {actual:,.0f} | {error(reused['predicted'])}, factor {factor:.3f} "
              f"| {error(reused['predicted'] / factor)} | {error(own['predicted'])} | "
              f"{reused['probability']:.3f} / {own['probability']:.3f} against "
              f"{reused['bought']:.3f} |")


if __name__ == "__main__":
    main()
