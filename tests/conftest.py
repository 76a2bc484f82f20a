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


@pytest.fixture(scope="session")
def tiny_pipes(tiny_root):
    """One loaded tiny FastFace pipeline per checkpoint, loaded on first use."""
    from fastface.models.pipeline import load_pipeline

    cache: dict[str, object] = {}

    def get(checkpoint: str = "hyper"):
        if checkpoint not in cache:
            cache[checkpoint] = load_pipeline(checkpoint, tiny=True, weights_root=tiny_root, face_backend="none")
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
