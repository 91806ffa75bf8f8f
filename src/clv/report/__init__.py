"""The HTML report every build writes: charts of the model's validation results, the
predictions, their history and the data quality, in one self-contained file.

- :mod:`~clv.report.svg`: chart primitives (scales, ticks, number formats; line, bar and
  histogram charts as inline SVG);
- :mod:`~clv.report.data`: what the report shows, read (and, for the per-customer tables,
  aggregated) through :class:`clv.warehouse.Warehouse`;
- :mod:`~clv.report.render`: the page, from that data;
- :mod:`~clv.report.write`: the file, replaced atomically, and the dbt model's one-row result;
- :mod:`~clv.report.screenshot`: a PNG of a report in headless Chromium (tests, README).
"""

from clv.report.write import DEFAULT_PATH, write_report

__all__ = ["DEFAULT_PATH", "write_report"]
