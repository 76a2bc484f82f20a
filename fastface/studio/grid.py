"""Parameter grids in the Studio: the cells of one or two parameter paths over a base preset, what
is still missing of them, and the metrics of a generated or captured grid along one axis.

A cell's identity is its config (canonical JSON, :func:`config_key`): a cell generated once in a
session, or kept in the store, is not generated again. Metrics along an axis are the mean over a
grid's samples with the Student-t interval of :func:`fastface.evaluation.stats.t_interval` (the
interval of ``fastface report``); with one sample per cell the interval is undefined and left out.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from fastface.method.config import ConfigError, FastFaceConfig
from fastface.method.paths import GridCell, ParamPath, grid_cells, parse_path, parse_value
from fastface.studio.edits import text_of

#: the metrics a Studio grid shows per cell and along an axis (sweep metric names)
METRICS = ("id_sim", "face_size", "face_detected")
MAX_CELLS = 36


def config_key(config: FastFaceConfig) -> str:
    """A short stable key of a config (what makes a grid cell)."""
    return hashlib.sha1(config.to_json().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Axis:
    """One axis of a grid: a parameter path and its values (parsed, validated)."""

    path: ParamPath
    values: tuple

    @classmethod
    def parse(cls, path: str, values_text: str) -> "Axis":
        """``path`` and comma-separated values (the --vary syntax); raises ConfigError."""
        p = parse_path(path)
        values = tuple(parse_value(p, v) for v in values_text.split(",") if v.strip())
        if not values:
            raise ConfigError(f"{p}: no values; give comma-separated values, e.g. 1.0,1.2,1.45")
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError(f"{p}: a value is repeated in {values_text!r}")
        return cls(p, values)

    @property
    def name(self) -> str:
        return str(self.path)


def plan(base: FastFaceConfig, axes: Sequence[Axis], num_steps: int) -> list[GridCell]:
    """Every cell (rows = first axis, columns = second), validated for ``num_steps``."""
    if not 1 <= len(axes) <= 2:
        raise ConfigError(f"a grid takes one or two parameter paths, not {len(axes)}")
    n = int(np.prod([len(a.values) for a in axes]))
    if n > MAX_CELLS:
        raise ConfigError(f"the grid has {n} cells; give at most {MAX_CELLS} (fewer values per path)")
    return grid_cells(base, [(a.path, list(a.values)) for a in axes], num_steps=num_steps)


def missing(cells: Sequence[GridCell], have: set[str]) -> list[GridCell]:
    """The cells whose config key is not in ``have``."""
    return [c for c in cells if config_key(c.config) not in have]


def cell_table(cells: Sequence[GridCell], outcomes: dict[str, object]) -> pd.DataFrame:
    """One row per cell: coordinates (as text and value), id_sim, face_size, face_detected, key.
    ``outcomes``: config key -> :class:`fastface.studio.engine.Outcome` (missing cells: NaN)."""
    rows = []
    for c in cells:
        key = config_key(c.config)
        o = outcomes.get(key)
        row = {"key": key, "label": c.label}
        for i, (path, value) in enumerate(c.coords.items()):
            row[f"axis{i}"] = path
            row[f"value{i}"] = text_of(value)
        row["id_sim"] = np.nan if o is None or o.id_sim is None else float(o.id_sim)
        row["face_size"] = np.nan if o is None or o.face_size is None else float(o.face_size)
        row["face_detected"] = np.nan if o is None or o.detected is None else float(o.detected)
        row["generated"] = o is not None and o.ok
        rows.append(row)
    return pd.DataFrame(rows)


def along_axis(values: pd.DataFrame, axis: str, metric: str, by: str | None = None,
               level: float = 0.95) -> pd.DataFrame:
    """Mean of ``metric`` per value of ``axis`` (and per value of ``by``) over the samples, with
    the Student-t interval and the counts: n (samples with a value) and n_missing (without one,
    e.g. no face detected: they are left out of the mean, and counted).

    ``values``: one row per (sample, cell) with the columns ``axis``, ``by`` and ``metric``."""
    from fastface.evaluation.stats import t_interval

    keys = [axis] + ([by] if by else [])
    out = []
    for k, g in values.groupby(keys, sort=False):
        k = k if isinstance(k, tuple) else (k,)
        v = pd.to_numeric(g[metric], errors="coerce").to_numpy(dtype=float)
        ok = v[np.isfinite(v)]
        lo, hi = t_interval(ok, level) if ok.size >= 2 else (np.nan, np.nan)
        out.append({**dict(zip(keys, k)), "mean": float(ok.mean()) if ok.size else np.nan, "lo": lo, "hi": hi,
                    "n": int(ok.size), "n_missing": int(v.size - ok.size)})
    return pd.DataFrame(out, columns=keys + ["mean", "lo", "hi", "n", "n_missing"])


def coords_json(coords: dict) -> str:
    """Coordinates as canonical JSON (the form they are stored in)."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in coords.items()}, sort_keys=True)
