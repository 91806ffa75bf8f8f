"""The feature layer and scoring on PostgreSQL and Spark against DuckDB, on the same file.

    python bench/bench_engines.py --customers 110000

Generates about 1M transactions with the project's generator (no events, as Parquet), then per
engine:
  - load: DuckDB and Spark read the Parquet file where it is (no load); PostgreSQL gets it
    through COPY into a table first (timed on its own);
  - feature layer: `dbt run` of staging through clv_training_examples and clv_scoring_examples
    (every cutoff, window and sequence) in a child process, wall time and dbt's summed node
    time (nodes run 2 at a time, so the sum can exceed the wall time);
  - scoring: the scoring step (BTYD fit at the as-of date, the network, the spend level,
    writing the table) with one model trained on DuckDB's tables, in this process: through
    this process in batches on DuckDB and PostgreSQL, on Spark's executors (local[2]) with
    mapInArrow. Customers per second, and per executor core on Spark.
Needs a PostgreSQL server (the PG* variables) and Java; an engine that is not there is left
out with a note. Prints a Markdown table; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PROJECT_DIR, dbt_command, generate, measure

FEATURES = ["+clv_training_examples", "+clv_scoring_examples", "clv_run_settings"]
SCHEMA = "clv_bench"


def feature_layer(target: str, source: str, workdir: Path, env: dict[str, str]) -> dict:
    """Wall seconds and summed node seconds of the feature layer's dbt run."""
    target_path = workdir / f"target_{target}"
    run_vars = json.dumps({"clv_transactions": source, "clv_as_of_date": "2023-12-31",
                           "clv_ensemble_size": 1})
    command = dbt_command("run", "--target", target, "--select", *FEATURES, "--vars",
                          run_vars, "--target-path", str(target_path))
    seeds = dbt_command("seed", "--target", target, "--target-path", str(target_path))
    measure(seeds, env=env)  # the sample seeds the project always loads; not timed
    result = measure(command, env=env)
    nodes = json.loads((target_path / "run_results.json").read_text())["results"]
    return {"wall": result.seconds, "nodes": sum(n["execution_time"] for n in nodes),
            "peak_mb": result.peak_mb}


def train_on_duckdb(source: str, workdir: Path, env: dict[str, str]) -> Path:
    """A model trained on DuckDB's tables (the model every engine then scores with)."""
    model_dir = workdir / "onnx"
    run_vars = json.dumps({"clv_transactions": source, "clv_as_of_date": "2023-12-31",
                           "clv_ensemble_size": 1, "clv_model_dir": str(model_dir)})
    measure(dbt_command("build", "--select", "+clv_model_registry", "--vars", run_vars,
                        "--target-path", str(workdir / "target_train")), env=env)
    return model_dir


def score_on(warehouse: Any, schema: str, model_dir: Path) -> dict:
    """Time the scoring step on ``warehouse`` (tables in ``schema``) with the saved model."""
    import dataclasses

    from clv.artifacts import list_artifacts
    from clv.pipeline import scoring
    from clv.pipeline.registry import registry_frame
    from clv.pipeline.settings import RunSettings

    qualified = f"{schema}.clv_scoring_examples" if schema else "clv_scoring_examples"
    run = RunSettings.from_table(warehouse.read(
        f"{schema}.clv_run_settings" if schema else "clv_run_settings"))
    # the streamed path on every engine, PostgreSQL's default (the compiled query) aside:
    # bench/bench_sql_scoring.py measures that one
    run = dataclasses.replace(run, model_dir=model_dir, scoring_engine="onnxruntime")
    version = list_artifacts(model_dir)[-1].version
    registry = registry_frame(model_dir, version)
    began = time.perf_counter()
    scores = f"{schema}.clv_bench_scores" if schema else "clv_bench_scores"
    scoring.score_into(warehouse, warehouse.relation(qualified), registry, run, scores)
    rows = warehouse.row_count(warehouse.relation(scores))
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "customers": rows, "per_second": rows / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=110_000)
    parser.add_argument("--engines", nargs="+", default=["postgres", "spark"],
                        help="engines compared with DuckDB (default: postgres spark)")
    args = parser.parse_args()
    source = generate(args.customers)
    import duckdb

    transactions = duckdb.sql(f"select count(*) from '{source}'").fetchall()[0][0]
    print(f"{args.customers:,} customers, {transactions:,} transactions ({Path(source).name})")
    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="clv_bench_engines_") as tmp:
        workdir = Path(tmp)
        duck_env = {"CLV_DUCKDB_PATH": str(workdir / "clv.duckdb")}
        duck = feature_layer("duckdb", source, workdir, duck_env)
        model_dir = train_on_duckdb(source, workdir, duck_env)
        from clv.warehouse import DuckDBWarehouse

        connection = duckdb.connect(str(workdir / "clv.duckdb"))
        duck_scores = score_on(DuckDBWarehouse(connection), "", model_dir)
        connection.close()
        rows.append(("DuckDB", "-", f"{duck['wall']:.1f} s ({duck['nodes']:.1f} s in nodes)",
                     f"{duck_scores['seconds']:.1f} s",
                     f"{duck_scores['per_second']:,.0f}/s"))

        # PostgreSQL: the Parquet file through COPY into a table, then the same steps.
        env = {"CLV_SCHEMA": SCHEMA}
        try:
            if "postgres" not in args.engines:
                raise LookupError("not asked for (--engines)")
            import psycopg2

            from clv.warehouse import PostgresWarehouse

            connection = psycopg2.connect(connect_timeout=5)
            with connection.cursor() as cursor:
                cursor.execute(f"drop schema if exists {SCHEMA} cascade")
                cursor.execute(f"create schema {SCHEMA}")
            connection.commit()
            warehouse = PostgresWarehouse(connection, SCHEMA)
            import pyarrow as pa
            import pyarrow.parquet as pq

            began = time.perf_counter()
            parquet = pq.ParquetFile(source)
            warehouse.write_table(f"{SCHEMA}.bench_transactions", pa.RecordBatchReader.from_batches(
                parquet.schema_arrow, parquet.iter_batches(100_000)))
            load = time.perf_counter() - began
            pg = feature_layer("postgres", f"{SCHEMA}.bench_transactions", workdir, env)
            pg_scores = score_on(warehouse, SCHEMA, model_dir)
            rows.append(("PostgreSQL 15", f"{load:.1f} s (COPY)",
                         f"{pg['wall']:.1f} s ({pg['nodes']:.1f} s in nodes)",
                         f"{pg_scores['seconds']:.1f} s", f"{pg_scores['per_second']:,.0f}/s"))
            with connection.cursor() as cursor:
                cursor.execute(f"drop schema {SCHEMA} cascade")
                cursor.execute(f"drop schema if exists {SCHEMA}_clv_sample cascade")
            connection.commit()
            connection.close()
        except Exception as error:  # noqa: BLE001 an engine that is not there is reported
            print(f"PostgreSQL left out: {str(error).strip().splitlines()[0]}")

        # Spark local[2]: the Parquet path is the input; scoring on the executors.
        spark_dir = workdir / "spark"
        env = {"CLV_SCHEMA": SCHEMA, "CLV_SPARK_DIR": str(spark_dir)}
        try:
            if "spark" not in args.engines:
                raise LookupError("not asked for (--engines)")
            spark = feature_layer("spark", source, workdir, env)
            os.environ.update(env)
            from clv.build import profile_of  # the profile's Spark settings, as clv build uses

            profile = profile_of(PROJECT_DIR, PROJECT_DIR, "spark", {})
            from clv.warehouse import SparkWarehouse

            warehouse = SparkWarehouse.start(profile.credentials.server_side_parameters, SCHEMA)
            spark_scores = score_on(warehouse, SCHEMA, model_dir)
            cores = warehouse.session.sparkContext.defaultParallelism
            rows.append((f"Spark local[{cores}]", "- (reads the Parquet file)",
                         f"{spark['wall']:.1f} s ({spark['nodes']:.1f} s in nodes)",
                         f"{spark_scores['seconds']:.1f} s",
                         (f"{spark_scores['per_second']:,.0f}/s "
                         f"({spark_scores['per_second'] / cores:,.0f}/s per core)")))
        except Exception as error:  # noqa: BLE001
            print(f"Spark left out: {str(error).strip().splitlines()[0]}")

    print("\n| engine | load | feature layer (dbt run) | scoring step | scoring throughput |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
