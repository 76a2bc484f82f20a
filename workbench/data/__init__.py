"""The workbench's data side, between the pages and the charts: the pages ask these modules for
DataFrames and hand them to :mod:`workbench.charts`.

- :mod:`workbench.data.queries`: the store path, cached queries (``sql/*.sql``) on a read-only
  connection, the session's selection state.
- :mod:`workbench.data.selection`: sweeps, the default runs, Compare's baseline pairing.
- :mod:`workbench.data.sql_console`: the SQL page's read-only sandbox.
- :mod:`workbench.data.stats`: paired statistics (``fastface report``'s, from fastface.evaluation.stats).
- :mod:`workbench.data.labels`: runs labelled by what differs between them.
- :mod:`workbench.data.metric_names`: short unique names of the metric series.
- :mod:`workbench.data.export`: the figures registry and figure export (PNG/SVG/PDF).
- :mod:`workbench.data.standard_figures`: the Figures page's standard set, each from its own query.
- :mod:`workbench.data.binning`: binned means with t-intervals (ID similarity vs face size).
- :mod:`workbench.data.progress`: the "capture in progress: N of M samples" line.
"""
