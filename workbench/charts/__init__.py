"""The workbench's charts: pure functions, data in, ``plotly.graph_objects.Figure`` out (no
Streamlit, no store connection), one module per page family.

- :mod:`workbench.charts.attention`: attention maps, histograms, steps, face mass (Samples,
  Attention statistics).
- :mod:`workbench.charts.maps`: decoding the maps on screen (Samples, Attention statistics).
- :mod:`workbench.charts.faces`: face metrics (Faces).
- :mod:`workbench.charts.compare`: paired deltas and fronts (Compare, and ``fastface report``).
- :mod:`workbench.charts.figures`: the Figures page's own charts (ID similarity vs face size).
- :mod:`workbench.charts.quick`: the quick chart of a query (SQL) and run progress (Runs).
- :mod:`workbench.charts.style`: the shared look (preset colours, run labels and symbols) and the
  print layout of an export (``paper``: column widths, fonts in points, legend placement).
"""
