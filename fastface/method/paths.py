"""Parameter paths: every field of a :class:`FastFaceConfig` addressed by a dotted path with an
optional step index, read, edited and validated (issue 26).

- ``am.am1.scale_up``, ``am.kind``, ``am.parts``, ``ip_scale``: a whole field;
- ``am.am2.steepness[0]``, ``guidance.beta[2]``: one step of a per-step schedule. A one-value
  (constant) schedule is expanded to ``num_steps`` values before one step is edited.

Values come as Python values or as text (the CLI's ``--vary PATH=v1,v2``, a form field):
numbers, ``true``/``false``, names, lists joined by ``/`` (``am.parts=down/up``,
``am.am2.steepness=7.5/5/5/5``) and ``none`` for an optional field's "unset". Every edit goes
through :meth:`FastFaceConfig.from_dict`, so a cell of a grid is validated exactly like a config
file; errors are :class:`ConfigError` lines that name the path and its allowed values.
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass
from typing import Any, Sequence

from fastface.method.config import AM1Config, AM2Config, AMConfig, ConfigError, FastFaceConfig, GuidanceConfig

__all__ = ["ParamPath", "parse_path", "param_paths", "describe", "get_value", "set_value", "parse_value",
           "parse_vary", "grid_cells", "GridCell"]

_PATH_RE = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)(?:\[(\d+)\])?$")
_CLASSES = {"": FastFaceConfig, "guidance": GuidanceConfig, "am": AMConfig, "am.am1": AM1Config,
            "am.am2": AM2Config}
#: fields that are labels, not parameters
_NOT_PARAMETERS = {"name", "description"}
#: allowed values of the fields with a fixed set (the rest: numbers / lists, checked by the config)
_CHOICES = {
    "guidance.variant": "1, 2, 3 (DCG_1..DCG_3)", "guidance.rescale_mode": "release, paper",
    "am.kind": "none, am1, am2", "am.parts": "a /-joined list of down, mid, up (e.g. down/up)",
    "am.am2.normalization": "batch, branch", "am.am2.quantile_dtype": "float32, float16",
    "am.am2.invert_first_token": "true, false",
    "am.tokens": "none (all ID tokens) or /-joined token indices (e.g. 1/2/3)",
    "am.steps": "none (all steps) or /-joined step indices (e.g. 0/1)",
    "guidance.alpha": "a number or one number per step joined by / (or none: the checkpoint's scale)",
    "guidance.beta": "a number or one number per step joined by / (or none: the checkpoint's scale)",
    "am.am2.adain_weight": "none (off), a number in [0, 1] or one per step joined by /",
}
#: per-step schedules (fields whose value is a tuple with one value per step, or one constant)
SCHEDULES = ("guidance.alpha", "guidance.beta", "am.am2.steepness", "am.am2.quantile", "am.am2.scale",
             "am.am2.adain_weight")


@dataclass(frozen=True)
class ParamPath:
    """A parsed path: the field's dotted name and an optional step index."""

    field: str
    index: int | None = None

    def __str__(self) -> str:
        return self.field if self.index is None else f"{self.field}[{self.index}]"


def param_paths() -> list[str]:
    """Every addressable field, as dotted paths (without step indices)."""
    out: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            path = f"{prefix}.{f.name}" if prefix else f.name
            if path in _CLASSES:
                walk(_CLASSES[path], path)
            elif path not in _NOT_PARAMETERS:
                out.append(path)

    walk(FastFaceConfig, "")
    return out


def describe(path: str) -> str:
    """The allowed values of a field, for messages and form help."""
    field = parse_path(path).field
    if field in _CHOICES:
        return _CHOICES[field]
    if field in SCHEDULES:
        return "a number or one number per step joined by / (index one step with [i])"
    return "a number"


def parse_path(text: str) -> ParamPath:
    m = _PATH_RE.match(text.strip())
    valid = param_paths()
    if not m or m.group(1) not in valid:
        raise ConfigError(f"parameter path {text!r} is not a field of the config; valid paths are "
                          f"{', '.join(valid)} (a per-step schedule takes a step index, e.g. am.am2.steepness[0])")
    field, index = m.group(1), m.group(2)
    if index is not None and field not in SCHEDULES:
        raise ConfigError(f"parameter path {text!r}: {field} is not a per-step schedule, so it takes no "
                          f"[step] index; schedules are {', '.join(SCHEDULES)}")
    return ParamPath(field, None if index is None else int(index))


def _walk(data: dict, field: str) -> tuple[dict, str]:
    *parents, leaf = field.split(".")
    for p in parents:
        data = data[p]
    return data, leaf


def get_value(config: FastFaceConfig, path: str | ParamPath) -> Any:
    """The value at ``path`` (a schedule's one step when indexed; a constant schedule at any step)."""
    p = parse_path(path) if isinstance(path, str) else path
    holder, leaf = _walk(config.to_dict(), p.field)
    value = holder[leaf]
    if p.index is None:
        return tuple(value) if isinstance(value, list) else value
    if value is None:
        raise ConfigError(f"{p}: {p.field} is unset (none); set the whole schedule before one step")
    if len(value) == 1:
        return value[0]
    if p.index >= len(value):
        raise ConfigError(f"{p}: step {p.index} is past the schedule's {len(value)} values (steps 0-{len(value) - 1})")
    return value[p.index]


def set_value(config: FastFaceConfig, path: str | ParamPath, value: Any, *, num_steps: int | None = None,
              name: str | None = None) -> FastFaceConfig:
    """A validated copy of ``config`` with ``path`` set to ``value`` (text is parsed first).

    Editing one step of a constant schedule expands it to ``num_steps`` values (required then).
    """
    p = parse_path(path) if isinstance(path, str) else path
    if isinstance(value, str):
        value = parse_value(p, value)
    given = value
    data = config.to_dict()
    holder, leaf = _walk(data, p.field)
    if p.index is not None:
        current = holder[leaf]
        if current is None:
            raise ConfigError(f"{p}: {p.field} is unset (none); set the whole schedule before one step")
        if isinstance(value, (list, tuple)):
            raise ConfigError(f"{p}: one step takes one number, got {value!r}")
        schedule = list(current)
        if len(schedule) == 1:
            if num_steps is None:
                raise ConfigError(f"{p}: {p.field} is one constant value; give the run's step count to edit one step")
            schedule = schedule * num_steps
        if p.index >= len(schedule):
            raise ConfigError(f"{p}: step {p.index} is past the schedule's {len(schedule)} steps "
                              f"(steps 0-{len(schedule) - 1})")
        schedule[p.index] = value
        value = schedule
    holder[leaf] = list(value) if isinstance(value, tuple) else value
    if name is not None:
        data["name"] = name
    try:
        out = FastFaceConfig.from_dict(data)
    except ConfigError as e:
        raise ConfigError(f"{p}={_text(given)}: {e} (allowed: {describe(p.field)})") from None
    if num_steps is not None:
        out.validate_for_steps(num_steps)
    return out


def parse_value(path: str | ParamPath, text: str) -> Any:
    """A text value for ``path``: numbers, true/false, names, /-joined lists, ``none``."""
    p = parse_path(path) if isinstance(path, str) else path
    t = text.strip()
    if t.lower() in ("none", "null"):
        return None
    if p.field == "am.am2.invert_first_token":
        if t.lower() not in ("true", "false"):
            raise ConfigError(f"{p}={t}: not true or false")
        return t.lower() == "true"
    if p.field in ("am.kind", "guidance.rescale_mode", "am.am2.normalization", "am.am2.quantile_dtype"):
        return t
    if p.field == "am.parts":
        return tuple(x for x in t.split("/") if x)
    items = [x for x in t.split("/") if x]
    try:
        if p.field in ("am.tokens", "am.steps", "guidance.variant"):
            nums = [int(x) for x in items]
        else:
            nums = [float(x) for x in items]
    except ValueError:
        raise ConfigError(f"{p}={t}: not {describe(p.field)}") from None
    if not nums:
        raise ConfigError(f"{p}: empty value; give {describe(p.field)}")
    if p.field in SCHEDULES and p.index is None or p.field in ("am.tokens", "am.steps"):
        return tuple(nums)
    if len(nums) != 1:
        raise ConfigError(f"{p}={t}: takes one value, not {len(nums)}")
    return nums[0]


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "/".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def parse_vary(text: str) -> tuple[ParamPath, list[Any]]:
    """``PATH=v1,v2,...`` (the CLI's ``--vary``) -> the path and its parsed values."""
    if "=" not in text:
        raise ConfigError(f"--vary {text!r}: expected PATH=v1,v2,... (e.g. am.am1.scale_up=1.0,1.45)")
    path_text, values_text = text.split("=", 1)
    p = parse_path(path_text)
    values = [parse_value(p, v) for v in values_text.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"--vary {text!r}: no values after '='; give PATH=v1,v2,...")
    if len({repr(v) for v in values}) != len(values):
        raise ConfigError(f"--vary {text!r}: a value is repeated")
    return p, values


@dataclass(frozen=True)
class GridCell:
    """One cell of a parameter grid: its coordinates (path text -> value) and its config."""

    coords: dict[str, Any]
    config: FastFaceConfig

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={_text(v)}" for k, v in self.coords.items())


def grid_cells(base: FastFaceConfig, axes: Sequence[tuple[ParamPath, Sequence[Any]]], *,
               num_steps: int | None = None) -> list[GridCell]:
    """The cartesian product of ``axes`` over ``base``; every cell validated (the first bad cell's
    error names its path and value). Cells keep the base's name (the preset); their coordinates say
    what differs."""
    paths = [str(p) for p, _ in axes]
    if len(set(paths)) != len(paths):
        raise ConfigError(f"--vary: a path is given twice ({', '.join(paths)}); give each path once")
    cells = []
    for values in itertools.product(*(vals for _, vals in axes)):
        cfg = base
        coords = {}
        for (p, _), v in zip(axes, values):
            cfg = set_value(cfg, p, v, num_steps=num_steps)
            coords[str(p)] = v
        cells.append(GridCell(coords, cfg))
    return cells
