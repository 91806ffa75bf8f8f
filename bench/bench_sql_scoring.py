"""Scoring as SQL against scoring in onnxruntime, on DuckDB: compile time, SQL size, speed.

    python bench/bench_sql_scoring.py --customers 1000000

Builds the sample with `dbt build` in a temporary directory (features, a trained model of
`--ensemble` networks, its scoring run), or reuses one (`--database`, `--model-dir`). Its
clv_scoring_examples is copied to about `--customers` rows (whole copies of the sample, with
distinct customer ids), then, in this process and on the same table:
  - compile: clv.sql_scoring.compile_scoring_sql from the ONNX file and the scoring run
    (median of 3), and the size of the SQL, in all and for the network's CTEs per network;
  - SQL: `create table ... as <the query>` in DuckDB (every core), of which planning alone
    (`explain`);
  - onnxruntime: the same customers read from DuckDB as Arrow and scored by
    clv.pipeline.scoring.predict into an Arrow table (BTYD, the network in
    clv.score.score_batches with one batch in flight per core, quantiles, spend level): the
    per-customer work of the scoring step;
  - per column, the largest relative difference between the two results and the share of
    rows differing by more than 1e-5 (onnxruntime computes in float32, the SQL in float64).
With `--postgres` (a server from the standard PG* variables), the first whole copies of the
sample up to `--postgres-customers` are copied into a scratch schema and scored there both
ways: the PostgreSQL query (`create table ... as`, JIT off as the scoring step sets it) against
the onnxruntime path of the scoring step on PostgreSQL (streamed out with COPY, scored by
predict, written back with COPY). With `--spark`, the first whole copies up to
`--spark-customers` go into a local Spark session (the shipped profile's `spark` target, as
clv build starts it) and the scoring step (clv.pipeline.scoring.score) runs there both ways,
each result written as a Parquet table: the query in stages (SparkWarehouse.compute) against
onnxruntime on the executors (mapInArrow).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from common import PROJECT_DIR, dbt_command, measure

from clv.config import available_cores
from clv.pipeline.scoring import predict
from clv.score import DEFAULT_QUANTILES, quantile_column
from clv.sql_scoring import compile_scoring_sql


def build_sample(workdir: Path, ensemble: int) -> tuple[Path, Path]:
    """The sample's database and model directory after `dbt build`."""
    database, model_dir = workdir / "sample.duckdb", workdir / "models"
    run_vars = json.dumps({"clv_ensemble_size": ensemble, "clv_model_dir": str(model_dir)})
    measure(dbt_command("build", "--vars", run_vars, "--target-path", str(workdir / "target"),
                        "--log-path", str(workdir / "logs")),
            env={"CLV_DUCKDB_PATH": str(database)})
    return database, model_dir


def network_chars(sql: str) -> int:
    """Characters of the network's CTEs (``network_<n>``) in the compiled query."""
    start = re.search(r"^network_0*1 as \(", sql, re.MULTILINE)
    end = re.search(r"^network_outputs as \(", sql, re.MULTILINE)
    assert start and end, "the query has no network CTEs"
    return end.start() - start.start()


def seconds(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--ensemble", type=int, default=1, help="networks in the model")
    parser.add_argument("--database", type=Path, help="a built sample (skips dbt build)")
    parser.add_argument("--model-dir", type=Path, help="its clv_model_dir")
    parser.add_argument("--postgres", action="store_true",
                        help="also score on PostgreSQL (connection from PG* variables)")
    parser.add_argument("--postgres-customers", type=int, default=100_000,
                        help="customers scored on PostgreSQL (its SQL path is slower)")
    parser.add_argument("--spark", action="store_true",
                        help="also score in a local Spark session")
    parser.add_argument("--spark-customers", type=int, default=30_000,
                        help="customers scored on Spark")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clv-bench-sql-") as tmp:
        workdir = Path(tmp)
        if args.database and args.model_dir:
            database, model_dir = args.database, args.model_dir
        else:
            print(f"building the sample ({args.ensemble} network(s)) ...", file=sys.stderr)
            database, model_dir = build_sample(workdir, args.ensemble)
        run_file = sorted((model_dir / "runs").glob("clv_run_*.json"))[-1]
        run = json.loads(run_file.read_text(encoding="utf-8"))
        version, as_of = run["model_version"], run["as_of_date"]

        connection = duckdb.connect(str(workdir / "bench.duckdb"))
        connection.execute(f"attach '{database}' as sample (read_only)")
        sample_rows = connection.execute(
            "select count(*) from sample.clv_scoring_examples").fetchone()[0]
        # Whole copies, so the spend level over all rows equals the sample's (predict uses
        # the scoring run's saved level; the SQL sums over the rows it scores).
        copies = max(1, round(args.customers / sample_rows))
        connection.execute(
            "create table examples as select * replace (customer_id || '-' || copy as "
            "customer_id) from sample.clv_scoring_examples, range(?) as copies(copy) "
            "order by copy, customer_id", [copies])
        customers = connection.execute("select count(*) from examples").fetchone()[0]

        compile_times, sql = [], ""
        for _ in range(3):
            started = time.perf_counter()
            sql = compile_scoring_sql(model_dir, version, "examples", "duckdb",
                                      as_of_date=as_of, scoring_run=run_file)
            compile_times.append(time.perf_counter() - started)
        planning = seconds(lambda: connection.execute("explain " + sql).fetchall())
        sql_seconds = seconds(lambda: connection.execute("create table sql_scores as " + sql))

        scores: list[pa.Table] = []
        ort_seconds = seconds(lambda: scores.append(predict(
            connection.sql("select * from examples").to_arrow_table(), run_file)))
        connection.register("ort_scores_arrow", scores[0])
        connection.execute("create table ort_scores as select * from ort_scores_arrow")
        columns = ["purchase_probability", "network_clv", "predicted_clv",
                   *(quantile_column(q, "predicted_clv") for q in DEFAULT_QUANTILES),
                   "btyd_expected_spend"]
        relative = {c: (f"case when o.{c} = 0 and s.{c} = 0 then 0 else abs(s.{c} - o.{c}) / "
                        f"greatest(abs(o.{c}), 1e-300) end") for c in columns}
        differences = connection.execute("select " + ", ".join(
            f"max({relative[c]}), avg(case when {relative[c]} > 1e-5 then 1 else 0 end)"
            for c in columns) + " from sql_scores s join ort_scores o using (customer_id)"
        ).fetchone()
        postgres = None
        if args.postgres:
            rows = sample_rows * max(1, min(copies, round(args.postgres_customers / sample_rows)))
            postgres = score_on_postgres(connection, rows, model_dir, version, as_of, run_file)
        spark = None
        if args.spark:
            rows = sample_rows * max(1, min(copies, round(args.spark_customers / sample_rows)))
            spark = score_on_spark(connection, rows, database, model_dir, version, workdir)
        connection.close()

    total_chars = len(sql)
    per_network = network_chars(sql) / args.ensemble
    cores = available_cores()
    print(f"\n{customers:,} customers ({sample_rows:,} sample customers x {copies}), model "
          f"{version} ({args.ensemble} network(s)), DuckDB {duckdb.__version__} and "
          f"onnxruntime on {cores} cores\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| compile (median of 3) | {statistics.median(compile_times):.2f} s |")
    print(f"| SQL size, whole query | {total_chars / 1e6:.2f} MB |")
    print(f"| SQL size, network CTEs per network | {per_network / 1e6:.2f} MB |")
    print(f"| SQL scoring on DuckDB (create table as) | {sql_seconds:.1f} s "
          f"({customers / sql_seconds:,.0f} customers/s), of which planning {planning:.1f} s |")
    print(f"| onnxruntime scoring (read as Arrow + predict) | {ort_seconds:.1f} s "
          f"({customers / ort_seconds:,.0f} customers/s) |")
    print(f"| SQL time / onnxruntime time | {sql_seconds / ort_seconds:.1f}x |")
    print("\n| column | largest relative difference, SQL vs onnxruntime | rows above 1e-5 |")
    print("|---|---|---|")
    for index, column in enumerate(columns):
        largest, share = differences[2 * index], differences[2 * index + 1]
        print(f"| {column} | {largest:.1e} | {share:.3%} |")
    assert np.isfinite(differences).all()
    if postgres:
        customers = postgres["customers"]
        print(f"\nPostgreSQL {postgres['server']}, the first {customers:,} of those customers:\n")
        print("| measure | value |")
        print("|---|---|")
        print(f"| SQL size, whole query | {postgres['chars'] / 1e6:.2f} MB |")
        print(f"| SQL scoring on PostgreSQL (create table as) | {postgres['sql']:.1f} s "
              f"({customers / postgres['sql']:,.0f} customers/s) |")
        print(f"| onnxruntime scoring (COPY out, predict, COPY in) | {postgres['ort']:.1f} s "
              f"({customers / postgres['ort']:,.0f} customers/s) |")
        print(f"| SQL time / onnxruntime time | {postgres['sql'] / postgres['ort']:.1f}x |")
        print(f"| largest relative difference of predicted_clv, SQL vs onnxruntime | "
              f"{postgres['difference']:.1e} |")
    if spark:
        customers = spark["customers"]
        print(f"\nSpark {spark['version']} (local[2]), the first {customers:,} of those "
              "customers, the scoring step both ways:\n")
        print("| measure | value |")
        print("|---|---|")
        print(f"| SQL size, whole query | {spark['chars'] / 1e6:.2f} MB, {spark['stages']} "
              "stages |")
        print(f"| SQL scoring on Spark, in stages | {spark['sql']:.1f} s "
              f"({customers / spark['sql']:,.0f} customers/s) |")
        print(f"| onnxruntime on the executors (mapInArrow) | {spark['ort']:.1f} s "
              f"({customers / spark['ort']:,.0f} customers/s) |")
        print(f"| SQL time / onnxruntime time | {spark['sql'] / spark['ort']:.1f}x |")
        print(f"| largest relative difference of predicted_clv, SQL vs onnxruntime | "
              f"{spark['difference']:.1e} |")


def score_on_postgres(connection: duckdb.DuckDBPyConnection, rows: int, model_dir: Path,
                      version: str, as_of: str, run_file: Path) -> dict:
    """Both scoring paths on PostgreSQL over the first ``rows`` examples (whole copies of the
    sample, so the spend level is the sample's), in a scratch schema dropped afterwards."""
    import psycopg2

    from clv.warehouse import PostgresWarehouse

    schema = "clv_bench_sql_scoring"
    server = psycopg2.connect("")
    warehouse = PostgresWarehouse(server, schema)
    try:
        with server.cursor() as cursor:
            cursor.execute(f"drop schema if exists {schema} cascade; create schema {schema}")
        server.commit()
        examples = connection.cursor().sql(f"select * from examples limit {rows}")
        warehouse.write_table(f"{schema}.examples", examples.to_arrow_reader(100_000))
        floats = [f.name for f in warehouse.schema(f"{schema}.examples")
                  if pa.types.is_floating(f.type)]
        sql = compile_scoring_sql(model_dir, version, f"{schema}.examples", "postgres",
                                  as_of_date=as_of, float_columns=floats, scoring_run=run_file)

        def run_sql() -> None:
            with server.cursor() as cursor:
                cursor.execute("set local jit = off")
                cursor.execute(f"create table {schema}.sql_scores as {sql}")
            server.commit()

        def run_onnxruntime() -> None:
            scored = predict(warehouse.batches(f"{schema}.examples", 100_000), run_file)
            warehouse.write_table(f"{schema}.ort_scores", scored)

        sql_seconds = seconds(run_sql)
        ort_seconds = seconds(run_onnxruntime)
        difference = warehouse.query(f"{schema}.sql_scores", (
            "select max(abs(s.predicted_clv - o.predicted_clv) / "
            "greatest(abs(o.predicted_clv), 1e-300)) as d from {relation} s "
            f"join {schema}.ort_scores o using (customer_id)")).column(0)[0].as_py()
        with server.cursor() as cursor:
            cursor.execute("show server_version")
            version_text = cursor.fetchone()[0]
            cursor.execute(f"drop schema {schema} cascade")
        server.commit()
    finally:
        server.close()
    return {"server": version_text, "customers": rows, "chars": len(sql),
            "sql": sql_seconds, "ort": ort_seconds, "difference": float(difference)}


def score_on_spark(connection: duckdb.DuckDBPyConnection, rows: int, database: Path,
                   model_dir: Path, version: str, workdir: Path) -> dict:
    """The scoring step on a local Spark session over the first ``rows`` examples, with
    clv_scoring_engine sql and then onnxruntime (each on a copy of the model directory, so
    the sample's scoring run stays), each result written as a Parquet table."""
    import dataclasses
    import shutil

    import pyspark

    from clv.build import profile_of
    from clv.pipeline import scoring
    from clv.pipeline.registry import registry_frame
    from clv.pipeline.settings import RunSettings
    from clv.warehouse import SparkWarehouse
    from clv.warehouse.spark import with_stages

    os.environ["CLV_SPARK_DIR"] = str(workdir / "spark")  # the profile's warehouse folder
    profile = profile_of(PROJECT_DIR, PROJECT_DIR, "spark", {})  # as clv build starts Spark
    warehouse = SparkWarehouse.start(profile.credentials.server_side_parameters, None)
    warehouse.write_table("examples", connection.cursor().sql(
        f"select * exclude (copy) from examples limit {rows}").to_arrow_table())
    with duckdb.connect(str(database), read_only=True) as sample:
        settings = RunSettings.from_table(sample.sql("select * from clv_run_settings")
                                          .to_arrow_table())
    results, timings = {}, {}
    for engine in ("sql", "onnxruntime"):
        copy = workdir / f"spark_models_{engine}"
        shutil.copytree(model_dir, copy)
        run = dataclasses.replace(settings, model_dir=copy, scoring_engine=engine)
        started = time.perf_counter()
        scoring.score_into(warehouse, warehouse.relation("examples"),
                           registry_frame(copy, version), run, f"scores_{engine}")
        timings[engine] = time.perf_counter() - started
        results[engine] = warehouse.relation(f"scores_{engine}")
    difference = warehouse.query(results["sql"].join(
        results["onnxruntime"].withColumnRenamed("predicted_clv", "reference_clv")
        .select("customer_id", "reference_clv"), "customer_id"), (
        "select max(abs(predicted_clv - reference_clv) / greatest(abs(reference_clv), 1e-300)) "
        "as d from {relation}")).column(0)[0].as_py()
    [text] = (workdir / "spark_models_sql" / "runs").glob("*.spark.sql")
    sql = text.read_text(encoding="utf-8")
    warehouse.session.stop()
    return {"version": pyspark.__version__, "customers": rows, "chars": len(sql),
            "stages": len(with_stages(sql)[0]) + 1, "sql": timings["sql"],
            "ort": timings["onnxruntime"], "difference": float(difference)}


if __name__ == "__main__":
    main()
