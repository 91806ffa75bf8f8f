"""Writes the HTML report of this build to clv_report_path: the model against the baselines,
the predictions, their history and the data quality, as one self-contained file."""

from clv import report
from clv.warehouse import connect


def model(dbt, session):
    dbt.config(materialized="table")
    # the tables the report reads, opened only when read, so that one that is missing becomes a
    # note in the report instead of a failed build; dbt finds these refs (the build order) in
    # the dict literal, not inside a lambda passed to a call
    tables = {
        "clv_predictions": lambda: dbt.ref("clv_predictions"),
        "clv_segment_summary": lambda: dbt.ref("clv_segment_summary"),
        "clv_total_summary": lambda: dbt.ref("clv_total_summary"),
        "clv_gain_curve": lambda: dbt.ref("clv_gain_curve"),
        "clv_decile_calibration": lambda: dbt.ref("clv_decile_calibration"),
        "clv_feature_importance": lambda: dbt.ref("clv_feature_importance"),
        "clv_predictions_history": lambda: dbt.ref("clv_predictions_history"),
        "clv_data_quality": lambda: dbt.ref("clv_data_quality"),
        "clv_prediction_changes": lambda: dbt.ref("clv_prediction_changes"),
        "clv_prediction_explanations": lambda: dbt.ref("clv_prediction_explanations"),
        "clv_model_evaluation": lambda: dbt.ref("clv_model_evaluation"),
        "clv_model_registry": lambda: dbt.ref("clv_model_registry"),
        "int_clv__as_of_date": lambda: dbt.ref("int_clv__as_of_date"),
    }
    # clv_report_path and clv_currency, passed in the model's meta (_report.yml): a Python
    # model has no var()
    meta = dbt.config.get("meta", {})
    return report.write_report(connect(session), tables,
                               meta.get("clv_report_path", report.DEFAULT_PATH),
                               meta.get("clv_currency", ""))
