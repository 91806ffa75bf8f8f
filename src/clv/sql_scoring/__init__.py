"""Scoring as plain SQL: the exported ONNX network, BG/NBD + Gamma-Gamma and the spend level
compiled into one query any warehouse runs, so predictions need no Python at scoring time.

- :mod:`~clv.sql_scoring.graph`: ONNX graph -> layers of SQL columns (supported operators only);
- :mod:`~clv.sql_scoring.nodes`: the scalar expressions and their emission as layered CTEs;
- :mod:`~clv.sql_scoring.special`: ``ndtri`` and ``hyp2f1`` in SQL;
- :mod:`~clv.sql_scoring.btyd`: BG/NBD + Gamma-Gamma predictions from a saved fit;
- :mod:`~clv.sql_scoring.dialects`: DuckDB, PostgreSQL and Spark differences;
- :mod:`~clv.sql_scoring.query`: the whole prediction, ``compile_scoring_sql``.
"""

from clv.sql_scoring.graph import SUPPORTED_OPERATORS, UnsupportedOperatorError, compile_graph
from clv.sql_scoring.query import compile_scoring_sql, sql_path, write_scoring_sql

__all__ = ["SUPPORTED_OPERATORS", "UnsupportedOperatorError", "compile_graph",
           "compile_scoring_sql", "sql_path", "write_scoring_sql"]
