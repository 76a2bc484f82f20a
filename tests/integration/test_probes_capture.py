"""Probes on the tiny FastFace pipeline (CPU): images unchanged by capture, clean exit when
generation raises, softmax 'pre' maps, 'post' = AM('pre'), stored summaries vs numpy, site
grids vs observed query counts, and bytes per sample per named spec."""
from __future__ import annotations

import dataclasses
import warnings
from collections import defaultdict

import numpy as np
import pytest
import torch

from fastface.method.config import ConfigError, FastFaceConfig, GuidanceConfig, load_preset
from fastface.method.processor import AttentionObserver
from fastface.method.transforms import am2, scale_power
from probes.capture import capture
from probes.sites import sites_of
from probes.spec import BRANCHES, CaptureSpec, named_spec
from store import encode

PROMPT = "a photo of a person"
ALL_BRANCHES = dict(branches=BRANCHES)


@pytest.fixture(scope="session")
def probe_world(tmp_path_factory):
    from fastface.models.tiny import build_tiny_world

    return build_tiny_world(tmp_path_factory.mktemp("tw"))


@pytest.fixture(scope="session")
def pipe(probe_world):
    from fastface.models.pipeline import load_pipeline

    from tests.conftest import share_pipeline

    return share_pipeline(load_pipeline("hyper", tiny=True, face_backend="none", weights_root=probe_world))


@pytest.fixture(scope="session")
def ident(pipe):
    rng = np.random.RandomState(0)
    emb = rng.randn(128).astype(np.float32)
    emb /= np.linalg.norm(emb)
    crop = rng.randint(0, 256, (224, 224, 3)).astype(np.uint8)
    return pipe.identity_from_arrays(emb, crop, name="random")


_REFERENCE: dict[str, np.ndarray] = {}


def reference_image(pipe, ident, preset: str) -> np.ndarray:
    if preset not in _REFERENCE:
        _REFERENCE[preset] = np.asarray(pipe.generate(PROMPT, ident, load_preset(preset), seed=7).image)
    return _REFERENCE[preset]


def decoded(records) -> dict:
    return {(r.site, r.step, r.branch, r.head, r.token, r.stage): encode.decode_map(r.data, r.encoding, r.scale,
                                                                                     r.height, r.width)
            for r in records}


class Recorder:
    """A plain observer: remembers the raw maps of chosen sites (copies)."""

    def __init__(self, sites=None):
        self.sites, self.maps, self.queries = sites, {}, {}

    def wants(self, site, ctx):
        return self.sites is None or site in self.sites

    def observe(self, site, ctx, stage, attn):
        self.queries[site] = attn.shape[2]
        self.maps[(site, ctx.step, stage)] = (attn.detach().clone(), ctx.layout)


# --- (a) images unchanged -------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["baseline", "dcg", "ff-am2"])
def test_images_bit_identical_with_probe(pipe, ident, preset):
    ref = reference_image(pipe, ident, preset)
    spec = named_spec("head_mean").replace(branches=BRANCHES)  # every site, step and branch observed
    with capture(pipe, spec) as probe:
        result, records = probe.generate("s", PROMPT, ident, load_preset(preset), seed=7)
    assert records, "nothing was captured"
    assert np.array_equal(np.asarray(result.image), ref), f"{preset}: the probe changed the image"


# --- (b) clean exit -----------------------------------------------------------------------------

def _assert_clean(pipe, probe, processors_before, observers_before):
    assert probe.closed and not probe.has_pending
    assert probe not in pipe.context.observers
    assert pipe.context.observers == observers_before
    now = pipe.pipe.unet.attn_processors
    assert set(now) == set(processors_before) and all(now[k] is processors_before[k] for k in now)
    assert probe.wants(next(iter(probe.sites)), pipe.context) is False


def test_context_clean_when_generation_raises(pipe, ident, monkeypatch):
    ref = reference_image(pipe, ident, "dcg")
    processors = dict(pipe.pipe.unet.attn_processors)
    sentinel = Recorder(sites=())  # an observer installed before capture: must be put back
    pipe.context.observers = [sentinel]
    try:
        calls = {"n": 0}
        real_step = pipe.pipe.scheduler.step

        def failing_step(*args, **kwargs):  # raises at the third denoising step
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("boom")
            return real_step(*args, **kwargs)

        monkeypatch.setattr(pipe.pipe.scheduler, "step", failing_step)  # the instance, not the class
        with pytest.raises(RuntimeError, match="boom"):
            with capture(pipe, named_spec("head_mean")) as probe:
                assert pipe.context.observers == [sentinel, probe]
                pipe.generate(PROMPT, ident, load_preset("dcg"), seed=7, observers=[probe])
        assert calls["n"] == 3 and probe.discarded == 1 and probe.bytes_captured == {}
        _assert_clean(pipe, probe, processors, [sentinel])
        monkeypatch.undo()

        # an invalid schedule (3 values for 4 steps) raises before the loop
        bad = dataclasses.replace(load_preset("dcg"), guidance=GuidanceConfig(variant=2, alpha=(1, 2, 3), beta=(1, 2, 3)))
        with pytest.raises(ConfigError, match="guidance.alpha"):
            with capture(pipe, named_spec("everything")) as probe2:
                probe2.generate("s", PROMPT, ident, bad, seed=7)
        _assert_clean(pipe, probe2, processors, [sentinel])

        # an observer that raises inside the processor
        class Raising(Recorder):
            def observe(self, site, ctx, stage, attn):
                raise ValueError("observer failed")

        with pytest.raises(ValueError, match="observer failed"):
            with capture(pipe, named_spec("head_mean")) as probe3:
                pipe.generate(PROMPT, ident, load_preset("dcg"), seed=7, observers=[probe3, Raising()])
        _assert_clean(pipe, probe3, processors, [sentinel])
    finally:
        pipe.context.observers = []

    # later generations are unaffected, even when the closed probe is passed again
    assert np.array_equal(np.asarray(pipe.generate(PROMPT, ident, load_preset("dcg"), seed=7).image), ref)
    leaked = pipe.generate(PROMPT, ident, load_preset("dcg"), seed=7, observers=[probe])
    assert np.array_equal(np.asarray(leaked.image), ref) and not probe.has_pending


def test_unfinished_sample_is_an_error_not_a_mix(pipe, ident):
    with capture(pipe, CaptureSpec(sites=("mid",))) as probe:
        pipe.generate(PROMPT, ident, load_preset("baseline"), seed=7, observers=[probe])
        with pytest.raises(RuntimeError, match="finish_sample"):
            pipe.generate(PROMPT, ident, load_preset("baseline"), seed=7, observers=[probe])
        probe.discard_sample()
        _, records = probe.generate("ok", PROMPT, ident, load_preset("baseline"), seed=7)
    assert {r.site[:9] for r in records} == {"mid_block"} and len(records) == 2 * 4 * 2 * 4  # sites x steps x stages x tokens


# --- sites -----------------------------------------------------------------------------------------

def test_site_grids_match_observed_query_counts(pipe, ident):
    sites = sites_of(pipe.pipe.unet)
    assert [s.key for s in sites] == pipe.sites and len(sites) == 17
    rec = Recorder()
    pipe.generate(PROMPT, ident, load_preset("baseline"), seed=7, observers=[rec], steps=1)
    latent = pipe.context.latent_hw
    for s in sites:
        h, w = s.resolution(latent)
        assert h * w == rec.queries[s.key], s.key
        assert s.heads == pipe.pipe.unet.get_submodule(s.key).heads
    assert {s.part for s in sites} == {"down", "mid", "up"}


# --- (c) pre maps are softmax rows ------------------------------------------------------------

def test_pre_maps_are_softmax_rows(pipe, ident):
    spec = CaptureSpec(heads="each", stages=("pre",), token_sum=True, dtype="float16", **ALL_BRANCHES)
    with capture(pipe, spec) as probe:
        result, records = probe.generate("s", PROMPT, ident, load_preset("dcg"), seed=7)
    maps = decoded(records)
    groups = defaultdict(dict)
    for (site, step, branch, head, token, _), m in maps.items():
        groups[(site, step, branch, head)][token] = m
    # dcg (rescale): id + text_id at steps 0 and 3, all three branches at steps 1 and 2
    assert [len(l.names) for l in result.layouts] == [2, 3, 3, 2]
    assert len(groups) == 17 * 4 * 10  # sites x heads x branch-steps
    assert probe.skipped["text"] == 17 * 4 and probe.skipped["uncond"] == 17 * 2
    for key, toks in groups.items():
        assert sorted(toks) == [-1, 0, 1, 2, 3]
        total = toks[0] + toks[1] + toks[2] + toks[3]
        assert np.abs(total - 1.0).max() <= 2e-3, key
        assert np.abs(toks[-1] - 1.0).max() <= 2 ** -10, key
        assert max(float(toks[t].std()) for t in range(4)) > 1e-4, key  # real maps, not constants
        assert all(np.all(toks[t] >= 0) for t in range(4))


# --- (d) post = AM(pre) ---------------------------------------------------------------------------

def test_post_is_am1_of_pre(pipe, ident):
    cfg = load_preset("am1")
    spec = CaptureSpec(heads="each", **ALL_BRANCHES)
    with capture(pipe, spec) as probe:
        _, records = probe.generate("s", PROMPT, ident, cfg, seed=7)
    maps = decoded(records)
    a1 = cfg.am.am1
    changed = 0
    for (site, step, branch, head, token, stage), pre in maps.items():
        if stage != "pre":
            continue
        post = maps[(site, step, branch, head, token, "post")]
        part = probes_part(site)
        if part == "mid":  # AM1 acts on down and up only
            assert np.array_equal(post, pre), site
            continue
        expected = scale_power(torch.from_numpy(pre).double(), scale=a1.scale_for(part), power=a1.power,
                               max_value=a1.max_value).numpy()
        np.testing.assert_allclose(post, expected, rtol=4e-3, atol=1e-5, err_msg=f"{site} {step} {branch} {head} {token}")
        changed += int(np.abs(post - pre).max() > 1e-2)
    assert changed > 100


def probes_part(site: str) -> str:
    return {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[site.split(".")[0]]


def test_post_is_am2_of_pre_over_the_whole_batch(pipe, ident):
    cfg = load_preset("am2")  # AM2 without AdaIN, batch normalisation
    assert cfg.am.am2.adain_weight is None and cfg.am.am2.normalization == "batch"
    spec = CaptureSpec(heads="each", full_batch=True, **ALL_BRANCHES)
    with capture(pipe, spec) as probe:
        result, records = probe.generate("s", PROMPT, ident, cfg, seed=7)
    maps = decoded(records)
    n = result.steps
    assert n == 4
    heads = {r.site: r.head + 1 for r in records}
    tol, checked, per_branch_differs = 6e-3, 0, False
    for site in sorted({r.site for r in records}):
        for step in range(n):
            names = result.layouts[step].names
            assert names == ("uncond", "id", "text_id")

            def stack(stage):  # [B, H, Q, T] in batch order
                return np.stack([np.stack([np.stack([maps[(site, step, b, h, t, stage)].reshape(-1) for t in range(4)],
                                                    axis=-1) for h in range(heads[site])]) for b in names])

            pre, post = stack("pre"), stack("post")
            if probes_part(site) == "mid":
                assert np.array_equal(pre, post)
                continue
            # METHOD.md section 4's per-step values, by hand (not read back through schedule_at)
            kw = dict(steepness=(7.5, 5.0, 5.0, 5.0)[step], quantile=0.65, scale=(1.0, 1.55, 1.55, 1.55)[step],
                      invert_first_token=True)
            expected = am2(torch.from_numpy(pre).double(), **kw).numpy()
            assert np.abs(post - expected).max() <= tol, (site, step)
            per_branch = am2(torch.from_numpy(pre).double(), batch_groups=3, **kw).numpy()
            per_branch_differs |= bool(np.abs(post - per_branch).max() > 5 * tol)
            checked += 1
    assert checked == 15 * n and per_branch_differs  # the check can tell batch from per-branch norm


# --- (e) summaries vs numpy of the stored maps -----------------------------------------------------

@pytest.mark.parametrize("dtype, resolution", [("float16", None), ("uint8", 8)])
def test_stored_summaries_match_numpy_of_decoded_maps(pipe, ident, dtype, resolution):
    site = "down_blocks.1.attentions.0.transformer_blocks.0.attn2"  # 16 x 16 queries on the tiny UNet
    spec = CaptureSpec(dtype=dtype, resolution=resolution, token_sum=True)
    raw = Recorder(sites=(site,))
    # ff-am2 with a stronger AdaIN share (w = 0.3 instead of 0.7), so that the blended 'post' maps
    # reliably dip below 0 (the u8 clamp path): 6-26 such maps over seeds 0, 1, 7 (w = 0.7: 0-3)
    preset = load_preset("ff-am2").to_dict()
    preset["am"]["am2"]["adain_weight"] = [0.3]
    cfg = FastFaceConfig.from_dict(preset)
    with capture(pipe, spec) as probe:
        pipe.generate(PROMPT, ident, cfg, seed=7, observers=[probe, raw])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = probe.finish_sample("s")
    assert any("clamps them to 0" in str(w.message) for w in caught) == (dtype == "uint8")
    enc = "f16" if dtype == "float16" else "u8"
    assert records and all(r.encoding == enc and r.data.dtype == np.uint16 for r in records)
    negative = [r for r in records if r.min < 0]  # AdaIN-blended 'post' maps can dip below 0
    assert negative and all(r.stage == "post" and probes_part(r.site) != "mid" for r in negative)
    if enc == "u8":
        assert probe.clamped["s"] == len(negative)
    for r in records:
        m = encode.decode_map(r.data, r.encoding, r.scale, r.height, r.width)
        if r.min < 0 and enc == "u8":  # documented: u8 cannot hold negatives, they are clamped to 0
            assert m.min() == 0.0 and abs(m.max() - r.max) <= r.max / 510 + 1e-6
            continue
        ref = encode.summarise(m)
        tol = encode.max_abs_error(np.array([[r.max]]), enc) + 1e-6
        for name in ("min", "mean", "max", "q50", "q90", "q99", "std"):
            assert abs(getattr(r, name) - ref[name]) <= tol, (name, r.site, r.step, r.token, r.stage)
        if r.entropy is not None:
            assert ref["entropy"] is not None and abs(r.entropy - ref["entropy"]) <= (2e-3 if enc == "f16" else 5e-2)
        near_edge = int(np.sum(np.abs(m.reshape(-1, 1) - encode.HIST_EDGES.reshape(1, -1)).min(axis=1) <= tol))
        assert r.hist.sum() == r.n_values == r.height * r.width
        assert np.abs(r.hist.astype(int) - ref["hist"]).sum() <= 2 * near_edge
    # end to end against the numpy reference on the raw maps of one site
    native = (16, 16)
    for r in (r for r in records if r.site == site):
        attn, layout = raw.maps[(site, r.step, r.stage)]
        a = attn[layout.rows_of(r.branch)][0].double().numpy()  # [H, Q, T]
        m = (a.sum(axis=-1) if r.token == -1 else a[..., r.token]).mean(axis=0).reshape(native)
        if resolution is not None:
            m = m.reshape(resolution, 2, resolution, 2).mean(axis=(1, 3))
        ref = encode.summarise(m)
        assert abs(r.mean - ref["mean"]) <= 1e-6 and abs(r.q90 - ref["q90"]) <= 1e-6
        data, scale = encode.encode_map(m.astype(np.float32), enc)
        if enc == "f16":  # two mean computations (torch on the maps vs numpy in float64): one float16 step apart at most
            stored, expect = r.data.view(np.float16), data.view(np.float16)
            step = np.spacing(np.maximum(np.abs(stored), np.abs(expect)))  # one float16 ulp at each value
            assert np.all(np.abs(stored.astype(np.float64) - expect.astype(np.float64)) <= step.astype(np.float64))
        else:
            assert scale == pytest.approx(r.scale, rel=1e-6) and np.abs(r.data.astype(int) - data).max() <= 1


# --- (f) bytes per sample ---------------------------------------------------------------------

def test_bytes_captured_grow_with_the_spec(pipe, ident):
    sizes, counts = {}, {}
    for name in ("summaries_only", "head_mean", "everything"):
        received = []
        with capture(pipe, named_spec(name), sink=received.append) as probe:
            _, records = probe.generate(name, PROMPT, ident, load_preset("dcg"), seed=7)
        assert received == [records] and isinstance(probe, AttentionObserver)
        sizes[name], counts[name] = probe.bytes_captured[name], len(records)
        assert probe.last_bytes == sizes[name]
        data_bytes = sum(0 if r.data is None else r.data.size * (2 if r.encoding == "f16" else 1) for r in records)
        assert sizes[name] == len(records) * (8 * 4 + 34 * 4) + data_bytes
        if name == "everything":
            assert {r.branch for r in records} == {"uncond", "id", "text_id"} and probe.skipped["text"] == 17 * 4
            assert {r.head_reduction for r in records} == {"none"} and {r.token for r in records} == {-1, 0, 1, 2, 3}
        else:
            assert {r.branch for r in records} == {"text_id"} and {r.head for r in records} == {-1}
    assert 0 < sizes["summaries_only"] < sizes["head_mean"] < sizes["everything"]
    assert counts["summaries_only"] == counts["head_mean"] == 17 * 4 * 2 * 4
