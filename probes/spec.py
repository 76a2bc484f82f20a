"""What the attention probes capture: :class:`CaptureSpec` (frozen, validated, JSON round-trip).

A spec selects maps along every axis of the decoupled attention ``A`` [batch, heads,
queries, tokens] that the FastFace processors emit, and how they are stored:

- ``sites``: site keys, ``fnmatch`` globs (``'up_blocks.0.*'``) or UNet parts
  (``'down'``/``'mid'``/``'up'``); ``None`` = every IP-Adapter site;
- ``steps``: denoising step indices (0-based); ``None`` = all;
- ``tokens``: ID tokens 0..3; ``None`` = all four; ``token_sum`` adds the map of all four tokens
  summed (stored as token -1);
- ``branches``: DCG branch names of :data:`fastface.method.guidance.LAYOUTS` ('uncond', 'id', 'text',
  'text_id'); default the conditioned branch ``('text_id',)``. A branch absent from a step's
  batch is skipped and counted (``Probe.skipped``); ``full_batch=True`` makes the caller run
  all three branches of the variant at every step;
- ``heads``: 'mean' | 'max' over heads (one map, head -1) or 'each' (one map per head);
- ``stages``: subset of ('pre', 'post');
- ``resolution``: ``None`` = native query grid; an int = largest side to area-average down to
  (aspect kept, never upsampled);
- ``dtype``: storage of the maps, 'float16' (store encoding 'f16') or 'uint8' ('u8');
- ``keep_maps``: False = summaries only (store encoding 'none');
- ``balance``: record the ID-versus-text balance (the norms of the decoupled block's two terms,
  cheap scalars and 16-cell norm maps) at the selected sites and steps, for every branch in the
  batch (default True);
- ``words``: prompt-word maps of the text attention ``softmax(Q K^T / sqrt(d))`` at the same
  sites, steps, branches (those with the text prompt: 'text', 'text_id') and heads as the ID maps:
  ``None`` (default) = none, ``'all'`` = every word of the prompt (start and end included, no
  padding), or word names (``('watercolor', 'library')``, ``'<start>'``, ``'<end>'``); a word's
  sub-word tokens are summed (:mod:`probes.words`). Stored as maps with stream 'text', token -1,
  stage 'pre' and the word.

Fields added after the first stores (``balance``, ``words``) are left out of :meth:`CaptureSpec.to_dict`
while they hold their default, so the stored spec of an existing run keeps its JSON (a resumed
run is the same run).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from probes.sites import PARTS, parse_site

__all__ = ["CaptureSpec", "SpecError", "BRANCHES", "NAMED_SPECS", "named_spec"]

BRANCHES = ("uncond", "id", "text", "text_id")
HEADS = ("mean", "max", "each")
STAGES = ("pre", "post")
DTYPES = {"float16": "f16", "uint8": "u8"}
NUM_TOKENS = 4


class SpecError(ValueError):
    """An invalid capture spec value or key; the message names it."""


def _ints(value: Any, name: str, lo: int, hi: int | None = None) -> tuple[int, ...]:
    values = [value] if isinstance(value, int) else list(value)
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            raise SpecError(f"{name}: {v!r} is not an integer")
        if v < lo or (hi is not None and v > hi):
            raise SpecError(f"{name}: {v} is outside [{lo}, {'inf' if hi is None else hi}]")
        out.append(v)
    if not out:
        raise SpecError(f"{name}: empty; give None for all, or at least one value")
    if len(set(out)) != len(out):
        raise SpecError(f"{name}: duplicate values in {out}")
    return tuple(out)


def _strs(value: Any, name: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else list(value)
    if not values:
        raise SpecError(f"{name}: empty; give at least one value")
    for v in values:
        if not isinstance(v, str) or not v:
            raise SpecError(f"{name}: {v!r} is not a non-empty string")
        if allowed is not None and v not in allowed:
            raise SpecError(f"{name}: {v!r} is not one of {list(allowed)}")
    if len(set(values)) != len(values):
        raise SpecError(f"{name}: duplicate values in {values}")
    return tuple(values)


@dataclass(frozen=True)
class CaptureSpec:
    """What to capture and how to store it (see the module docstring)."""

    sites: tuple[str, ...] | None = None
    steps: tuple[int, ...] | None = None
    tokens: tuple[int, ...] | None = None
    token_sum: bool = False
    branches: tuple[str, ...] = ("text_id",)
    heads: str = "mean"
    stages: tuple[str, ...] = ("pre", "post")
    resolution: int | None = None
    dtype: str = "float16"
    keep_maps: bool = True
    full_batch: bool = False
    balance: bool = True
    words: tuple[str, ...] | str | None = None

    #: later fields and their defaults: omitted from to_dict() when at the default
    _LATER = {"balance": True, "words": None}

    def __post_init__(self) -> None:
        if self.sites is not None:
            sites = _strs(self.sites, "sites")
            for s in sites:  # a part, a glob, or a parseable key
                if s not in PARTS and not any(c in s for c in "*?["):
                    try:
                        parse_site(s)
                    except ValueError as e:
                        raise SpecError(f"sites: {s!r} is neither a part {list(PARTS)}, a glob nor a site key "
                                        f"({e})") from None
            object.__setattr__(self, "sites", sites)
        if self.steps is not None:
            object.__setattr__(self, "steps", _ints(self.steps, "steps", 0))
        if self.tokens is not None:
            object.__setattr__(self, "tokens", _ints(self.tokens, "tokens", 0, NUM_TOKENS - 1))
        object.__setattr__(self, "branches", _strs(self.branches, "branches", BRANCHES))
        object.__setattr__(self, "stages", _strs(self.stages, "stages", STAGES))
        if self.heads not in HEADS:
            raise SpecError(f"heads: {self.heads!r} is not one of {list(HEADS)}")
        if self.dtype not in DTYPES:
            raise SpecError(f"dtype: {self.dtype!r} is not one of {list(DTYPES)}")
        if self.resolution is not None:
            r = self.resolution
            if isinstance(r, bool) or not isinstance(r, int) or r < 1:
                raise SpecError(f"resolution: {r!r} must be None (native) or a positive integer side")
        if self.words is not None:
            if self.words != "all":
                words = tuple(w.strip().lower() for w in _strs(self.words, "words"))
                if any(not w or " " in w for w in words):
                    raise SpecError(f"words: {list(self.words)} must be single words (no spaces), or 'all'")
                object.__setattr__(self, "words", words)
        for name in ("token_sum", "keep_maps", "full_batch", "balance"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"{name}: {getattr(self, name)!r} must be true or false")

    # --- derived ------------------------------------------------------------------------
    @property
    def token_list(self) -> tuple[int, ...]:
        """Stored token indices in order: the selected ID tokens, then -1 for the sum."""
        toks = self.tokens if self.tokens is not None else tuple(range(NUM_TOKENS))
        return toks + ((-1,) if self.token_sum else ())

    @property
    def encoding(self) -> str:
        """The store's encoding name: 'f16', 'u8', or 'none' when ``keep_maps`` is False."""
        return DTYPES[self.dtype] if self.keep_maps else "none"

    def replace(self, **changes: Any) -> "CaptureSpec":
        return dataclasses.replace(self, **changes)

    # --- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in dataclasses.fields(self)
                if not (f.name in self._LATER and getattr(self, f.name) == self._LATER[f.name])}

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, **kw)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CaptureSpec":
        if not isinstance(data, dict):
            raise SpecError(f"capture spec: expected an object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SpecError(f"capture spec: unknown key(s) {unknown}; valid keys are {sorted(names)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "CaptureSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"capture spec: not valid JSON ({e})") from e
        return cls.from_dict(data)


#: Named specs: summaries of head-mean maps only; head-mean maps of every site at native
#: resolution (conditioned branch); and everything (all branches, every head, pre + post,
#: all tokens + their sum, all three branches run at every step).
NAMED_SPECS: dict[str, CaptureSpec] = {
    "summaries_only": CaptureSpec(heads="mean", keep_maps=False),
    "head_mean": CaptureSpec(heads="mean", keep_maps=True),
    "everything": CaptureSpec(branches=BRANCHES, heads="each", stages=STAGES, token_sum=True, keep_maps=True,
                              full_batch=True),
}


def named_spec(name: str) -> CaptureSpec:
    if name not in NAMED_SPECS:
        raise SpecError(f"unknown capture spec {name!r}; named specs: {sorted(NAMED_SPECS)}")
    return NAMED_SPECS[name]
