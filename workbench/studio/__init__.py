"""The Studio page's parts (Streamlit rendering; the page is workbench/views/studio.py):

- :mod:`workbench.studio.setup`: the loaded model (one per server process), the subject
  (identity or uploaded photo, prompt, seed) and the base preset;
- :mod:`workbench.studio.form`: the parameter form and the edits by path;
- :mod:`workbench.studio.results`: Generate's images, overlays, difference, histograms and faces;
- :mod:`workbench.studio.grid`: grid mode (one or two paths, stored grids, the grid figure).

The work itself is :mod:`fastface.studio` (engine, maps, edits, grids, Keep).
"""
