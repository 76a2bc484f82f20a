"""Probes without models: site parsing, capture specs, on-device reductions vs the store's
numpy reference (store.encode), histogram bins, downsampling, quantisation, packing."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from probes import reduce as R
from probes.sites import parse_site, select_sites
from probes.spec import NAMED_SPECS, CaptureSpec, SpecError, named_spec
from probes.transfer import Transfer, pack, unpack
from store import encode

# --- sites ----------------------------------------------------------------------------------------

SDXL_128 = (128, 128)  # SDXL latent of a 1024 px image


@pytest.mark.parametrize("key, part, block, attention, layer, grid", [
    ("down_blocks.1.attentions.0.transformer_blocks.1.attn2", "down", 1, 0, 1, (64, 64)),
    ("down_blocks.2.attentions.1.transformer_blocks.9.attn2", "down", 2, 1, 9, (32, 32)),
    ("mid_block.attentions.0.transformer_blocks.3.attn2", "mid", None, 0, 3, (32, 32)),
    ("up_blocks.0.attentions.2.transformer_blocks.6.attn2", "up", 0, 2, 6, (32, 32)),
    ("up_blocks.1.attentions.1.transformer_blocks.0.attn2", "up", 1, 1, 0, (64, 64)),
])
def test_parse_sdxl_keys(key, part, block, attention, layer, grid):
    s = parse_site(key, heads=20)
    assert (s.key, s.part, s.block, s.attention, s.layer, s.attn, s.heads) == (key, part, block, attention, layer,
                                                                              "attn2", 20)
    assert s.resolution(SDXL_128) == grid
    assert parse_site(key + ".processor", heads=20) == s


def test_resolution_non_square_and_odd_latents():
    s = parse_site("down_blocks.2.attentions.0.transformer_blocks.0.attn2")
    assert s.resolution((96, 160)) == (24, 40)
    assert s.resolution((9, 9)) == (3, 3)  # ceil(ceil(9/2)/2): stride-2 convs with padding 1
    up1 = parse_site("up_blocks.1.attentions.0.transformer_blocks.0.attn2", n_down=3)
    assert up1.resolution((9, 9)) == (5, 5)


@pytest.mark.parametrize("bad", [
    "up_blocks.0.attentions.2.transformer_blocks.6", "mid_block.0.attentions.0.transformer_blocks.0.attn2",
    "down_blocks.attentions.0.transformer_blocks.0.attn2", "up_blocks.0.attentions.x.transformer_blocks.0.attn2",
    "encoder.up_blocks.0.attentions.0.transformer_blocks.0.attn2", "", "up_blocks.0.attentions.0.attn2",
])
def test_parse_rejects_unknown_formats(bad):
    with pytest.raises(ValueError, match="not an SDXL attention site"):
        parse_site(bad)


def test_select_sites_by_part_glob_and_key():
    keys = ["down_blocks.1.attentions.0.transformer_blocks.0.attn2", "mid_block.attentions.0.transformer_blocks.0.attn2",
            "up_blocks.0.attentions.0.transformer_blocks.0.attn2", "up_blocks.1.attentions.2.transformer_blocks.0.attn2"]
    sites = [parse_site(k) for k in keys]
    assert [s.key for s in select_sites(sites, ("mid",))] == [keys[1]]
    assert [s.key for s in select_sites(sites, ("up_blocks.0.*", keys[0]))] == [keys[0], keys[2]]
    assert len(select_sites(sites, None)) == 4
    with pytest.raises(ValueError, match="match no IP-Adapter site"):
        select_sites(sites, ("up_blocks.7.*",))


def test_site_record_uses_store_conventions():
    rec = parse_site("mid_block.attentions.0.transformer_blocks.0.attn2", heads=4).site_record((32, 32))
    assert (rec.part, rec.block, rec.height, rec.width, rec.heads) == ("mid", 0, 8, 8, 4)


# --- spec ----------------------------------------------------------------------------------------

def test_spec_defaults_and_round_trip():
    spec = CaptureSpec()
    assert spec.branches == ("text_id",) and spec.heads == "mean" and spec.stages == ("pre", "post")
    assert spec.token_list == (0, 1, 2, 3) and spec.encoding == "f16"
    custom = CaptureSpec(sites=["up", "down_blocks.2.*"], steps=[0, 3], tokens=[1, 2], token_sum=True,
                         branches=["uncond", "text_id"], heads="each", stages=["post"], resolution=8, dtype="uint8")
    assert custom.token_list == (1, 2, -1) and custom.encoding == "u8"
    text = custom.to_json()
    assert json.loads(text)["sites"] == ["up", "down_blocks.2.*"]
    assert CaptureSpec.from_json(text) == custom
    for name, s in NAMED_SPECS.items():
        assert CaptureSpec.from_dict(json.loads(s.to_json())) == s == named_spec(name)
    assert named_spec("summaries_only").encoding == "none"


@pytest.mark.parametrize("kwargs, match", [
    (dict(heads="median"), "heads"), (dict(stages=("pre", "middle")), "stages"), (dict(stages=()), "stages"),
    (dict(branches=("cond",)), "branches"), (dict(tokens=(4,)), "tokens"), (dict(tokens=(1, 1)), "duplicate"),
    (dict(steps=(-1,)), "steps"), (dict(resolution=0), "resolution"), (dict(dtype="bfloat16"), "dtype"),
    (dict(keep_maps=1), "keep_maps"), (dict(sites=("upblocks.0",)), "sites"), (dict(full_batch="yes"), "full_batch"),
])
def test_spec_validation(kwargs, match):
    with pytest.raises(SpecError, match=match):
        CaptureSpec(**kwargs)


def test_spec_unknown_key_is_named():
    with pytest.raises(SpecError, match=r"unknown key\(s\) \['head'\]"):
        CaptureSpec.from_dict({"head": "mean"})
    with pytest.raises(SpecError, match="unknown capture spec"):
        named_spec("all")


# --- reductions vs store.encode ------------------------------------------------------------------

def _maps(n=12, h=7, w=9, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, h, w, generator=g) ** 3
    x[0] = 0.0  # all zero: entropy undefined
    x[1, 0, 0] = -0.25  # a negative value: entropy of the positive part, hist[0]
    x[2] = 0.5  # constant
    x[3] = x[3] * 3.0  # values above 1
    x[4, 1, 1] = 1.0  # exactly on the last edge
    x[4, 2, 2] = 0.5  # exactly on an inner edge
    return x


def test_summaries_match_numpy_reference():
    maps = _maps()
    stats, hist = R.summarise(maps)
    assert stats.shape == (12, len(R.SUMMARY_FIELDS)) and stats.dtype == torch.float32
    for i in range(maps.shape[0]):
        ref = encode.summarise(maps[i].numpy())
        for j, name in enumerate(R.SUMMARY_FIELDS):
            got = float(stats[i, j])
            if ref[name] is None:
                assert np.isnan(got), (i, name)
            else:
                assert got == pytest.approx(ref[name], rel=2e-6, abs=2e-7), (i, name)
        assert np.array_equal(hist[i].numpy(), ref["hist"]), i
        assert ref["n_values"] == 63


def test_std_is_population_std():
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    stats, _ = R.summarise(x)
    assert float(stats[0, 2]) == pytest.approx(np.std([1, 2, 3, 4]))  # ddof 0: 1.1180, not 1.2910


def test_histogram_equals_numpy_histogram_on_the_same_bins():
    g = torch.Generator().manual_seed(1)
    v = torch.rand(5, 1000, generator=g)
    v[:, :32] = torch.arange(32) / 32.0  # every inner edge exactly
    v[:, 32] = 1.0
    counts = R.histogram(v)
    for i in range(5):
        ref, _ = np.histogram(v[i].numpy(), bins=encode.HIST_EDGES)
        assert np.array_equal(counts[i, 1:33].numpy(), ref)
        assert counts[i, 0] == 0 and counts[i, 33] == 0
    outside = R.histogram(torch.tensor([[-1e-3, -2.0, 1.0 + 1e-6, 7.0, 0.0]]))
    assert outside[0, 0] == 2 and outside[0, 33] == 2 and outside[0, 1] == 1


def test_downsampling_area_average():
    const = torch.full((3, 16, 12), 0.37)
    size = R.target_size(16, 12, 8)
    assert size == (8, 6)
    assert torch.allclose(R.downsample(const, size), torch.full((3, 8, 6), 0.37))
    x = torch.arange(16.0).reshape(1, 4, 4)
    assert R.downsample(x, (2, 2)).tolist() == [[[2.5, 4.5], [10.5, 12.5]]]
    assert R.target_size(4, 4, 8) == (4, 4) and R.target_size(4, 4, None) == (4, 4)  # never upsampled


def test_head_token_and_branch_selection():
    from fastface.method.guidance import BranchLayout

    attn = torch.softmax(torch.randn(3, 2, 6, 4, generator=torch.Generator().manual_seed(2)), dim=-1)
    layout = BranchLayout(2, (0, 1, 2))  # uncond, id, text_id
    rows, present, missing = R.select_branch_rows(attn, layout, ("text_id", "uncond", "text"))
    assert present == ["uncond", "text_id"] and missing == ["text"]
    assert torch.equal(rows, attn[[0, 2]])
    x = R.select_tokens(R.reduce_heads(rows, "mean"), (2, -1))
    assert x.shape == (2, 1, 6, 2)
    assert torch.allclose(x[..., 0], rows[..., 2].mean(dim=1, keepdim=True))
    assert torch.allclose(x[..., 1], torch.ones(2, 1, 6))  # token sum of softmax rows
    mx = R.reduce_heads(rows, "max")
    assert torch.equal(mx, rows.amax(dim=1, keepdim=True))
    maps = R.as_maps(R.reduce_heads(rows, "each"), (2, 3))
    assert maps.shape == (2 * 2 * 4, 2, 3)
    assert torch.equal(maps[(1 * 2 + 1) * 4 + 3].reshape(-1), rows[1, 1, :, 3])  # branch 1, head 1, token 3


def test_quantisation_matches_reference_and_error_bounds():
    maps = _maps()  # map 1 has a negative value: u8 clamps it to 0, as store.encode does
    f16, none = R.quantise(maps, "f16")
    assert none is None
    codes, scale = R.quantise(maps, "u8")
    assert codes.dtype == torch.uint8 and scale.dtype == torch.float64
    for i in range(maps.shape[0]):
        m = maps[i].numpy()
        ref16, _ = encode.encode_map(m, "f16")
        assert np.array_equal(f16[i].view(torch.int16).numpy().view(np.uint16), ref16)
        ref8, ref_scale = encode.encode_map(m, "u8")
        assert np.array_equal(codes[i].numpy().astype(np.uint16), ref8)
        assert float(scale[i]) == ref_scale
        back8 = R.dequantise(codes[i:i + 1], scale[i:i + 1]).reshape(m.shape).numpy()
        assert np.abs(back8 - np.maximum(m, 0)).max() <= encode.max_abs_error(m, "u8") + 1e-7
        back16 = f16[i].float().reshape(m.shape).numpy()
        assert np.abs(back16 - m).max() <= encode.max_abs_error(m, "f16")
    assert float(scale[0]) == 1.0 and int(codes[0].max()) == 0  # all-zero map


def test_pack_and_unpack_one_buffer():
    maps = _maps(n=5).clamp_min(0)
    stats, hist = R.summarise(maps)
    data, _ = R.quantise(maps, "f16")
    packed = pack([stats[:2], stats[2:]], [hist[:2], hist[2:]], [data[:2], data[2:]])
    assert packed.dtype == torch.uint8 and packed.numel() == 5 * (8 * 4 + 34 * 4) + data.numel() * 2
    host = Transfer.start(packed).wait()
    s, h, d = unpack(host, 5, data.numel(), "f16")
    assert np.array_equal(s, stats.numpy(), equal_nan=True) and np.array_equal(h, hist.numpy())
    assert np.array_equal(d, data.reshape(-1).view(torch.int16).numpy().view(np.uint16))
