"""The other half of the decoupled block (issue 27) on the tiny world (CPU): the balance equals
the norms of the block's two terms recomputed by hand from the attention module's inputs
(a forward pre-hook) and weights, the ID term is 0 with lambda = 0, the balance reaches the
store and its view; word maps equal softmax(Q K^T / sqrt(d)) recomputed from to_q / to_k and the
prompt's token ids; a word absent from the prompt is a clear error."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fastface.method.config import load_preset
from probes.capture import capture
from probes.spec import BRANCHES, CaptureSpec

PROMPT = "a watercolor of a person in a library"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from fastface.models.tiny import build_tiny_world

    return build_tiny_world(tmp_path_factory.mktemp("tw"))


@pytest.fixture(scope="module")
def pipe(world):
    from fastface.models.pipeline import load_pipeline

    from tests.conftest import share_pipeline

    return share_pipeline(load_pipeline("hyper", tiny=True, face_backend="none", weights_root=world))


@pytest.fixture(scope="module")
def ident(pipe):
    rng = np.random.RandomState(0)
    emb = rng.randn(128).astype(np.float32)
    emb /= np.linalg.norm(emb)
    return pipe.identity_from_arrays(emb, rng.randint(0, 256, (224, 224, 3)).astype(np.uint8), name="random")


class InputHook:
    """Forward pre-hooks on chosen attention modules: their inputs per call (copies), in order."""

    def __init__(self, pipe, sites):
        self.calls = {s: [] for s in sites}
        self.handles = [pipe.pipe.unet.get_submodule(s).register_forward_pre_hook(self._hook(s), with_kwargs=True)
                        for s in sites]

    def _hook(self, site):
        def hook(module, args, kwargs):
            hs = args[0] if args else kwargs["hidden_states"]
            enc = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
            self.calls[site].append((hs.detach().clone(), enc[0].detach().clone(), enc[1][0].detach().clone()))
        return hook

    def remove(self):
        for h in self.handles:
            h.remove()


def _heads(x, heads):
    b, c = x.shape[0], x.shape[-1]  # the ID tokens come as [B, images, tokens, C]
    return x.reshape(b, -1, heads, c // heads).transpose(1, 2).double()


def _softmax_attention(q, k):
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)


def hand_terms(module, hs, enc, ip, ip_scale, am1=None):
    """(text term, ID term) [B, Q, C] of the decoupled block, in float64, from the module's
    weights: Attention(Q, K, V) and lambda * f(softmax(Q K'^T / sqrt d)) V' (METHOD.md sec. 2, 4)."""
    proc = module.processor
    h = module.heads
    q = _heads(module.to_q(hs), h)
    k, v = _heads(module.to_k(enc), h), _heads(module.to_v(enc), h)
    kp, vp = _heads(proc.to_k_ip[0](ip), h), _heads(proc.to_v_ip[0](ip), h)
    text = _softmax_attention(q, k) @ v
    a = _softmax_attention(q, kp)
    if am1 is not None:  # AM1, Eq. 8: min(s * A^p, 10)
        s, p = am1
        a = torch.clamp(s * a.pow(p), max=10.0)
    ident = ip_scale * (a @ vp)
    merge = lambda x: x.transpose(1, 2).reshape(x.shape[0], -1, x.shape[1] * x.shape[3])  # noqa: E731
    return merge(text), merge(ident)


SITES = ("down_blocks.1.attentions.0.transformer_blocks.0.attn2",
         "up_blocks.0.attentions.1.transformer_blocks.1.attn2")


@pytest.mark.parametrize("preset", ["baseline", "am1"])
def test_balance_equals_norms_of_the_two_terms_recomputed(pipe, ident, preset):
    config = load_preset(preset)
    spec = CaptureSpec(sites=SITES, branches=BRANCHES, full_batch=True, keep_maps=False)
    hook = InputHook(pipe, SITES)
    try:
        with capture(pipe, spec) as probe:
            probe.generate("s", PROMPT, ident, config, seed=3)
            balance = probe.pop_balance("s")
    finally:
        hook.remove()
    got = {(r.site, r.step, r.branch): r for r in balance}
    assert {(s, b) for s, _, b in got} == {(s, b) for s in SITES for b in ("uncond", "id", "text_id")}
    checked = 0
    for site in SITES:
        module = pipe.pipe.unet.get_submodule(site)
        part = "up" if site.startswith("up") else "down"
        am1 = (config.am.am1.scale_for(part), config.am.am1.power) if config.am.kind == "am1" else None
        for step, (hs, enc, ip) in enumerate(hook.calls[site]):
            with torch.no_grad():
                text, idt = hand_terms(module, hs, enc, ip, config.ip_scale, am1)
            t_norm, i_norm = text.norm(dim=-1), idt.norm(dim=-1)  # [B, Q]
            names = [b for (s, st, b) in got if s == site and st == step]
            assert len(names) == hs.shape[0]
            for row, branch in enumerate(("uncond", "id", "text_id")):  # DCG_2 order, one row each
                rec = got[(site, step, branch)]
                assert rec.n_rows == 1 and rec.n_queries == hs.shape[1]
                np.testing.assert_allclose(rec.text_norm, t_norm[row].mean().item(), rtol=2e-5)
                np.testing.assert_allclose(rec.id_norm, i_norm[row].mean().item(), rtol=2e-5)
                # the stored map is the per-query norm area-averaged: its mean is the same mean
                np.testing.assert_allclose(rec.text_norm_map.mean(), rec.text_norm, rtol=1e-5)
                checked += 1
    assert checked == len(SITES) * 4 * 3


def test_id_term_is_zero_with_lambda_zero(pipe, ident):
    config = load_preset("am1").with_scales(ip_scale=0.0)
    with capture(pipe, CaptureSpec(keep_maps=False)) as probe:
        probe.generate("s", PROMPT, ident, config, seed=3)
        balance = probe.pop_balance("s")
    assert len(balance) == 17 * 4  # every tiny site, every step, the one branch of the baseline guidance
    assert all(r.id_norm == 0.0 and not r.id_norm_map.any() for r in balance)
    assert all(r.text_norm > 0 for r in balance)


def test_balance_off_and_image_unchanged(pipe, ident):
    ref = np.asarray(pipe.generate(PROMPT, ident, load_preset("ff-am2"), seed=5).image)
    for spec in (CaptureSpec(keep_maps=False, balance=False), CaptureSpec(sites=("up",), steps=(1,), keep_maps=False)):
        with capture(pipe, spec) as probe:
            result, _ = probe.generate("s", PROMPT, ident, load_preset("ff-am2"), seed=5)
            balance = probe.pop_balance("s")
        assert np.array_equal(np.asarray(result.image), ref)
        if spec.balance:
            assert balance and {r.step for r in balance} == {1} and all(r.site.startswith("up") for r in balance)
        else:
            assert balance == []


def test_balance_in_the_store_with_the_face_box_split(pipe, ident, tmp_path):
    from store.db import open_store
    from store.records import FaceRecord, RunRecord, SampleRecord
    from store.writer import StoreWriter

    with capture(pipe, CaptureSpec(keep_maps=False)) as probe:
        result, maps = probe.generate("k1", PROMPT, ident, load_preset("baseline"), seed=3)
        balance = probe.pop_balance("k1")
    w, h = result.width, result.height
    box = (0.25 * w, 0.25 * h, 0.75 * w - 1, 0.75 * h - 1)  # the central quarter of the image
    with StoreWriter(tmp_path / "st") as writer:
        writer.begin_run(RunRecord("r", config={}))
        writer.write_sample("r", SampleRecord("k1", "random", PROMPT, "stylistic", 3, image_png=b"x", width=w, height=h),
                            maps=maps, balance=balance,
                            faces=[FaceRecord("generated", True, "test", bbox=box)])
    con = open_store(tmp_path / "st").connect_read_only()
    rows = con.execute("select site, step, branch, text_norm, id_norm, id_ratio, id_share, n_box_cells, "
                       "text_norm_in_box, text_norm_out_box, id_share_in_box, height, width from balance").fetchall()
    assert len(rows) == len(balance)
    ref = {(r.site, r.step, r.branch): r for r in balance}
    for site, step, branch, t, i, ratio, share, n_box, t_in, t_out, share_in, hh, ww in rows:
        r = ref[(site, step, branch)]
        assert (t, i) == pytest.approx((r.text_norm, r.id_norm), rel=1e-12)
        assert ratio == pytest.approx(i / t) and share == pytest.approx(i / (i + t))
        # the central quarter of an h x w grid (cell centres inside [w/4, 3w/4 - 1]): by hand
        m = r.text_norm_map.reshape(hh, ww).astype(np.float64)
        cy = (np.arange(hh) + 0.5) * h / hh
        cx = (np.arange(ww) + 0.5) * w / ww
        inside = ((cy >= box[1]) & (cy <= box[3]))[:, None] & ((cx >= box[0]) & (cx <= box[2]))[None, :]
        assert n_box == inside.sum() > 0
        assert t_in == pytest.approx(m[inside].mean()) and t_out == pytest.approx(m[~inside].mean())
        assert 0 <= share_in <= 1


# --- word maps -----------------------------------------------------------------------------------

def _hand_word_positions(pipe, prompt, word):
    """Positions of ``word`` in the prompt's 77 token ids, found by hand: the ids of the word
    tokenized alone (between its start and end tokens) located in the prompt's ids."""
    tok = pipe.pipe.tokenizer
    ids = tok(prompt, padding="max_length", max_length=77, truncation=True).input_ids
    sub = tok(word).input_ids[1:-1]
    return [i + k for i in range(len(ids) - len(sub) + 1) if ids[i:i + len(sub)] == sub for k in range(len(sub))]


def test_word_maps_equal_softmax_of_to_q_to_k_recomputed(pipe, ident):
    from store import encode

    site = SITES[1]
    spec = CaptureSpec(sites=(site,), words=("watercolor", "library", "<end>"), branches=BRANCHES, full_batch=True)
    hook = InputHook(pipe, (site,))
    try:
        with capture(pipe, spec) as probe:
            _, records = probe.generate("s", PROMPT, ident, load_preset("dcg"), seed=3)
    finally:
        hook.remove()
    text = {(r.step, r.branch, r.word): r for r in records if r.stream == "text"}
    # only branches with the text prompt have word maps: DCG_2 runs uncond, id (empty prompt), text_id
    assert {b for _, b, _ in text} == {"text_id"} and len(text) == 4 * 3
    assert all(r.token == -1 and r.stage == "pre" and r.head == -1 for r in text.values())
    module = pipe.pipe.unet.get_submodule(site)
    end = pipe.pipe.tokenizer(PROMPT).input_ids.index(pipe.pipe.tokenizer.eos_token_id)
    for step, (hs, enc, _) in enumerate(hook.calls[site]):
        with torch.no_grad():
            a = _softmax_attention(_heads(module.to_q(hs), module.heads), _heads(module.to_k(enc), module.heads))
        row = 2  # text_id
        for word in ("watercolor", "library", "<end>"):
            pos = [end] if word == "<end>" else _hand_word_positions(pipe, PROMPT, word)
            assert pos
            want = a[row, :, :, pos].sum(-1).mean(0).float().numpy()  # words summed, heads averaged
            r = text[(step, "text_id", word)]
            got = encode.decode_map(r.data, r.encoding, r.scale, r.height, r.width).reshape(-1)
            np.testing.assert_allclose(got, want, rtol=2 ** -10, atol=1e-6)  # float16 storage


def test_word_absent_from_the_prompt_is_a_clear_error(pipe, ident):
    from fastface.method.config import ConfigError

    with capture(pipe, CaptureSpec(words=("watercolor", "dog"))) as probe:
        with pytest.raises(ConfigError) as e:
            probe.generate("s", PROMPT, ident, load_preset("baseline"), seed=3)
    msg = str(e.value)
    assert "'dog'" in msg and PROMPT in msg
    for w in ("watercolor", "person", "library", "<start>", "<end>"):
        assert f"'{w}'" in msg


def test_all_words_and_the_store_keeps_both_streams(pipe, ident, tmp_path):
    from store.db import open_store
    from store.records import RunRecord, SampleRecord
    from store.writer import StoreWriter

    spec = CaptureSpec(sites=("up",), steps=(1,), words="all")
    with capture(pipe, spec) as probe:
        result, maps = probe.generate("k1", PROMPT, ident, load_preset("baseline"), seed=3)
        balance = probe.pop_balance("k1")
    words = {r.word for r in maps if r.stream == "text"}
    assert words == {"<start>", "a", "watercolor", "of", "person", "in", "library", "<end>"}
    # a word's map is a sum of softmax columns: the map of every word together sums to 1 per query
    # minus the padding positions' share (> 0 here)
    with StoreWriter(tmp_path / "st") as writer:
        writer.begin_run(RunRecord("r", config={}))
        writer.write_sample("r", SampleRecord("k1", "random", PROMPT, "stylistic", 3, image_png=b"x",
                                              width=result.width, height=result.height), maps=maps, balance=balance)
    con = open_store(tmp_path / "st").connect_read_only()
    got = dict(con.execute("select stream, count(*) from maps group by stream").fetchall())
    assert got == {"id": sum(r.stream == "id" for r in maps), "text": sum(r.stream == "text" for r in maps)}
    stats = con.execute("select word, sum(n_maps), avg(avg_mean) from map_stats where stream = 'text' "
                        "group by word order by word").fetchall()
    assert [w for w, _, _ in stats] == sorted(words)
    # the ID views keep their meaning: step_summary counts ID maps only
    assert con.execute("select sum(n_maps) from step_summary").fetchall()[0][0] == sum(r.stream == "id" for r in maps)


def test_am1_raises_the_id_share_at_the_up_blocks_on_the_face_world():
    """AM1 (min(s * A^p, 10), s = 1.45 at the up blocks) sharpens the ID maps and scales them up:
    the ID term's share of the block output grows at the up blocks. Measured with
    tests/benchmarks/bench_balance_face_world.py: 8 of 8 samples, mean up share 0.558 -> 0.613
    (baseline -> AM1; AM2 0.734). Asserted here on 3 samples, each and on average."""
    from tests.benchmarks.bench_balance_face_world import face_world_samples, id_shares

    pipe, samples = face_world_samples(3)
    base = [id_shares(pipe, i, p, "baseline", s, parts=("up",))["up"] for i, p, s in samples]
    am1 = [id_shares(pipe, i, p, "am1", s, parts=("up",))["up"] for i, p, s in samples]
    assert all(a > b for a, b in zip(am1, base)), (base, am1)
    assert np.mean(am1) > np.mean(base)
