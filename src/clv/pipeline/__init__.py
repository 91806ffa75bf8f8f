"""The pipeline steps the dbt Python models call, one module per job.

- :mod:`~clv.pipeline.settings`: the run's settings, read from the ``clv_run_settings`` row;
- :mod:`~clv.pipeline.registry`: saved models, which one a run uses, the registry table;
- :mod:`~clv.pipeline.training`: read the training sample, train or reuse, evaluate;
- :mod:`~clv.pipeline.scoring`: score every customer and apply the spend level
  (:mod:`clv.level`); also scores outside dbt from a saved scoring run;
- :mod:`~clv.pipeline.evaluation`: the evaluation and decile-calibration tables;
- :mod:`~clv.pipeline.explanations`: feature importance and the reference customer at
  training, per-customer explanations after scoring (the method is :mod:`clv.explain`);
- :mod:`~clv.pipeline.handoff`: the hand-offs to BI tools, the Parquet copy of the predictions
  and the DuckDB copy of the public tables;
- :mod:`~clv.pipeline.backfill`: ``clv-backfill``, a range of past as-of dates scored with the
  saved model into the history;
- :mod:`~clv.pipeline.log`: the ``clv adapter:`` lines of the dbt console and log.

Each step reads the warehouse only through :class:`clv.warehouse.Warehouse`, so the files
under ``python_models/`` stay one call long and no step knows the engine.
"""
