"""Keep: the Studio's images written as runs of a store, through the variation runs of
:mod:`fastface.sweeps.keep` (what ``fastface capture --vary`` writes): the base preset with
coordinates ``{}`` and each edit with its edited paths, one sample (identity, prompt, seed) each,
probes, faces and metrics as a sweep records them, and ``variation_json`` for the SQL views
``grid_cells`` / ``run_params``.

The engine's loaded pipeline is reused (``load`` returns it) under the engine's lock, so a Keep
waits for a running Generate and the other way round. The sweep regenerates the images: on one
seed and config they are the images the Studio showed (the pipeline is deterministic on CPU; the
tests check it).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from fastface.method.config import FastFaceConfig
from fastface.studio.engine import StudioEngine, Subject


def keep(engine: StudioEngine, store_path: str, subject: Subject, base: str,
         variants: Sequence[tuple[FastFaceConfig, dict[str, Any]]], *, grid: str | None = None,
         progress: Callable[[int, int], None] | None = None,
         on_wait: Callable[[], None] | None = None) -> tuple[list, dict]:
    """Write ``variants`` ((config, coords) pairs over the preset ``base``) for ``subject`` into
    the store; returns the sweep's plans (run ids) and counts. Cells already in the store are
    skipped (keeping twice writes nothing new)."""
    from fastface.sweeps.keep import one_sample_dataset, studio_spec, write_variants

    spec = studio_spec(checkpoint=engine.choice.checkpoint, world=engine.choice.world if engine.choice.tiny else None,
                       seed=int(subject.seed), capture=engine.spec.capture, face_backend=engine.spec.face_backend)
    data = one_sample_dataset(subject.identity, subject.photo, subject.prompt)
    if not engine.lock.acquire(blocking=False):
        if on_wait is not None:
            on_wait()
        engine.lock.acquire()
    try:
        return write_variants(store_path, spec, data, base, list(variants), load=lambda checkpoint: engine.pipe,
                              grid=grid, progress=progress)
    finally:
        engine.lock.release()


def grid_id(base: str, axes: Sequence[tuple[Any, Sequence[Any]]]) -> str:
    """The id ``fastface capture --vary`` gives the same axes over the same preset."""
    from fastface.sweeps.variation import grid_id as gid

    return gid(base, axes)
