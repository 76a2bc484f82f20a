"""Writing variation runs from Python: a base preset and edited configs (the Studio's "Keep", a
grid generated in the browser) become runs of a store exactly as ``fastface capture --vary``
writes them: the full config in ``config_json``, ``variation_json`` {"base", "grid", "coords"},
deterministic run ids, and the same identities, prompts and seeds in every run. Runs, Compare,
SQL (``grid_cells``, ``run_params``) and Figures then see them.

Usage (the face world; ``pipe`` is an already loaded FastFacePipeline, reused, not reloaded)::

    from fastface.method.config import load_preset
    from fastface.method.paths import set_value
    from fastface.sweeps.keep import one_sample_dataset, studio_spec, write_variants

    base = load_preset("ff-am1")
    edited = set_value(base, "am.am1.scale_up", 1.2, num_steps=4)
    spec = studio_spec(checkpoint="hyper", world="face", seed=50)
    data = one_sample_dataset("alice", "/photos/alice.png", "a photo of a person in a park")
    plans, counts = write_variants("runs/my-store", spec, data, "ff-am1",
                                   [(base, {}), (edited, {"am.am1.scale_up": 1.2})],
                                   load=lambda checkpoint: pipe)
    [p.run_id for p in plans]  # the base's and the edit's run ids; the same call again writes nothing
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Sequence

from fastface.method.config import ConfigError, FastFaceConfig
from fastface.sweeps.dataset import Dataset, IdentitySpec, PromptSpec, category_of
from fastface.sweeps.sweep import RunPlan, SweepSpec, plan_entries, run_sweep
from fastface.sweeps.variation import Variant, variation_record

__all__ = ["studio_spec", "one_sample_dataset", "plan_variants", "write_variants", "variants_grid_id"]


def studio_spec(*, checkpoint: str = "hyper", world: str | None = "face", seed: int = 50,
                capture: str | dict = "head_mean", steps: int | None = None, face_backend: str | None = None,
                height: int | None = None, width: int | None = None) -> SweepSpec:
    """A SweepSpec for writing variants: one checkpoint; ``world`` "face" / "random" for the
    offline worlds (tiny), None for real weights."""
    tiny = world is not None
    return SweepSpec(checkpoints=(checkpoint,), presets=(), seed=seed, steps=steps, tiny=tiny,
                     world=world or "random", capture=capture,
                     face_backend=face_backend or ("dlib" if tiny else "insightface"), height=height, width=width)


def one_sample_dataset(identity: str, photo: str, prompt: str, *, source: str = "studio") -> Dataset:
    """A dataset of one (identity, prompt) pair (its sample uses the spec's seed)."""
    return Dataset((IdentitySpec(identity, str(photo)),), (PromptSpec(prompt, category_of(prompt)),), source)


def _as_variant(v: Variant | tuple[FastFaceConfig, dict]) -> Variant:
    return v if isinstance(v, Variant) else Variant(v[0], dict(v[1]))


def variants_grid_id(base: str, variants: Sequence[Variant | tuple[FastFaceConfig, dict]]) -> str:
    """A deterministic grid id for a list of variants: the base and every variant's coordinates."""
    coords = [_as_variant(v).coords for v in variants]
    payload = json.dumps({"base": base, "cells": coords}, sort_keys=True, separators=(",", ":"),
                         default=lambda x: list(x) if isinstance(x, tuple) else str(x))
    return f"{base}-{hashlib.sha1(payload.encode()).hexdigest()[:8]}"


def plan_variants(spec: SweepSpec, dataset: Dataset, base: str,
                  variants: Sequence[Variant | tuple[FastFaceConfig, dict[str, Any]]], *,
                  grid: str | None = None) -> list[RunPlan]:
    """One RunPlan per variant and checkpoint of ``spec``, preset ``base``, with
    variation_json {"base": base, "grid": grid, "coords": coords}; ``grid`` defaults to
    :func:`variants_grid_id`. Validates every config for the checkpoint's step count and every
    coordinate path first (ConfigError naming the path; nothing planned)."""
    items = [_as_variant(v) for v in variants]
    if not items:
        raise ConfigError("no variants to write: give at least one (config, coords) pair")
    grid = grid or variants_grid_id(base, items)
    entries = []
    for checkpoint in spec.checkpoints:
        steps = spec.num_steps(checkpoint)
        for v in items:
            v.config.validate_for_steps(steps)
            entries.append((checkpoint, base, v.config, variation_record(base, grid, v.coords)))
    plans = plan_entries(spec, dataset, entries)
    ids = [p.run_id for p in plans]
    if len(set(ids)) != len(ids):
        raise ConfigError("two variants have the same config and coordinates; give each once")
    return plans


def write_variants(store_path: str, spec: SweepSpec, dataset: Dataset, base: str,
                   variants: Sequence[Variant | tuple[FastFaceConfig, dict[str, Any]]], *,
                   load: Callable[[str], object], grid: str | None = None, compact: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> tuple[list[RunPlan], dict]:
    """Plan (:func:`plan_variants`), generate and write the variants' runs like a sweep
    (:func:`fastface.sweeps.sweep.run_sweep`: probes, faces, metrics, compaction). Samples
    already in the store are skipped, so keeping the same variants twice writes nothing new.
    Returns the plans and the sweep's counts."""
    plans = plan_variants(spec, dataset, base, variants, grid=grid)
    counts = run_sweep(spec, dataset, store_path, load=load, plans=plans, compact=compact, progress=progress)
    return plans, counts
