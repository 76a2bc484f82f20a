"""The Studio's engine (issue 26): one loaded pipeline per (checkpoint, world) kept for a server
process, generation of a base preset and its edits on one seed with the attention probe held in
memory, and the grids of parameter values. No Streamlit here: the workbench's Studio page renders
what these modules return.

- :mod:`fastface.studio.engine`: :class:`StudioEngine` (load once, one generation at a time, the
  reference photo, :class:`Outcome` per image: image, maps, faces, metrics as the sweep records them);
- :mod:`fastface.studio.maps`: :class:`MapSet`, the captured maps of one image selected by part/site,
  step, ID tokens and stage, and their value histograms (the paper's Fig. 6);
- :mod:`fastface.studio.grid`: the cells of a one- or two-path grid over a base preset and the
  metrics table of a generated grid;
- :mod:`fastface.studio.keep`: Keep, writing outcomes as runs into a store.
"""
