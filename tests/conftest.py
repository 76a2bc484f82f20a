"""Shared fixtures: the tiny world (built once, cached) and a loaded tiny pipeline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

# Two shared CPU cores: intra-op threads only add contention for the tiny models (a tiny
# 2-sample capture measured 85 s with default threads vs 22 s with one).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_root():
    """The tiny random-weight world in the real Hub layouts (cached under ~/.cache/fastface)."""
    from fastface.models.tiny import build_tiny_world

    return build_tiny_world()


#: session-scoped pipelines shared by tests, each with the processors it had when loaded
_SHARED_PIPELINES: list[tuple[object, dict]] = []


def share_pipeline(pipe):
    """Register a session-scoped FastFacePipeline: after every test, :func:`shared_pipelines_unchanged`
    checks that its UNet still holds the processors it was loaded with, each still reading the
    pipeline's own context, and that no observer was left on that context."""
    _SHARED_PIPELINES.append((pipe, dict(pipe.pipe.unet.attn_processors)))
    return pipe


def shared_pipeline_changes(pipe, loaded: dict) -> list[str]:
    """What differs from the state a shared pipeline was loaded in (empty: unchanged)."""
    from fastface.method.processor import FastFaceAttnProcessor

    now = pipe.pipe.unet.attn_processors
    problems = [f"{k}: processor replaced" for k in loaded if now.get(k) is not loaded[k]]
    problems += [f"{k}: new processor" for k in now if k not in loaded]
    problems += [f"{k}: reads another context" for k, p in loaded.items()
                 if isinstance(p, FastFaceAttnProcessor) and p.context is not pipe.context]
    if pipe.context.observers:
        problems.append(f"observers left on the context: {pipe.context.observers}")
    return problems


@pytest.fixture(autouse=True)
def shared_pipelines_unchanged():
    """Every test leaves the session's shared pipelines as it found them (issue 28: a test that
    re-pointed a shared pipeline's processors at another context made later tests' AM a no-op)."""
    yield
    changed = {id(p): shared_pipeline_changes(p, loaded) for p, loaded in _SHARED_PIPELINES}
    changed = {k: v for k, v in changed.items() if v}
    assert not changed, f"this test changed a shared pipeline: {list(changed.values())[0][:3]}"


@pytest.fixture(scope="session")
def tiny_pipes(tiny_root):
    """One loaded tiny FastFace pipeline per checkpoint, loaded on first use (and checked after
    every test by :func:`shared_pipelines_unchanged`)."""
    from fastface.models.pipeline import load_pipeline

    cache: dict[str, object] = {}

    def get(checkpoint: str = "hyper"):
        if checkpoint not in cache:
            cache[checkpoint] = share_pipeline(
                load_pipeline(checkpoint, tiny=True, weights_root=tiny_root, face_backend="none"))
        return cache[checkpoint]

    return get


@pytest.fixture(scope="session")
def tiny_identity(tiny_pipes):
    """A deterministic identity (unit 128-d embedding + a real photo crop) without a detector."""
    from skimage.data import astronaut
    from skimage.transform import resize

    rng = np.random.RandomState(0)
    emb = rng.randn(128).astype(np.float32)
    emb /= np.linalg.norm(emb)
    crop = (resize(astronaut()[0:300, 100:400], (224, 224)) * 255).astype(np.uint8)
    return lambda pipe: pipe.identity_from_arrays(emb, crop, name="astronaut")
