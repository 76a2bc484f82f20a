"""Labels of runs by what differs between them (pure functions, no Streamlit).

Compared runs are told apart by the fields in which they differ, never by their run ids: the
preset, the IP-Adapter scale (``λ=``), the LoRA scale, the checkpoint, the seed, and any value
of the stored ``FastFaceConfig`` (``config_json`` of the ``runs`` query, flattened to dotted
paths such as ``am.am1.scale_up`` or ``am.am2.steepness[0]``) that differs between runs **of
the same preset** (a value that only follows the preset -- AM kind, DCG alpha -- is said by the
preset's name already, and ``name`` / ``description`` always follow it).  What all runs share
goes into one caption (``common``).

>>> runs = [dict(run_id="a", preset="am1", ip_scale=0.5, checkpoint="hyper",
...              config={"am": {"am1": {"scale_up": 1.45}}}),
...         dict(run_id="b", preset="am1", ip_scale=0.5, checkpoint="hyper",
...              config={"am": {"am1": {"scale_up": 1.2}}})]
>>> differing_labels(runs).labels
{'a': 'am.am1.scale_up=1.45', 'b': 'am.am1.scale_up=1.2'}
>>> differing_labels(runs).common
'am1 · λ=0.5 · checkpoint hyper'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: run fields in label order: (key, how a value is written)
META_FIELDS = (
    ("preset", lambda v: str(v)),
    ("ip_scale", lambda v: f"λ={_num(v)}"),
    ("lora_scale", lambda v: f"LoRA={_num(v)}"),
    ("checkpoint", lambda v: str(v)),
    ("seed", lambda v: f"seed {_num(v)}"),
)
#: config paths never shown (they follow the preset or repeat a run field above)
HIDDEN_PATHS = ("name", "description", "ip_scale", "lora_scale", "preset", "checkpoint", "seed")
SEP = " · "
MISSING = "—"


@dataclass(frozen=True)
class RunLabels:
    labels: dict[str, str]        # run_id -> what differs ('ff-am2 · λ=0.8')
    common: str                   # what every run shares ('checkpoint hyper · LoRA=1'), '' if nothing
    fields: tuple[str, ...]       # the fields the labels are made of, in order


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _missing(v) -> bool:
    if v is None:
        return True
    try:
        return isinstance(v, float) and math.isnan(v)
    except TypeError:
        return False


def flatten(config, prefix: str = "") -> dict[str, object]:
    """A config dict as {dotted path: leaf value}; list items as ``path[i]`` (a list of dicts
    is flattened item by item; an empty list or dict is one leaf)."""
    out: dict[str, object] = {}
    if isinstance(config, Mapping) and config:
        for k, v in config.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(config, (list, tuple)) and config:
        for i, v in enumerate(config):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = list(config) if isinstance(config, tuple) else config
    return out


def _config(run: Mapping) -> dict:
    c = run.get("config")
    if c is None:
        text = run.get("config_json")
        if isinstance(text, str) and text.strip():
            try:
                c = json.loads(text)
            except ValueError:
                c = None
    return c if isinstance(c, Mapping) else {}


def _key(v):
    """A hashable, comparable form of a value (floats compared at 1e-9)."""
    if _missing(v):
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return round(float(v), 9)
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, (list, dict)) else v


def _value_text(v) -> str:
    if _missing(v):
        return MISSING
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return _num(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=str)
    return str(v)


def _differs(values: Iterable) -> bool:
    return len({_key(v) for v in values}) > 1


def differing_labels(runs: Iterable[Mapping]) -> RunLabels:
    """Labels of ``runs`` (mappings with run_id and any of preset, ip_scale, lora_scale,
    checkpoint, seed, and ``config`` (a dict) or ``config_json``) made of the fields that differ.

    Runs equal in every field get their run id appended (the only thing that tells them apart);
    a single run is labelled by its preset and IP scale."""
    runs = list(runs)
    if not runs:
        return RunLabels({}, "", ())
    flat = {r["run_id"]: flatten(_config(r)) for r in runs}
    fields: list[str] = []
    for key, _ in META_FIELDS:
        if _differs(r.get(key) for r in runs):
            fields.append(key)
    paths = sorted({p for f in flat.values() for p in f if p.split(".")[0].split("[")[0] not in HIDDEN_PATHS})
    by_preset: dict = {}
    for r in runs:
        by_preset.setdefault(_key(r.get("preset")), []).append(r["run_id"])
    config_paths = [p for p in paths
                    if any(_differs(flat[i].get(p) for i in members) for members in by_preset.values())]
    if len(runs) == 1:
        fields = [k for k in ("preset", "ip_scale") if not _missing(runs[0].get(k))]
    labels = {}
    writers = dict(META_FIELDS)
    for r in runs:
        parts = [writers[k](r.get(k)) if not _missing(r.get(k)) else f"{k} {MISSING}" for k in fields]
        parts += [f"{p}={_value_text(flat[r['run_id']].get(p))}" for p in config_paths]
        labels[r["run_id"]] = SEP.join(parts)
    seen: dict[str, int] = {}
    for text in labels.values():
        seen[text] = seen.get(text, 0) + 1
    for run_id, text in labels.items():
        if seen[text] > 1 or not text:
            labels[run_id] = SEP.join([t for t in (text, run_id) if t])
    common = [writers[k](runs[0].get(k)) if k != "checkpoint" else f"checkpoint {runs[0].get(k)}"
              for k, _ in META_FIELDS
              if k not in fields and not _missing(runs[0].get(k)) and not _differs(r.get(k) for r in runs)]
    return RunLabels(labels, SEP.join(common), tuple(fields) + tuple(config_paths))
