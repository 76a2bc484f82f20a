"""The tiny SDXL pipeline end to end: every preset x every scheduler kind, determinism,
branch skipping, processor installation and the real FaceID loading path."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fastface.method.config import ConfigError, FastFaceConfig, GuidanceConfig, load_preset

PRESETS = ["baseline", "dcg", "am1", "am2", "ff-am1", "ff-am2"]
CHECKPOINTS = ["base", "hyper", "lightning", "lcm", "turbo"]


def _img(result) -> np.ndarray:
    return np.asarray(result.image).astype(np.int16)


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
def test_every_preset_runs_deterministically_and_differs(checkpoint, tiny_pipes, tiny_identity):
    """Each preset twice gives the same image and latents; AM and DCG change the final latents.
    (Compared before decoding: in the random world the decoupled branch is weak, and some
    differences vanish in the 8-bit image.)"""
    pipe = tiny_pipes(checkpoint)
    ident = tiny_identity(pipe)
    latents = {}
    for preset in PRESETS:
        cfg = load_preset(preset)
        first = pipe.generate("a photo of a person", ident, cfg, seed=3, steps=4)
        again = pipe.generate("a photo of a person", ident, cfg, seed=3, steps=4)
        assert first.image.size == (pipe.resolution, pipe.resolution)
        assert np.array_equal(_img(first), _img(again)), f"{checkpoint}/{preset} is not deterministic"
        assert torch.equal(first.latents, again.latents), f"{checkpoint}/{preset} latents are not deterministic"
        latents[preset] = first.latents
    # AM changes the result; DCG changes it; FastFace differs from DCG alone
    for a, b in [("baseline", "am1"), ("baseline", "am2"), ("baseline", "dcg"), ("dcg", "ff-am1"),
                 ("dcg", "ff-am2"), ("am1", "am2")]:
        diff = float((latents[a] - latents[b]).abs().max())
        assert diff > 1e-3, f"{checkpoint}: {a} and {b} gave the same latents (max |diff| {diff:.2e})"


def test_scheduler_kinds_match_the_registry(tiny_pipes):
    expected = {"base": "EulerDiscreteScheduler", "hyper": "DDIMScheduler", "lightning": "EulerDiscreteScheduler",
                "lcm": "LCMScheduler", "turbo": "EulerAncestralDiscreteScheduler"}
    for name, cls in expected.items():
        sched = tiny_pipes(name).pipe.scheduler
        assert type(sched).__name__ == cls
        if name in ("hyper", "lightning", "turbo"):
            assert sched.config.timestep_spacing == "trailing"


def test_seed_changes_image(tiny_pipes, tiny_identity):
    pipe = tiny_pipes("hyper")
    ident = tiny_identity(pipe)
    a = pipe.generate("a person", ident, load_preset("baseline"), seed=1)
    b = pipe.generate("a person", ident, load_preset("baseline"), seed=2)
    assert np.abs(_img(a) - _img(b)).max() > 0


@pytest.mark.parametrize("checkpoint", ["hyper", "lcm"])
def test_baseline_one_branch_equals_three(checkpoint, tiny_pipes, tiny_identity):
    """a = b (no rescale, no batch-coupled AM): running only the needed branches gives the same
    image as running all three (identical, as the README says), with a third (hyper) of the UNet
    rows. The latents agree to float rounding only (measured: hyper 1.3e-5, LCM 0): the UNet's
    float32 kernels round differently at batch 1 and batch 3; the combination itself is exact
    (tests/unit/test_guidance_math.py)."""
    pipe = tiny_pipes(checkpoint)
    ident = tiny_identity(pipe)
    cfg = load_preset("baseline")
    few = pipe.generate("a person", ident, cfg, seed=5)
    full = pipe.generate("a person", ident, cfg, seed=5, full_batch=True)
    assert full.unet_rows == 3 * 4
    assert few.unet_rows == (4 if checkpoint == "hyper" else 8)  # LCM's a = b = 1.5 needs e0 and e2
    assert [l.names for l in few.layouts][0] == (("text_id",) if checkpoint == "hyper" else ("uncond", "text_id"))
    diff = np.abs(_img(few) - _img(full)).max()
    assert diff == 0, f"one-branch and three-branch baselines differ by {diff} grey levels"
    assert float((few.latents - full.latents).abs().max()) <= 1e-4


def test_am1_only_changes_targeted_parts(tiny_pipes, tiny_identity):
    pipe = tiny_pipes("hyper")
    ident = tiny_identity(pipe)
    base = pipe.generate("a person", ident, load_preset("baseline"), seed=4)
    am1 = load_preset("am1")
    nowhere = dataclasses.replace(am1, am=dataclasses.replace(am1.am, steps=(99,)))
    same = pipe.generate("a person", ident, nowhere, seed=4)
    assert np.array_equal(_img(base), _img(same)), "AM restricted to a step that never runs changed the image"
    mid_only = dataclasses.replace(am1, am=dataclasses.replace(am1.am, parts=("mid",),
                                                                am1=dataclasses.replace(am1.am.am1, scale_mid=3.0)))
    assert np.abs(_img(pipe.generate("a person", ident, mid_only, seed=4)) - _img(base)).max() > 0


def test_am2_release_quantile_rounding_reaches_the_processor(tiny_pipes, tiny_identity):
    """am.am2.quantile_dtype = "float16" (the release's rounding of q) changes the image, a little."""
    pipe = tiny_pipes("hyper")
    ident = tiny_identity(pipe)
    cfg = load_preset("am2")
    exact = dataclasses.replace(cfg, am=dataclasses.replace(cfg.am, am2=dataclasses.replace(cfg.am.am2,
                                                                                           quantile_dtype="float16")))
    a = _img(pipe.generate("a person", ident, cfg, seed=4))
    b = _img(pipe.generate("a person", ident, exact, seed=4))
    assert np.abs(a - b).max() > 0, "quantile_dtype did not reach the attention processor"


def test_ip_scale_zero_ignores_identity(tiny_pipes, tiny_identity):
    pipe = tiny_pipes("hyper")
    ident = tiny_identity(pipe)
    other = pipe.identity_from_arrays(np.roll(ident.id_embed.numpy()[0], 7), ident.crop[::-1].copy())
    cfg = load_preset("baseline").with_scales(ip_scale=0.0)
    a = pipe.generate("a person", ident, cfg, seed=6)
    b = pipe.generate("a person", other, cfg, seed=6)
    assert np.array_equal(_img(a), _img(b))
    cfg = load_preset("baseline").with_scales(ip_scale=0.8)
    assert np.abs(_img(pipe.generate("a person", ident, cfg, seed=6)) -
                  _img(pipe.generate("a person", other, cfg, seed=6))).max() > 0


def test_invalid_schedule_length_is_a_clear_error(tiny_pipes, tiny_identity):
    pipe = tiny_pipes("hyper")
    cfg = FastFaceConfig(guidance=GuidanceConfig(alpha=[1, 2, 3], beta=[1, 2, 3]))
    with pytest.raises(ConfigError, match=r"guidance.alpha.*3 values.*4 steps"):
        pipe.generate("a person", tiny_identity(pipe), cfg, seed=0)
    with pytest.raises(ConfigError, match="am.am2.steepness"):
        pipe.generate("a person", tiny_identity(pipe), load_preset("am2"), seed=0, steps=3)


def test_processors_share_the_loaded_weights_and_restore(tiny_root):
    from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

    from fastface.models.checkpoints import load_faceid, load_sdxl
    from fastface.models.pipeline import FastFacePipeline
    from fastface.method.processor import FastFaceAttnProcessor

    sd = load_sdxl("hyper", weights_root=tiny_root, device="cpu")
    load_faceid(sd, weights_root=tiny_root)
    before = {k: p for k, p in sd.unet.attn_processors.items() if isinstance(p, IPAdapterAttnProcessor2_0)}
    ff = FastFacePipeline(sd, __import__("fastface.models.checkpoints").models.checkpoints.get_checkpoint("hyper"))
    after = sd.unet.attn_processors
    for key, old in before.items():
        assert isinstance(after[key], FastFaceAttnProcessor)
        assert after[key].to_k_ip is old.to_k_ip and after[key].to_v_ip is old.to_v_ip
    assert len(before) == len(ff.sites) == 17
    ff.restore_processors()
    assert all(sd.unet.attn_processors[k] is p for k, p in before.items())


@pytest.mark.parametrize("weight_name", ["ip-adapter-faceid-plusv2_sdxl.bin", "ip-adapter-faceid-plusv2_sdxl.safetensors"])
def test_tiny_faceid_loads_through_load_ip_adapter(weight_name, tiny_root):
    from diffusers.models.embeddings import IPAdapterFaceIDPlusImageProjection

    from fastface.models.checkpoints import FACEID_ID, load_faceid, load_sdxl

    sd = load_sdxl("hyper", weights_root=tiny_root, device="cpu")
    load_faceid(sd, weights_root=tiny_root, weight_name=weight_name, ip_scale=0.65, lora_scale=0.5)
    raw = torch.load(tiny_root / FACEID_ID / "ip-adapter-faceid-plusv2_sdxl.bin", weights_only=True)
    proj = sd.unet.encoder_hid_proj.image_projection_layers[0]
    assert isinstance(proj, IPAdapterFaceIDPlusImageProjection)
    assert torch.equal(proj.proj.net[0].proj.weight, raw["image_proj"]["proj.0.weight"])
    assert torch.equal(proj.norm.weight, raw["image_proj"]["norm.weight"])
    procs = list(sd.unet.attn_processors.items())
    key_id, (name, proc) = next((i, kv) for i, kv in enumerate(procs) if kv[0].endswith("attn2.processor"))
    assert torch.equal(proc.to_k_ip[0].weight, raw["ip_adapter"][f"{key_id}.to_k_ip.weight"])
    assert proc.scale == [0.65]
    assert sd.get_list_adapters()["unet"] == ["faceid_0"]
    lora_b = sd.unet.get_submodule(name[: -len(".processor")] + ".to_k").lora_B["faceid_0"].weight
    assert torch.equal(lora_b, raw["ip_adapter"][f"{key_id}.to_k_lora.up.weight"])
    assert raw["ip_adapter"].keys() == {k.removeprefix("ip_adapter.") for k in
                                        __import__("safetensors.torch").torch.load_file(
                                            tiny_root / FACEID_ID / "ip-adapter-faceid-plusv2_sdxl.safetensors")
                                        if k.startswith("ip_adapter.")}


def test_lora_scale_changes_the_image(tiny_pipes, tiny_identity):
    pipe = tiny_pipes("hyper")
    ident = tiny_identity(pipe)
    a = pipe.generate("a person", ident, load_preset("baseline").with_scales(lora_scale=1.0), seed=2)
    b = pipe.generate("a person", ident, load_preset("baseline").with_scales(lora_scale=0.0), seed=2)
    assert np.abs(_img(a) - _img(b)).max() > 0
