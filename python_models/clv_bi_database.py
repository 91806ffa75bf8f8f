"""Copies every public table into a DuckDB database file (clv_bi_database_path), replaced
atomically, for BI tools that connect to a database and must never block `dbt build`."""

from clv.pipeline import handoff
from clv.pipeline.settings import RunSettings
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    warehouse = connect(session)
    run = RunSettings.for_step(warehouse.read(dbt.ref("clv_run_settings")),
                               dbt.this)
    # The public tables (access: public, with a contract), opened one at a time by the copy; dbt
    # finds these refs (the build order: the copy waits for every table and its tests) in the
    # dict literal. tests/test_bi_handoff.py checks that they are exactly the public marts.
    tables = {
        "clv_predictions": lambda: dbt.ref("clv_predictions"),
        "clv_predictions_history": lambda: dbt.ref("clv_predictions_history"),
        "clv_prediction_changes": lambda: dbt.ref("clv_prediction_changes"),
        "clv_prediction_explanations": lambda: dbt.ref("clv_prediction_explanations"),
        "clv_segment_summary": lambda: dbt.ref("clv_segment_summary"),
        "clv_total_summary": lambda: dbt.ref("clv_total_summary"),
        "clv_category_value": lambda: dbt.ref("clv_category_value"),
        "clv_data_quality": lambda: dbt.ref("clv_data_quality"),
        "clv_model_registry": lambda: dbt.ref("clv_model_registry"),
        "clv_model_evaluation": lambda: dbt.ref("clv_model_evaluation"),
        "clv_decile_calibration": lambda: dbt.ref("clv_decile_calibration"),
        "clv_gain_curve": lambda: dbt.ref("clv_gain_curve"),
        "clv_feature_importance": lambda: dbt.ref("clv_feature_importance"),
    }
    return handoff.copy_to_database(warehouse, tables, run.bi_database_path)
