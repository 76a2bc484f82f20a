"""The captured maps, as stored, against an independent recomputation of the attention (issue 28).

Nothing of the probe path is reused for the reference: a forward pre-hook on each decoupled
``attn2`` module records its inputs (the hidden states and the IP tokens) before the processor
runs; the test computes ``A = softmax(Q K'^T / sqrt(d))`` per head in float64 from the module's
own ``to_q`` and the loaded adapter's ``to_k_ip`` (diffusers' processor, not FastFace's), reduces
it as the capture spec says (mean over heads, one map per ID token, the query axis laid out
row-major on the site's square grid), and compares it with the maps **in the store**, read by
plain DuckDB and decoded with numpy (float16 bit patterns). The post maps are checked against
METHOD.md's formulas written out below (AM1 everywhere, AM2 on one site). Branch rows: DCG_2's
batch is (uncond, id, text_id), METHOD.md section 3. The step of a hook call is the UNet call's
index. Orientation is part of the check: the test first shows that the reference differs from
its own flipped and transposed maps by far more than the tolerance.
"""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from fastface.method.config import load_preset

PROMPT = "a photo of a person"
DCG2_ROWS = ("uncond", "id", "text_id")  # METHOD.md section 3, DCG_2
STEPS = 4
# METHOD.md section 4
AM1_S = {"down": 1.55, "up": 1.45}
AM1_P = 1.3
AM2_D = [7.5, 5.0, 5.0, 5.0]
AM2_Q = 0.65
AM2_S = [1.0, 1.55, 1.55, 1.55]
AM2_SITE = "down_blocks.1.attentions.0.transformer_blocks.0.attn2"
# float16 storage (2**-11 relative) + float32 compute in the processor vs float64 here
TOL = 2e-3


def _part(site: str) -> str:
    return {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[site.split(".")[0]]


@pytest.fixture(scope="module")
def pipe(tiny_root):
    from fastface.models.pipeline import load_pipeline
    from tests.conftest import share_pipeline

    return share_pipeline(load_pipeline("hyper", tiny=True, weights_root=tiny_root, face_backend="none"))


@pytest.fixture(scope="module")
def ident(pipe):
    rng = np.random.RandomState(0)
    emb = rng.randn(128).astype(np.float32)
    return pipe.identity_from_arrays(emb / np.linalg.norm(emb), rng.randint(0, 256, (224, 224, 3)).astype(np.uint8))


class InputHooks:
    """Forward pre-hooks on the attn2 modules: per site, the inputs of each call, in call order."""

    def __init__(self, unet, sites):
        self.inputs: dict[str, list] = {s: [] for s in sites}
        self.handles = [unet.get_submodule(s).register_forward_pre_hook(self._hook(s), with_kwargs=True)
                        for s in sites]

    def _hook(self, site):
        def hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            text, ip = kwargs["encoder_hidden_states"]
            self.inputs[site].append((hidden.detach().clone(), ip[0].detach().clone()))
        return hook

    def close(self):
        for h in self.handles:
            h.remove()


def reference_attention(pipe, site: str, hidden: torch.Tensor, ip_tokens: torch.Tensor) -> np.ndarray:
    """[batch, heads, queries, tokens] softmax(Q K'^T / sqrt(d)) in float64, from the module's
    to_q and diffusers' loaded to_k_ip."""
    attn = pipe.pipe.unet.get_submodule(site)
    assert attn.spatial_norm is None and attn.group_norm is None and hidden.ndim == 3  # as SDXL's attn2
    loaded = pipe._original_processors[site + ".processor"]  # diffusers' IPAdapterAttnProcessor2_0
    with torch.no_grad():
        q = attn.to_q(hidden).double().numpy()
        k = loaded.to_k_ip[0](ip_tokens).double().numpy()
    b, n_q, inner = q.shape
    h = attn.heads
    d = inner // h
    q = q.reshape(b, n_q, h, d).transpose(0, 2, 1, 3)           # [B, H, Q, d]
    k = k.reshape(b, -1, h, d).transpose(0, 2, 1, 3)             # [B, H, T, d] (images x tokens)
    logits = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)          # [B, H, Q, T]
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def as_grid(per_query: np.ndarray) -> np.ndarray:
    """Queries laid out row-major on the square grid: query k is cell (k // side, k % side)."""
    side = math.isqrt(per_query.shape[0])
    assert side * side == per_query.shape[0]
    return per_query.reshape(side, side)


def am1_formula(a: np.ndarray, part: str) -> np.ndarray:
    """METHOD.md Eq. 8: f(A) = min(s * A^p, 10); mid excluded."""
    if part == "mid":
        return a
    return np.minimum(AM1_S[part] * a ** AM1_P, 10.0)


def am2_formula(a: np.ndarray, step: int) -> np.ndarray:
    """METHOD.md section 4, AM2 as released, on a whole [B, H, Q, T] batch (no AdaIN)."""
    def norm(x):  # per token, over batch rows, heads and queries together
        lo = x.min(axis=(0, 1, 2), keepdims=True)
        hi = x.max(axis=(0, 1, 2), keepdims=True)
        return (x - lo) / (hi - lo)

    x = a.copy()
    x[..., 0] = 1.0 - a[..., 0]                                              # 1. first-token inversion
    q = np.maximum(np.quantile(x, AM2_Q, axis=2, keepdims=True), 1e-6)     # 2. q on the raw map
    t = norm(1.0 / (1.0 + np.exp(-AM2_D[step] * (norm(x) - q))))
    t = np.minimum(AM2_S[step] * t, 10.0)                                    # 3. scale
    t[..., 0] = t[..., 0].max(axis=2, keepdims=True) - t[..., 0]             # token 0 turned back
    return t


def store_maps(store, run_id: str) -> dict:
    """{(site, step, branch, token, head, stage): 2-D float map} read with plain DuckDB + numpy."""
    import duckdb

    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        rows = con.execute("select site, step, branch, token, head, stage, height, width, encoding, data "
                           "from maps where run_id = ?", [run_id]).fetchall()
    finally:
        con.close()
    out = {}
    for site, step, branch, token, head, stage, height, width, encoding, data in rows:
        assert encoding == "f16"
        values = np.asarray(data, dtype=np.uint16).view(np.float16).astype(np.float64)
        out[(site, step, branch, token, head, stage)] = values.reshape(height, width)
    return out


def capture_into_store(pipe, ident, store, run_id: str, preset: str, spec):
    """Generate with a probe and input hooks; write the records to the store; (hooks, result)."""
    from probes.capture import capture
    from store.records import RunRecord, SampleRecord
    from store.writer import StoreWriter

    hooks = InputHooks(pipe.pipe.unet, pipe.sites)
    try:
        with capture(pipe, spec) as probe:
            result, records = probe.generate("s0", PROMPT, ident, load_preset(preset), seed=11, steps=STEPS)
    finally:
        hooks.close()
    with StoreWriter(store) as w:
        w.begin_run(RunRecord(run_id=run_id, config=load_preset(preset).to_dict(), name=run_id, preset=preset,
                              checkpoint="hyper", ip_scale=0.8, lora_scale=1.0, seed=11,
                              capture_spec=spec.to_dict(), package_versions={}))
        png = io.BytesIO()
        result.image.save(png, format="PNG")
        assert w.write_sample(run_id, SampleRecord(sample_key="s0", identity="random", prompt=PROMPT,
                                                   category="realistic", seed=11, image_png=png.getvalue(),
                                                   width=result.width, height=result.height), maps=records)
    return hooks, result


@pytest.fixture(scope="module")
def am1_capture(pipe, ident, tmp_path_factory):
    """am1, every site, all three DCG_2 branches, head mean, pre and post, float16."""
    from probes.spec import BRANCHES, CaptureSpec

    store = tmp_path_factory.mktemp("probe-ref") / "store"
    spec = CaptureSpec(heads="mean", branches=BRANCHES, full_batch=True, dtype="float16")
    hooks, result = capture_into_store(pipe, ident, store, "am1", "am1", spec)
    return hooks, result, store_maps(store, "am1")


def test_reference_can_tell_orientation(pipe, am1_capture):
    """The check below can fail on a flipped or transposed map: the reference differs from them."""
    hooks, _, _ = am1_capture
    for site in pipe.sites:
        hidden, ip = hooks.inputs[site][1]
        a = reference_attention(pipe, site, hidden, ip).mean(axis=1)  # [B, Q, T]
        m = as_grid(a[2, :, 1])
        for other in (m[::-1], m[:, ::-1], m.T, m[::-1, ::-1]):
            assert np.abs(other - m).max() > 10 * TOL, site


def test_stored_pre_maps_equal_the_recomputed_softmax(pipe, am1_capture):
    hooks, result, stored = am1_capture
    assert [l.names for l in result.layouts] == [DCG2_ROWS] * STEPS
    checked = 0
    for site in pipe.sites:
        calls = hooks.inputs[site]
        assert len(calls) == STEPS, site  # one attn2 call per UNet call
        for step, (hidden, ip) in enumerate(calls):
            a = reference_attention(pipe, site, hidden, ip).mean(axis=1)  # heads reduced by mean: [B, Q, T]
            assert a.shape[0] == len(DCG2_ROWS)
            for row, branch in enumerate(DCG2_ROWS):
                for token in range(4):
                    ref = as_grid(a[row, :, token])
                    got = stored[(site, step, branch, token, -1, "pre")]
                    assert got.shape == ref.shape, (site, step, branch, token)
                    err = np.abs(got - ref).max()
                    assert err <= TOL, (site, step, branch, token, err)
                    checked += 1
    assert checked == len(pipe.sites) * STEPS * 3 * 4


def test_stored_post_maps_are_am1_of_the_recomputed_softmax(pipe, am1_capture):
    hooks, _, stored = am1_capture
    changed = 0
    for site in pipe.sites:
        part = _part(site)
        for step, (hidden, ip) in enumerate(hooks.inputs[site]):
            a = reference_attention(pipe, site, hidden, ip)           # per head: AM acts before the head mean
            post = am1_formula(a, part).mean(axis=1)                  # [B, Q, T]
            for row, branch in enumerate(DCG2_ROWS):
                for token in range(4):
                    ref = as_grid(post[row, :, token])
                    got = stored[(site, step, branch, token, -1, "post")]
                    assert np.abs(got - ref).max() <= TOL * max(1.0, np.abs(ref).max()), (site, step, branch, token)
                    pre = stored[(site, step, branch, token, -1, "pre")]
                    changed += int(np.abs(got - pre).max() > 10 * TOL)
    assert changed > 100  # AM1 visibly acted


def test_stored_post_maps_are_am2_of_the_recomputed_softmax_on_one_site(pipe, ident, tmp_path_factory):
    """AM2 (no AdaIN) on one down site: the formula over the whole 3-branch batch and every head."""
    from probes.spec import BRANCHES, CaptureSpec

    store = tmp_path_factory.mktemp("probe-ref-am2") / "store"
    spec = CaptureSpec(sites=(AM2_SITE,), heads="each", branches=BRANCHES, full_batch=True, dtype="float16")
    hooks, result, = capture_into_store(pipe, ident, store, "am2", "am2", spec)
    stored = store_maps(store, "am2")
    heads = pipe.pipe.unet.get_submodule(AM2_SITE).heads
    assert len(stored) == STEPS * 3 * heads * 4 * 2
    for step, (hidden, ip) in enumerate(hooks.inputs[AM2_SITE]):
        a = reference_attention(pipe, AM2_SITE, hidden, ip)
        post = am2_formula(a, step)
        assert np.abs(post - a).max() > 0.1  # AM2 changes the maps
        for row, branch in enumerate(DCG2_ROWS):
            for h in range(heads):
                for token in range(4):
                    got_pre = stored[(AM2_SITE, step, branch, token, h, "pre")]
                    assert np.abs(got_pre - as_grid(a[row, h, :, token])).max() <= TOL
                    ref = as_grid(post[row, h, :, token])
                    got = stored[(AM2_SITE, step, branch, token, h, "post")]
                    err = np.abs(got - ref).max()
                    assert err <= 3 * TOL * max(1.0, np.abs(ref).max()), (step, branch, h, token, err)
