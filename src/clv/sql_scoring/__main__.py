"""``python -m clv.sql_scoring``: write a saved model's scoring query next to its ONNX file."""

from clv.sql_scoring.query import main

raise SystemExit(main())
