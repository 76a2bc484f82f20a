"""The Studio's parameter form as data: every parameter path of the config grouped for the form,
its value as text, and a base preset plus edited texts turned into a validated config and its
coordinates (what differs from the base, by path).

Texts follow :func:`fastface.method.paths.parse_value` (numbers, true/false, names, /-joined lists
and schedules, ``none``); every edit goes through :func:`fastface.method.paths.set_value`, so the
form refuses exactly what a config file or ``--vary`` refuses, with the same message.
"""
from __future__ import annotations

from typing import Any, Mapping

from fastface.method.config import ConfigError, FastFaceConfig
from fastface.method.paths import get_value, param_paths, parse_path, parse_value, set_value

#: the form's sections: title -> path prefixes (a path goes to the first section whose prefix it has)
SECTIONS = (
    ("Attention manipulation (AM)", ("am.kind", "am.parts", "am.steps", "am.tokens")),
    ("AM1: scale-power", ("am.am1.",)),
    ("AM2: scheduled softmax", ("am.am2.",)),
    ("DCG guidance", ("guidance.",)),
    ("Adapter scales", ("ip_scale", "lora_scale")),
)
#: fields with a fixed set of values (the form shows a choice)
CHOICES = {
    "am.kind": ("none", "am1", "am2"),
    "guidance.variant": ("1", "2", "3"),
    "guidance.rescale_mode": ("release", "paper"),
    "am.am2.normalization": ("batch", "branch"),
    "am.am2.quantile_dtype": ("float32", "float16"),
    "am.am2.invert_first_token": ("true", "false"),
}


def text_of(value: Any) -> str:
    """A value as the form shows it (the inverse of parse_value)."""
    if isinstance(value, (list, tuple)):
        return "/".join(text_of(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def sections() -> list[tuple[str, list[str]]]:
    """(title, paths) in form order; every path of :func:`param_paths` appears once (a field
    added to the config later lands in "Other")."""
    out: dict[str, list[str]] = {title: [] for title, _ in SECTIONS}
    other = []
    for path in param_paths():
        for title, prefixes in SECTIONS:
            if any(path == p or (p.endswith(".") and path.startswith(p)) for p in prefixes):
                out[title].append(path)
                break
        else:
            other.append(path)
    result = [(t, paths) for t, paths in out.items() if paths]
    return result + ([("Other", other)] if other else [])


def form_texts(config: FastFaceConfig) -> dict[str, str]:
    """path -> the config's value as text, for every parameter path."""
    return {p: text_of(get_value(config, p)) for p in param_paths()}


def parse_path_lines(text: str) -> list[tuple[str, str]]:
    """``PATH=value`` lines (blank lines and ``#`` comments skipped) -> (path, value) pairs."""
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"edit line {n} {line!r}: expected PATH=value, e.g. guidance.beta[3]=3")
        path, value = line.split("=", 1)
        out.append((path.strip(), value.strip()))
    return out


def apply_edits(base: FastFaceConfig, edits: Mapping[str, str] | list[tuple[str, str]], num_steps: int, *,
                name: str | None = None) -> tuple[FastFaceConfig | None, dict[str, Any], list[str]]:
    """The base with each edited text applied in order: (config, coords, errors).

    ``edits``: path -> text (the form's fields; a text equal to the base's is no edit) or
    (path, text) pairs (``PATH=value`` lines; an indexed path edits one step). ``coords``: each
    edited path -> its value in the result. On any error the config is None and ``errors`` holds
    one line per bad edit (each naming its path and the allowed values)."""
    items = list(edits.items()) if isinstance(edits, Mapping) else list(edits)
    base_texts = form_texts(base)
    config, coords, errors = base, {}, []
    for path, text in items:
        try:
            p = parse_path(path)
            if p.index is None and base_texts.get(p.field) == text.strip():
                continue
            config = set_value(config, p, parse_value(p, text), num_steps=num_steps)
            coords[str(p)] = get_value(config, p)
        except ConfigError as e:
            errors.append(str(e))
    if errors:
        return None, {}, errors
    try:
        config.validate_for_steps(num_steps)
    except ConfigError as e:
        return None, {}, [str(e)]
    if name is not None:
        config = FastFaceConfig.from_dict({**config.to_dict(), "name": name})
    return config, coords, []
