"""The paper's method (arXiv 2505.21144), and nothing that loads a model or reads a file other
than a preset or a config file.

- :mod:`fastface.method.config`: frozen, validated configurations; the presets (``presets/*.json``).
- :mod:`fastface.method.paths`: every config field addressed by a dotted path (``am.am2.steepness[0]``),
  edited and validated; parameter grids (``--vary``, the Studio).
- :mod:`fastface.method.guidance`: decoupled CFG (DCG): branch layouts, combination, schedules, rescale.
- :mod:`fastface.method.transforms`: attention manipulation (AM1, AM2, AdaIN), pure functions on
  ``[batch, heads, queries, tokens]``.
- :mod:`fastface.method.processor`: the IP-Adapter attention processor that applies them and
  emits the maps to observers (the probes).
"""
