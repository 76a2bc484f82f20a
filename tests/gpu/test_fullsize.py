"""GPU only: the full-size SDXL architecture (random weights, fp16), one step of each preset."""
from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (full-size SDXL in fp16)")]

PRESETS = ["baseline", "dcg", "am1", "am2", "ff-am1", "ff-am2"]


@pytest.fixture(scope="module")
def full():
    from fastface.models.fullsize import fullsize_pipeline

    return fullsize_pipeline("cuda", torch.float16)


def test_full_size_has_70_decoupled_blocks(full):
    assert len(full.sites) == 70
    assert full.id_dim == 512


@pytest.mark.parametrize("preset", PRESETS)
def test_one_step_of_each_preset(full, preset):
    from fastface.method.config import FastFaceConfig, load_preset

    cfg = load_preset(preset)
    d = cfg.to_dict()  # one step: keep each schedule's second value (the middle of the 4-step schedule)
    for group, keys in (("guidance", ("alpha", "beta")), ("am2", ("steepness", "quantile", "scale", "adain_weight"))):
        holder = d["guidance"] if group == "guidance" else d["am"]["am2"]
        for k in keys:
            if holder.get(k):
                holder[k] = [holder[k][min(1, len(holder[k]) - 1)]]
    cfg = FastFaceConfig.from_dict(d)
    rng = np.random.RandomState(0)
    emb = rng.randn(512).astype(np.float32)
    ident = full.identity_from_arrays(emb / np.linalg.norm(emb), (rng.rand(224, 224, 3) * 255).astype(np.uint8))
    result = full.generate("a photo of a person", ident, cfg, seed=0, steps=1, height=1024, width=1024)
    # the latents, not the 8-bit image: an fp16 NaN or inf decodes to a black (finite) image
    lat = result.latents.float()
    assert lat.shape == (1, 4, 128, 128)
    assert torch.isfinite(lat).all(), f"{preset}: {int((~torch.isfinite(lat)).sum())} non-finite latent values"
    assert float(lat.std()) > 1e-3, f"{preset}: constant latents"
    arr = np.asarray(result.image).astype(np.int16)
    assert arr.shape == (1024, 1024, 3)
    assert arr.max() - arr.min() > 8 and arr.std() > 1.0, f"{preset}: a (nearly) constant image"
