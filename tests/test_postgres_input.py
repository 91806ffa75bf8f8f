"""A source table as a CSV import leaves it in PostgreSQL: column names with capitals (found
only in double quotes there), every column text, an integer amount in cents. The column map
quotes the names, a text operand's bad cell is a counted invalid_amount, and an integer
division keeps its cents, as on DuckDB."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from engines import (
    PROJECT_DIR,
    clv_build,
    drop_postgres_schemas,
    environment,
    postgres_connection,
    postgres_settings,
    schema_name,
)

ROWS = [  # InvoiceNo, InvoiceDate, CustomerID, Quantity, UnitPrice, AmountCents
    ("536365", "12/1/2010 8:26", "17850", "40", "3.91", 15640),
    ("536366", "12/1/2010 8:28", "17850", "n/a", "1.85", 2220),
    ("536367", "12/1/2010 8:34", "13047", "83", "4.85", 40255),
    ("536368", "12/2/2010 9:35", "(blank)", "15", "4.75", 7125),
    ("536369", "12/3/2010 10:00", "13047", "2", "0.99", 198),
]
GERMAN_AMOUNTS = ["1.038,75", "12,50", "1.250", "n/a", "-3,00"]
COLUMNS = {"customer_id": "nullif(CustomerID, '(blank)')", "transacted_at": "InvoiceDate",
           "amount": "Quantity * UnitPrice", "transaction_id": "InvoiceNo"}
RUN_VARS = {"clv_timestamp_format": "%m/%d/%Y %H:%M", "clv_as_of_date": "2010-12-31"}


@pytest.fixture(scope="module", autouse=True)
def _drop_test_schemas():
    yield
    drop_postgres_schemas("clv_pgin_")


@pytest.fixture(scope="module")
def source() -> str:
    from clv.warehouse import PostgresWarehouse

    connection = postgres_connection()  # skips (or fails in CI) when there is no server
    inputs = schema_name("clv_pgin_input")
    names = ["InvoiceNo", "InvoiceDate", "CustomerID", "Quantity", "UnitPrice", "AmountCents"]
    table = pa.table({name: [row[i] for row in ROWS] for i, name in enumerate(names)})
    # Online Retail II's spelling of two of them, names with a space
    table = table.append_column("Customer ID", table["CustomerID"])
    table = table.append_column("Unit Price", table["UnitPrice"])
    # an amount as a German export writes it: dots between thousands, a decimal comma
    table = table.append_column("Betrag", pa.array(GERMAN_AMOUNTS))
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create schema "{inputs}"')
        connection.commit()
        PostgresWarehouse(connection, inputs).write_table(f"{inputs}.retail", table)
        with connection.cursor() as cursor:  # the amount in PostgreSQL's money type
            cursor.execute(f'alter table "{inputs}".retail add column "Total" money')
            cursor.execute(f'update "{inputs}".retail set "Total" = "AmountCents" / 100.0')
        connection.commit()
    finally:
        connection.close()
    return f"{inputs}.retail"


def _staged(source: str, columns: dict, workdir: Path,
            **vars_: str) -> tuple[list[tuple], list[tuple]]:
    schema = schema_name("clv_pgin")
    clv_build("postgres", {**RUN_VARS, **vars_, "clv_transactions": source,
                           "clv_columns": columns},
              workdir, {"CLV_SCHEMA": schema, **postgres_settings()},
              models=["clv_data_quality"])
    connection = postgres_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"select transaction_id, amount from {schema}.stg_clv__transactions "
                           "order by transaction_id")
            staged = cursor.fetchall()
            cursor.execute(f"select reason, rows, example_value from {schema}.clv_data_quality "
                           "where rows > 0 order by reason")
            return staged, cursor.fetchall()
    finally:
        connection.close()


@pytest.mark.slow
def test_capitalised_text_columns_of_a_csv_import(source, tmp_path):
    staged, quality = _staged(source, COLUMNS, tmp_path)
    amounts = dict(staged)
    assert amounts["536365"] == pytest.approx(40 * 3.91) and amounts["536366"] is None
    assert quality == [("invalid_amount", 1, "Quantity=n/a UnitPrice=1.85"),
                       ("missing_customer_id", 1, "536368")]


@pytest.mark.slow
@pytest.mark.parametrize("amount", ["AmountCents / 100", "coalesce(AmountCents, 0) / 100",
                                    "abs(AmountCents) / 100",
                                    # PostgreSQL's round(x, n) takes numeric only
                                    "round(AmountCents / 100.0, 2)"])
def test_an_integer_amount_in_cents_keeps_its_cents(source, tmp_path, amount):
    """Wherever the integer column stands, inside a function as well as beside the operator."""
    staged, _ = _staged(source, {**COLUMNS, "amount": amount}, tmp_path)
    assert dict(staged)["536369"] == pytest.approx(1.98)


@pytest.mark.slow
@pytest.mark.parametrize(("amount", "factor"), [
    ("Total", 1), ("coalesce(Total, 0) * 2", 2),
    # beside a string literal, where a text column is left as written unless it is an operand
    ("case when InvoiceNo <> '' then Total end", 1)])
def test_a_money_amount_reads_as_a_number(source, tmp_path, amount, factor):
    """PostgreSQL's money type writes its text for the locale ('$1,064.46'), which no number
    parse reads: alone or inside an expression, the column is read as numeric."""
    staged, quality = _staged(source, {**COLUMNS, "amount": amount}, tmp_path)
    assert dict(staged) == pytest.approx({row[0]: factor * row[5] / 100 for row in ROWS})
    assert quality == [("missing_customer_id", 1, "536368")]
    # and dbt names the type instead of warning of an unknown one (an error under --warn-error)
    log = (tmp_path / "logs" / "dbt.log").read_text(encoding="utf-8")
    assert "790 was not recognized" not in log


@pytest.mark.slow
def test_a_month_or_day_0_is_an_invalid_timestamp_as_on_duckdb(source, tmp_path):
    """PostgreSQL's to_timestamp reads '00/05/2010' as January 5 and '11/00/2010' as November
    1; DuckDB's strptime refuses both: they are invalid timestamps on every engine."""
    from clv.warehouse import PostgresWarehouse

    dates = ["00/05/2010 10:00", "11/00/2010 10:00", "12/1/2010 8:26", "12/31/2010 23:59"]
    table = pa.table({"InvoiceNo": [f"t{i}" for i in range(len(dates))], "InvoiceDate": dates,
                      "CustomerID": ["17850"] * len(dates), "Quantity": ["1"] * len(dates),
                      "UnitPrice": ["2.5"] * len(dates)})
    placeholders = f"{source.split('.')[0]}.placeholder_dates"
    connection = postgres_connection()
    try:
        PostgresWarehouse(connection, source.split(".")[0]).write_table(placeholders, table)
    finally:
        connection.close()
    _, quality = _staged(placeholders, COLUMNS, tmp_path)
    assert quality == [("invalid_timestamp", 2, "00/05/2010 10:00")]


@pytest.mark.slow
def test_names_with_a_space_and_a_text_column_inside_a_function(source, tmp_path):
    """"Customer ID" maps as the header spells it; `coalesce(Quantity, 0)` reads the text
    column as a number, so its n/a cell is the 0 the user's coalesce asks for."""
    columns = {**COLUMNS, "customer_id": "Customer ID",
               "amount": 'coalesce(Quantity, 0) * "Unit Price"'}
    staged, quality = _staged(source, columns, tmp_path)
    amounts = dict(staged)
    assert amounts["536365"] == pytest.approx(40 * 3.91) and amounts["536366"] == 0
    assert quality == [("missing_customer_id", 1, "536368")]


@pytest.mark.slow
def test_round_of_a_product_of_text_columns_runs_as_on_duckdb(source, tmp_path):
    """`round(Quantity * UnitPrice, 2)` is valid PostgreSQL on numbers; the text columns read
    as numbers must keep it valid (a double would find no round(double precision, integer))."""
    staged, quality = _staged(source, {**COLUMNS, "amount": "round(Quantity * UnitPrice, 2)"},
                              tmp_path)
    amounts = dict(staged)
    assert amounts["536365"] == pytest.approx(156.4) and amounts["536369"] == pytest.approx(1.98)
    assert amounts["536366"] is None
    assert ("invalid_amount", 1, "Quantity=n/a UnitPrice=1.85") in quality


@pytest.mark.slow
def test_a_table_a_view_reads_is_written_again(source):
    """Each build writes int_clv__python_scores again while the view int_clv__scores reads it
    (clv_scoring_engine onnxruntime). PostgreSQL does not drop a table a view depends on, so
    the table takes its new rows with its dependents dropped, as dbt's own table
    materialization does; dbt creates the view again downstream."""
    from clv.warehouse import PostgresWarehouse

    schema = schema_name("clv_pgin_views")
    connection = postgres_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create schema "{schema}"')
        connection.commit()
        warehouse = PostgresWarehouse(connection, schema)
        warehouse.write_table(f"{schema}.scores", pa.table({"x": [1, 2]}))
        with connection.cursor() as cursor:
            cursor.execute(f'create view "{schema}".reader as select * from "{schema}".scores')
        connection.commit()
        warehouse.write_table(f"{schema}.scores", pa.table({"x": [3]}))
        assert warehouse.read(f"{schema}.scores").column("x").to_pylist() == [3]
    finally:
        connection.close()


@pytest.mark.slow
def test_rows_read_back_whole_in_batches_of_the_size_asked(monkeypatch):
    """Texts with line breaks (quoted in COPY's CSV) across the reader's blocks, batches of at
    most the rows asked for, and the connection's own settings whatever PGOPTIONS says: a
    time zone whose 1850 offset is not ISO 8601 and doubles printed with too few digits."""
    from types import SimpleNamespace

    from clv.warehouse import PostgresWarehouse

    settings = postgres_settings()
    connection = postgres_connection()
    schema = schema_name("clv_pgin_rows")
    n = 60_000
    ids = [f"line {i}\nbreak" if i % 3 == 0 else f"id {i}" for i in range(n)]
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create schema "{schema}"')
        connection.commit()
        PostgresWarehouse(connection, schema).write_table(
            f"{schema}.texts", pa.table({"customer_id": ids, "n": list(range(n))}))
    finally:
        connection.close()
    monkeypatch.setenv("PGOPTIONS", "-c TimeZone=Europe/Amsterdam -c extra_float_digits=0")
    warehouse = PostgresWarehouse.open(SimpleNamespace(
        host=settings["PGHOST"], port=int(settings["PGPORT"]), user=settings["PGUSER"],
        password=settings["PGPASSWORD"], database=settings["PGDATABASE"], schema=schema))
    try:
        batches = list(warehouse.stream("texts", "select * from {relation} order by n", 1000))
        both = warehouse.query("texts", "select timestamptz '1850-01-01 00:00:00+00' as at, "
                                        "0.1::float8 + 0.2::float8 as x from {relation} limit 1")
    finally:
        warehouse.close()
    assert max(batch.num_rows for batch in batches) == 1000
    assert pa.Table.from_batches(batches).column("customer_id").to_pylist() == ids
    assert both.column("at")[0].as_py().isoformat() == "1850-01-01T00:00:00+00:00"
    assert both.column("x")[0].as_py() == 0.1 + 0.2


@pytest.mark.slow
def test_a_decimal_comma_reads_as_on_duckdb(source, tmp_path):
    """clv_decimal_separator ',': the dots between thousands go and the comma is the point, the
    same text DuckDB reads (tests/test_input_shapes.py)."""
    staged, quality = _staged(source, {**COLUMNS, "amount": "Betrag"}, tmp_path,
                              clv_decimal_separator=",")
    assert dict(staged) == {"536365": 1038.75, "536366": 12.5, "536367": 1250.0,
                            "536368": None, "536369": -3.0}
    assert quality == [("missing_customer_id", 1, "536368")]



def table_columns(connection, schema: str, table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("select column_name from information_schema.columns where table_schema = "
                       "%s and table_name = %s order by ordinal_position", (schema, table))
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.slow
def test_a_relation_the_role_may_not_read_names_the_grants(source, tmp_path, capsys):
    """PostgreSQL's own error, `permission denied for table retail`, names neither the var,
    the schema nor the grant: the build stops with one line naming all three, and the role."""
    from clv.build import BuildError

    closed = schema_name("clv_pgin_closed")
    connection = postgres_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create schema "{closed}"')
            cursor.execute(f'create table "{closed}".orders as select * from {source}')
            cursor.execute("select current_user")
            role = cursor.fetchone()[0]
            # the owner gives up its own rights, as a role that was never granted them has none
            cursor.execute(f'revoke select on "{closed}".orders from {role}')
            cursor.execute(f'revoke usage on schema "{closed}" from {role}')
        connection.commit()
        with pytest.raises(BuildError, match="failed at stg_clv__transactions"):
            _staged(f"{closed}.orders", COLUMNS, tmp_path)
        out = capsys.readouterr().out
        assert (f"Invalid value for var 'clv_transactions': the role {role} may not read "
                f"{closed}.orders: its owner (or a superuser) can grant usage on schema {closed} "
                f"to {role}; grant select on {closed}.orders to {role}") in out, out
        # select granted on every column (not on the table) reads the table: no stop
        columns = ", ".join(f'"{name}"' for name in table_columns(connection, closed, "orders"))
        with connection.cursor() as cursor:
            cursor.execute(f'grant usage on schema "{closed}" to {role}')
            cursor.execute(f'grant select ({columns}) on "{closed}".orders to {role}')
        connection.commit()
        staged, _ = _staged(f"{closed}.orders", COLUMNS, tmp_path)
        assert len(staged) == len(ROWS)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'drop schema "{closed}" cascade')
        connection.commit()
        connection.close()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "found"), [
    ("no_such_orders", False), ("{schema}.Retail", True), ('"{schema}"."Retail"', False)])
def test_a_missing_relation_stops_with_one_line_naming_the_var(source, tmp_path, capsys, name,
                                                               found):
    """PostgreSQL folds a plain name to lower case and keeps a quoted one as written: the
    table `retail` reads as `schema.Retail`, and a name PostgreSQL would not find stops the
    build with one line naming the var."""
    from clv.build import BuildError

    name = name.format(schema=source.split(".")[0])
    if found:
        staged, _ = _staged(name, COLUMNS, tmp_path)
        assert len(staged) == len(ROWS)
        return
    with pytest.raises(BuildError, match="failed at stg_clv__transactions"):
        _staged(name, COLUMNS, tmp_path)
    out = capsys.readouterr().out
    assert (f"Invalid value for var 'clv_transactions': no table or view '{name}' in the "
            "warehouse of target 'postgres'") in out
    # the hint names what this engine reads: no files
    assert "(postgres reads no files: load a file into a table)" in out, out


@pytest.mark.slow
def test_a_table_named_with_capitals_is_found_quoted_and_the_error_says_so(source, tmp_path,
                                                                          capsys):
    """A loader that creates "Orders" makes a name PostgreSQL finds only in double quotes:
    written plainly, the error says how to write it."""
    from clv.build import BuildError

    schema = source.split(".")[0]
    connection = postgres_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create table "{schema}"."Orders" as select * from {source}')
        connection.commit()
    finally:
        connection.close()
    with pytest.raises(BuildError, match="failed at stg_clv__transactions"):
        _staged(f"{schema}.Orders", COLUMNS, tmp_path / "plain")
    assert ("PostgreSQL reads an unquoted name in lower case, and the table was created with "
            f"capitals: write it in double quotes, as '{schema}.\"Orders\"'"
            ) in capsys.readouterr().out
    # a name no spelling finds gets no such hint
    with pytest.raises(BuildError, match="failed at stg_clv__transactions"):
        _staged(f"{schema}.Ordres", COLUMNS, tmp_path / "typo")
    assert "PostgreSQL reads an unquoted name" not in capsys.readouterr().out
    staged, _ = _staged(f'"{schema}"."Orders"', COLUMNS, tmp_path / "quoted")
    assert len(staged) == len(ROWS)


@pytest.mark.slow
def test_dbt_build_on_postgres_says_to_use_clv_build(source, tmp_path):
    """dbt runs no Python model on PostgreSQL ("materialization_table_default only supports
    languages ['sql']", after the SQL models built): the run stops at its start instead, saying
    what runs them."""
    from dbt.cli.main import dbtRunner
    from dbt.exceptions import CompilationError

    postgres_connection().close()  # skips (or fails in CI) when there is no server
    args = ["build", "--target", "postgres", "--select", "int_clv__model_registry",
            "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
            "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
            "--quiet"]
    with environment(CLV_SCHEMA=schema_name("clv_pgin"), **postgres_settings()):
        result = dbtRunner().invoke(args)
    assert isinstance(result.exception, CompilationError), result
    assert ("clv: dbt does not run Python models on postgres (selected: int_clv__model_registry)"
            ": build with clv build --target postgres") in str(result.exception)
    # a command that runs no model goes on: the docs (compile included) of the whole project
    with environment(CLV_SCHEMA=schema_name("clv_pgin"), **postgres_settings()):
        docs = dbtRunner().invoke(["docs", "generate", *args[1:3], *args[5:]])
    assert docs.success, docs.exception
    assert (tmp_path / "target" / "catalog.json").is_file()
    assert any((tmp_path / "target" / "compiled").rglob("int_clv__model_registry.py"))


@pytest.mark.slow
def test_clv_build_builds_what_dbt_selects(source, tmp_path, capsys):
    """``clv build --select`` on PostgreSQL builds what dbt's own selection syntax selects
    (-m, +, --exclude) and nothing else (a host project's failing model outside it does not stop
    a daily job that selects clv's), without printing dbt's list."""
    import json

    from clv import build

    schema = schema_name("clv_pgin")
    args = ["--target", "postgres", "--project-dir", str(PROJECT_DIR), "--profiles-dir",
            str(PROJECT_DIR), "--vars", json.dumps({**RUN_VARS, "clv_transactions": source,
                                                    "clv_columns": COLUMNS}),
            "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
            "--quiet"]

    def built() -> set[str]:
        connection = postgres_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute("select table_name from information_schema.tables "
                               "where table_schema = %s", (schema,))
                return {name for (name,) in cursor.fetchall()}
        finally:
            connection.close()

    with environment(CLV_SCHEMA=schema, **postgres_settings()):
        assert build.main([*args, "-m", "+int_clv__transactions_checked", "--exclude",
                           "int_clv__transactions_checked"]) == 0
        assert "stg_clv__transactions" in built()
        assert not {"int_clv__transactions_checked", "int_clv__customer_days"} & built()
        assert build.main([*args, "--select", "int_clv__transactions_checked"]) == 0
    assert "int_clv__transactions_checked" in built()
    assert not {"int_clv__customer_days", "clv_predictions", "clv_data_quality"} & built()
    assert "model.clv." not in capsys.readouterr().out


@pytest.mark.slow
def test_a_file_path_on_postgres_names_the_var(source, tmp_path):
    from clv.build import BuildError

    with pytest.raises(BuildError, match=(
            "Invalid value for var 'clv_transactions': 'exports/orders.csv' is a file, which clv "
            r"reads directly on DuckDB \(delimited text, Parquet\) and Spark \(Parquet\) only: on "
            "postgres, load it into a table")):
        _staged("exports/orders.csv", COLUMNS, tmp_path)


@pytest.mark.slow
def test_the_run_start_hook_needs_no_right_to_create_schemas_in_the_database(tmp_path):
    """A role granted only its own schema (no CREATE on the database) runs the on-run-start
    hook that makes clv's helper functions there: `create schema if not exists` needs that
    right even for a schema that exists. Checked in a transaction that revokes it and is rolled
    back."""
    from dbt.cli.main import dbtRunner

    settings = postgres_settings()
    schema = schema_name("clv_pgin_grants")
    connection = postgres_connection()  # skips (or fails in CI) when there is no server
    args = ["compile", "--target", "postgres", "--inline",
            "{{ clv_create_warehouse_functions() }}", "--project-dir", str(PROJECT_DIR),
            "--profiles-dir", str(PROJECT_DIR), "--target-path", str(tmp_path / "target"),
            "--log-path", str(tmp_path / "logs"), "--quiet"]
    with environment(CLV_SCHEMA=schema, **settings):
        result = dbtRunner().invoke(args)
    assert result.success, result.exception
    hook = result.result.results[0].node.compiled_code
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create schema "{schema}"')
        connection.commit()
        with connection.cursor() as cursor:
            cursor.execute(f'revoke create on database "{settings["PGDATABASE"]}" '
                           f'from "{settings["PGUSER"]}"')
            cursor.execute("select has_database_privilege(current_database(), 'CREATE')")
            if cursor.fetchone()[0]:
                pytest.skip("the test role keeps CREATE on the database (a superuser)")
            cursor.execute(hook)
            cursor.execute("select count(*) from pg_proc join pg_namespace "
                           "on pg_namespace.oid = pg_proc.pronamespace where nspname = %s",
                           (schema,))
            assert cursor.fetchone()[0] >= 3
    finally:
        connection.rollback()
        connection.close()


@pytest.mark.slow
def test_the_python_steps_connect_with_the_profiles_role_and_search_path():
    """As dbt-postgres connects: the profile's role is set after login (the tables the Python
    steps write then belong to the role dbt's stages write as) and its search_path is the
    session's; a role the user cannot take is one line naming it."""
    from types import SimpleNamespace

    from clv.warehouse import PostgresWarehouse

    settings = postgres_settings()
    postgres_connection().close()  # skips (or fails in CI) when there is no server
    profile = {"host": settings["PGHOST"], "port": int(settings["PGPORT"]),
               "user": settings["PGUSER"], "password": settings["PGPASSWORD"],
               "database": settings["PGDATABASE"], "schema": "public"}
    # the owner of the database may take the predefined role pg_database_owner
    warehouse = PostgresWarehouse.open(SimpleNamespace(
        **profile, role="pg_database_owner", search_path="pg_catalog, public"))
    try:
        with warehouse.connection.cursor() as cursor:
            cursor.execute("select current_user, current_setting('search_path')")
            assert cursor.fetchone() == ("pg_database_owner", "pg_catalog, public")
    finally:
        warehouse.close()
    if not _is_superuser():
        with pytest.raises(ConnectionError, match="cannot set role pg_write_server_files "
                                                  r"\(the profile's role\)"):
            PostgresWarehouse.open(SimpleNamespace(**profile, role="pg_write_server_files"))


def _is_superuser() -> bool:
    connection = postgres_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("select rolsuper from pg_roles where rolname = current_user")
            return bool(cursor.fetchone()[0])
    finally:
        connection.close()


@pytest.mark.slow
def test_capitalised_columns_of_the_customers_and_events_tables_are_read(source, tmp_path):
    """The customers' and events' columns are named by what clv reads (customer_id, an extra
    feature such as loyalty_score): a table whose names have capitals, found only in double
    quotes on PostgreSQL, is read as on DuckDB, where names are not case-sensitive."""
    inputs = source.split(".")[0]
    connection = postgres_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'create table "{inputs}".customers ("Customer_ID" text, '
                           '"Signup_Date" text, "Country" text, "Loyalty_Score" numeric)')
            cursor.execute(f"insert into \"{inputs}\".customers values "
                           "('17850', '11/20/2010 0:00', 'UK', 3.5), ('13047', null, 'FR', 1)")
            cursor.execute(f'create table "{inputs}".events ("Customer_ID" text, '
                           '"Event_At" timestamp, "Event_Type" text)')
            cursor.execute(f"insert into \"{inputs}\".events values "
                           "('17850', '2010-12-02 10:00', 'Page_View')")
        connection.commit()
    finally:
        connection.close()
    schema = schema_name("clv_pgin_attributes")
    clv_build("postgres", {**RUN_VARS, "clv_transactions": source, "clv_columns": COLUMNS,
                           "clv_customers": f"{inputs}.customers",
                           "clv_events": f"{inputs}.events",
                           "clv_extra_features": ["Loyalty_Score"]},
              tmp_path, {"CLV_SCHEMA": schema, **postgres_settings()},
              models=["stg_clv__customers", "stg_clv__events"])
    connection = postgres_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("select customer_id, cast(signup_date as text), country, "
                           f"loyalty_score from {schema}.stg_clv__customers order by 1")
            customers = cursor.fetchall()
            cursor.execute("select customer_id, cast(event_at as text), event_type "
                           f"from {schema}.stg_clv__events")
            events = cursor.fetchall()
    finally:
        connection.close()
    assert customers == [("13047", None, "FR", 1.0), ("17850", "2010-11-20", "UK", 3.5)]
    assert events == [("17850", "2010-12-02 10:00:00", "page_view")]
