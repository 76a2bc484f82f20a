"""Attention probes: capture the IP-Adapter's decoupled attention maps during FastFace generation.

- :mod:`probes.sites`    parse diffusers processor keys into :class:`Site` (part, block, grid)
- :mod:`probes.spec`     :class:`CaptureSpec`: what to capture and how to store it; named specs
- :mod:`probes.reduce`   on-device reductions, summaries and quantisation (torch)
- :mod:`probes.transfer` one packed device-to-host copy per denoising step
- :mod:`probes.capture`  :class:`Probe` (the observer) and the ``capture`` context manager

The context manager is imported from its module (``from probes.capture import capture``); the
package does not re-export it so that the name ``probes.capture`` keeps meaning the module.
Imports are lazy so that ``probes.spec`` / ``probes.sites`` stay light (no torch).
"""
from __future__ import annotations

__all__ = ["Site", "parse_site", "sites_of", "CaptureSpec", "named_spec", "NAMED_SPECS", "Probe"]

_WHERE = {
    "Site": "probes.sites", "parse_site": "probes.sites", "sites_of": "probes.sites",
    "CaptureSpec": "probes.spec", "named_spec": "probes.spec", "NAMED_SPECS": "probes.spec",
    "Probe": "probes.capture",
}


def __getattr__(name: str):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'probes' has no attribute {name!r}")
