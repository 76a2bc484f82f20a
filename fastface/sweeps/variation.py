"""Parameter grids of a sweep: the cells of ``--vary PATH=v1,v2,...`` over one base preset, their
grid id and the variation metadata stored with each cell's run (``runs.variation_json``,
store/sql/migrations/0004_run_variation.sql; views ``grid_cells`` and ``run_params``).

A cell is a :class:`Variant`: its full config and its coordinates ``{path: value}``
(fastface.method.paths). Every cell of a grid shares the sweep's identities, prompts and seeds;
only the config differs. The Studio's kept edits are variants too (a base with ``coords={}``
beside the edited config), written by :mod:`fastface.sweeps.keep`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from fastface.method.config import ConfigError, FastFaceConfig
from fastface.method.paths import ParamPath, grid_cells, parse_path, parse_vary

__all__ = ["Variant", "parse_axes", "grid_id", "grid_variants", "variation_record", "coords_label",
           "check_vary_flags"]


@dataclass(frozen=True)
class Variant:
    """One run's config and what it varies from the base preset (``{}``: the base itself)."""

    config: FastFaceConfig
    coords: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_plain)


def parse_axes(vary: Sequence[str]) -> list[tuple[ParamPath, list[Any]]]:
    """The axes of ``--vary`` texts, in the order given (ConfigError: one line per bad text)."""
    return [parse_vary(text) for text in vary]


def grid_id(base: str, axes: Sequence[tuple[ParamPath | str, Sequence[Any]]]) -> str:
    """A deterministic id of a grid: its base preset and its axes (paths and values, in order).
    The same ``--vary`` over the same preset gives the same id (a resumed sweep keeps it)."""
    payload = _canonical({"base": base, "axes": [[str(p), [_plain(v) for v in vals]] for p, vals in axes]})
    return f"{base}-{hashlib.sha1(payload.encode()).hexdigest()[:8]}"


def variation_record(base: str, grid: str, coords: dict[str, Any]) -> dict:
    """What ``runs.variation_json`` holds: {"base": preset, "grid": id, "coords": {path: value}}.
    Paths are validated (parse_path); values are stored as the config holds them (lists for
    tuples)."""
    for path in coords:
        parse_path(path)
    return {"base": base, "grid": grid, "coords": {str(k): _plain(v) for k, v in coords.items()}}


def coords_label(coords: dict[str, Any]) -> str:
    """'path=value, ...' (values written as ``--vary`` takes them: lists joined by '/')."""
    def text(v):
        if isinstance(v, (list, tuple)):
            return "/".join(text(x) for x in v)
        return "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)

    return ", ".join(f"{k}={text(v)}" for k, v in coords.items())


def grid_variants(base: FastFaceConfig, axes: Sequence[tuple[ParamPath, Sequence[Any]]],
                  num_steps: int) -> list[Variant]:
    """The cells of a grid over ``base`` (validated for ``num_steps``: a step index past the
    schedule, a value below a minimum, ... raise ConfigError naming the path)."""
    return [Variant(c.config, dict(c.coords)) for c in grid_cells(base, axes, num_steps=num_steps)]


def check_vary_flags(vary: Sequence[str], presets: Sequence[str], scales_given: dict[str, bool]) -> None:
    """Flags that do not go with ``--vary`` (one ConfigError line): a grid varies exactly one base
    preset, and a varied ip_scale / lora_scale is not also swept by --ip-scales / --lora-scales."""
    if not vary:
        return
    problems = []
    if len(presets) != 1:
        problems.append(f"--vary makes a grid over one base preset: give exactly one preset in --presets "
                        f"(got {len(presets)}: {', '.join(presets) or 'none'})")
    fields = set()
    for text in vary:
        try:
            fields.add(parse_path(text.split("=", 1)[0]).field)
        except ConfigError:
            pass  # reported by the grid's validation
    for name, flag in (("ip_scale", "--ip-scales"), ("lora_scale", "--lora-scales")):
        if name in fields and scales_given.get(name):
            problems.append(f"--vary {name}=... and {flag} both set {name}: give its values in one of them "
                            f"(e.g. --vary {name}=0.5,0.8 without {flag})")
    if problems:
        raise ConfigError("; ".join(problems))
