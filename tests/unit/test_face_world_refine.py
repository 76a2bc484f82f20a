"""The face world's refinement terms (fastface.models.faceworld.refine): pure tensor functions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastface.models.faceworld import refine


def test_box_mask_is_the_covered_share_of_each_cell():
    m = refine.box_mask([(16.0, 16.0, 48.0, 48.0), (0.0, 0.0, 6.0, 4.0)], grid=4, size=64).view(2, 4, 4)
    expected = torch.zeros(4, 4)
    expected[1:3, 1:3] = 1.0
    assert torch.equal(m[0], expected)
    # 6 x 4 px in the first 16 x 16 cell: 24 / 256 of it
    assert m[1, 0, 0].item() == pytest.approx(24 / 256, abs=1e-6)
    assert m[1].sum().item() == pytest.approx(24 / 256, abs=1e-6)
    # a box reaching outside the image is clipped
    assert refine.box_mask([(-10.0, -10.0, 80.0, 80.0)], 8, 64).min().item() == 1.0


def test_sampler_timesteps_are_near_the_samplers_or_uniform():
    gen = torch.Generator().manual_seed(0)
    t = refine.sample_timesteps(4000, 1000, 1.0, gen)
    dist = torch.stack([(t - s).abs() for s in refine.SAMPLER_TIMESTEPS]).min(0).values
    assert int(dist.max()) <= refine.JITTER and int(t.max()) <= 999
    u = refine.sample_timesteps(4000, 1000, 0.0, torch.Generator().manual_seed(0))
    far = torch.stack([(u - s).abs() for s in refine.SAMPLER_TIMESTEPS]).min(0).values > refine.JITTER
    assert far.float().mean().item() > 0.8  # uniform: most draws are far from the 4 timesteps
    again = refine.sample_timesteps(4000, 1000, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(t, again)


def test_face_weighted_mse_weights_the_face_cells():
    pred, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    mask = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    assert refine.face_weighted_mse(pred, target, mask, 0.0).item() == pytest.approx(0.25)
    # weights 3,1,1,1: (3 * 1) / 4 / mean weight (6 / 4) = 0.5
    assert refine.face_weighted_mse(pred, target, mask, 2.0).item() == pytest.approx(0.5)
    # error outside the face counts less than inside
    assert refine.face_weighted_mse(pred, target.flip(-1), mask, 2.0).item() == pytest.approx(1 / 6)


def _maps(face_token_prob: float, grid: int = 4):
    """[1, 1, grid*grid, 4] maps: inside the box tokens 1-3 share ``face_token_prob``."""
    m = refine.box_mask([(0.0, 0.0, 32.0, 32.0)], grid, 64)[0]
    a = torch.full((grid * grid, 4), 0.25)
    inside = m > 0.5
    a[inside] = torch.tensor([1 - face_token_prob, face_token_prob / 3, face_token_prob / 3, face_token_prob / 3])
    return a[None, None], [(0.0, 0.0, 32.0, 32.0)]


def test_localisation_loss_rewards_tokens_1_3_on_the_face_and_token_0_off_it():
    grid_of = lambda q: (math.isqrt(q), math.isqrt(q))  # noqa: E731
    keep = torch.tensor([True])
    uniform, boxes = _maps(0.75)  # 0.25 each everywhere: no gap
    assert refine.localisation_loss({"s": uniform}, boxes, keep, grid_of, 64).item() == pytest.approx(0.0, abs=1e-6)
    good, _ = _maps(0.99)
    bad, _ = _maps(0.3)
    l_good = refine.localisation_loss({"s": good}, boxes, keep, grid_of, 64).item()
    l_bad = refine.localisation_loss({"s": bad}, boxes, keep, grid_of, 64).item()
    assert l_good < 0 < l_bad
    # tokens 1-3 gain 0.33-0.25 each on the face, token 0 loses 0.25-0.01: mean gap over 4 tokens
    assert l_good == pytest.approx(-((0.99 / 3 - 0.25) * 3 + (0.25 - 0.01)) / 4, abs=1e-5)
    # samples whose ID was dropped do not count
    assert refine.localisation_loss({"s": good}, boxes, torch.tensor([False]), grid_of, 64).item() == 0.0


def test_localisation_loss_has_gradients_through_the_maps():
    logits = torch.zeros(1, 1, 16, 4, requires_grad=True)
    _, boxes = _maps(0.75)
    loss = refine.localisation_loss({"s": logits.softmax(-1)}, boxes, torch.tensor([True]),
                                    lambda q: (4, 4), 64)
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum().item() > 0


def test_cosine_lr_decays_from_base_to_floor():
    assert refine.cosine_lr(1.0, 0.1, 100, 100, 200) == pytest.approx(1.0)
    assert refine.cosine_lr(1.0, 0.1, 150, 100, 200) == pytest.approx(0.55)
    assert refine.cosine_lr(1.0, 0.1, 200, 100, 200) == pytest.approx(0.1)
    assert refine.cosine_lr(1.0, 0.1, 500, 100, 200) == pytest.approx(0.1)


def test_collecting_maps_restores_the_processors_even_on_error(tiny_root):
    from fastface.models.pipeline import load_pipeline
    from fastface.method.processor import FastFaceAttnProcessor

    pipe = load_pipeline("hyper", tiny=True, weights_root=tiny_root, face_backend="none")  # this test's own
    unet = pipe.pipe.unet
    before = dict(unet.attn_processors)
    contexts = {k: p.context for k, p in before.items() if isinstance(p, FastFaceAttnProcessor)}
    assert len(contexts) == 17 and all(c is pipe.context for c in contexts.values())
    with pytest.raises(RuntimeError, match="boom"):
        with refine.collecting_maps(unet, (8, 8)) as (collector, context):
            installed = unet.attn_processors
            assert any(isinstance(p, FastFaceAttnProcessor) for p in installed.values())
            assert all(installed[k].context is context for k in contexts)
            assert collector in context.observers
            raise RuntimeError("boom")
    after = unet.attn_processors
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    # the objects *and* what they read: the pipeline's processors still follow the pipeline's context
    assert all(after[k].context is pipe.context for k in contexts)


def test_pipeline_after_collecting_maps_generates_as_before(tiny_root):
    """Issue 28 item 1: collecting_maps on a pipeline's UNet left that pipeline's processors on
    the collector's context, which the denoising loop never updates: AM went silently off
    (baseline == am1). The reference is the same pipeline's latents before collecting_maps ran."""
    from fastface.method.config import load_preset
    from fastface.models.pipeline import load_pipeline

    pipe = load_pipeline("hyper", tiny=True, weights_root=tiny_root, face_backend="none")  # this test's own
    rng = np.random.RandomState(0)
    emb = rng.randn(128).astype(np.float32)
    ident = pipe.identity_from_arrays(emb / np.linalg.norm(emb), rng.randint(0, 256, (224, 224, 3)).astype(np.uint8))

    def latents(preset):
        return pipe.generate("a person", ident, load_preset(preset), seed=3, steps=2).latents

    before = {p: latents(p) for p in ("baseline", "am1")}
    assert float((before["baseline"] - before["am1"]).abs().max()) > 1e-3  # AM acts at all in this world
    with refine.collecting_maps(pipe.pipe.unet, (8, 8)) as (collector, context):
        latents("baseline")  # maps are collected while the block is open
        assert collector.maps, "collecting_maps saw no map"
    after = {p: latents(p) for p in ("baseline", "am1")}
    assert float((after["baseline"] - after["am1"]).abs().max()) > 1e-3, "AM is off after collecting_maps"
    for p in before:
        assert torch.equal(before[p], after[p]), f"{p} changed after collecting_maps"


def test_learning_rate_warms_up_then_decays_in_the_refinement():
    from fastface.models.faceworld.train import TrainSettings, learning_rate

    s = TrainSettings(lr=4e-4, warmup=200, refine_from=3000, unet_steps=4200)
    assert learning_rate(s, 99) == pytest.approx(2e-4) and learning_rate(s, 2999) == pytest.approx(4e-4)
    assert learning_rate(s, 3600) == pytest.approx(0.55 * 4e-4)  # half way down the refinement cosine
    assert learning_rate(s, 4200) == pytest.approx(4e-5)  # its floor: 0.1 x lr


def test_the_shipped_recipe_never_mirrors_faces_and_decays_the_learning_rate_once():
    from fastface.models.faceworld.train import TrainSettings, learning_rate

    shipped = TrainSettings()  # 4800 steps, refinement from 3000
    assert not shipped.mirror_faces and shipped.unet_steps == 4800
    assert learning_rate(shipped, 2999) == pytest.approx(shipped.lr)
    assert learning_rate(shipped, 3900) == pytest.approx(0.55 * shipped.lr)  # half way down
    assert learning_rate(shipped, 4799) == pytest.approx(0.1 * shipped.lr, rel=1e-3)
    rates = [learning_rate(shipped, k) for k in range(3000, 4800, 50)]
    assert all(x > y for x, y in zip(rates, rates[1:]))  # no restart


def test_stage2_refines_from_its_first_step_on_its_own_cosine():
    from fastface.models.faceworld.stages import stage2_settings
    from fastface.models.faceworld.train import TrainSettings, learning_rate

    shipped = TrainSettings()
    assert shipped.stage2_unet_steps == 2000 and shipped.stage2_decoder_steps == 500
    s2 = stage2_settings(shipped)
    assert (s2.unet_steps, s2.refine_from, s2.dec_steps) == (2000, 0, 500)
    assert (s2.face_weight, s2.loc_weight, s2.mirror_faces) == (shipped.face_weight, shipped.loc_weight, False)
    assert learning_rate(s2, 0) == pytest.approx(shipped.stage2_lr)  # no warm-up: it starts from trained weights
    assert learning_rate(s2, 1000) == pytest.approx(0.55 * shipped.stage2_lr, rel=1e-2)
    assert learning_rate(s2, 1999) == pytest.approx(0.1 * shipped.stage2_lr, rel=1e-2)
    for bad in ({"stage2_unet_steps": -1}, {"stage2_decoder_steps": -1}, {"stage2_lr": 0.0}):
        with pytest.raises(ValueError, match="stage2"):
            TrainSettings(**bad)


def test_face_weighted_recon_counts_the_face_pixels_more():
    x = torch.zeros(1, 3, 4, 4)
    rec = torch.zeros(1, 3, 4, 4)
    rec[..., 0, 0] = 0.5  # an error in one pixel
    inside = torch.zeros(1, 16)
    inside[0, 0] = 1.0
    plain = refine.face_weighted_recon(rec, x, torch.zeros(1, 16), 4.0)
    weighted = refine.face_weighted_recon(rec, x, inside, 4.0)
    assert plain.item() == pytest.approx((0.5 + 0.25) * 3 / 48)
    assert weighted.item() == pytest.approx(5 * plain.item())


def test_refine_decoder_trains_only_the_decoder():
    from fastface.models.faceworld import world as fw
    from fastface.models.tiny import tiny_vae

    vae = tiny_vae(0, fw.VAE_SIZES)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    losses = refine.refine_decoder(vae, steps=3, lr=1e-3, face_weight=4.0, batch=2, seed=0)
    assert len(losses) == 3 and all(np.isfinite(losses))
    after = vae.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith(("decoder.", "post_quant_conv.")) for k in changed)
    assert not any(p.requires_grad for p in vae.parameters()) and not vae.training
