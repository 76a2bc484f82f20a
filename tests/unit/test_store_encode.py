"""store.encode (the numpy reference of the probes' encoding/summaries) and store.records."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store import encode  # noqa: E402
from store.records import MapRecord, SiteRecord, canonical_json, sample_key  # noqa: E402


def test_hist_edges_and_bins():
    assert encode.HIST_EDGES.shape == (33,) and encode.HIST_BINS == 34
    assert encode.HIST_EDGES[0] == 0 and encode.HIST_EDGES[-1] == 1
    h = encode.histogram(np.array([-0.5, 0.0, 1 / 32 - 1e-12, 1 / 32, 0.5, 1.0, 1.5, 2.0]))
    expected = np.zeros(34, np.int32)
    expected[0] = 1            # -0.5
    expected[1] = 2            # 0.0 and just below 1/32
    expected[2] = 1            # exactly 1/32 opens bin 2
    expected[1 + 16] = 1       # 0.5
    expected[32] = 1           # 1.0 closes the last regular bin
    expected[33] = 2           # > 1
    np.testing.assert_array_equal(h, expected)
    assert h.dtype == np.int32


def test_summarise_known_values():
    m = np.array([[0.0, 0.25], [0.25, 0.5]])
    s = encode.summarise(m)
    assert s["n_values"] == 4 and s["min"] == 0.0 and s["max"] == 0.5
    assert s["mean"] == pytest.approx(0.25) and s["std"] == pytest.approx(np.std([0, .25, .25, .5]))
    p = np.array([0.25, 0.25, 0.5])
    assert s["entropy"] == pytest.approx(-(p * np.log(p)).sum())
    assert s["q50"] == pytest.approx(0.25) and s["q90"] == pytest.approx(0.425)
    assert s["hist"].sum() == 4
    uniform = encode.summarise(np.full((4, 8), 1 / 32))
    assert uniform["entropy"] == pytest.approx(math.log(32))
    assert encode.summarise(np.array([[-1.0, 1.0]]))["entropy"] == 0.0  # positive part [0, 1]: one cell
    assert encode.summarise(np.zeros((2, 2)))["entropy"] is None
    with pytest.raises(ValueError):
        encode.summarise(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        encode.summarise(np.zeros(4))


def test_f16_round_trip_is_numpy_half():
    rng = np.random.default_rng(0)
    m = rng.random((16, 16)).astype(np.float32) * 3 - 1
    data, scale = encode.encode_map(m, "f16")
    assert data.dtype == np.uint16 and data.shape == (256,) and scale is None
    back = encode.decode_map(data, "f16", scale, 16, 16)
    np.testing.assert_array_equal(back, m.astype(np.float16).astype(np.float32))
    assert np.abs(back - m).max() <= encode.max_abs_error(m, "f16")


def test_u8_round_trip_within_half_a_step():
    rng = np.random.default_rng(1)
    m = rng.random((8, 12)) ** 3
    data, scale = encode.encode_map(m, "u8")
    assert data.max() == 255 and data.min() >= 0 and scale == pytest.approx(m.max() / 255)
    back = encode.decode_map(data, "u8", scale, 8, 12)
    assert np.abs(back - m).max() <= encode.max_abs_error(m, "u8")
    assert encode.encode_map(np.zeros((2, 2)), "u8")[1] == 1.0
    q, scale = encode.encode_map(np.array([[-0.1, 1.0]]), "u8")   # negatives clamp to 0 (as the probes)
    assert q.tolist() == [0, 255] and scale == pytest.approx(1 / 255)
    assert encode.encode_map(m, "none") == (None, None)
    with pytest.raises(ValueError):
        encode.encode_map(m, "bf16")


def test_map_record_from_map_carries_encoding_and_summaries():
    m = np.arange(12, dtype=np.float64).reshape(3, 4) / 66
    r = MapRecord.from_map(m, site="mid_block.attentions.0.transformer_blocks.0.attn2", step=1,
                           branch="id", encoding="u8")
    assert (r.height, r.width, r.n_values, r.encoding) == (3, 4, 12, "u8")
    assert r.mean == pytest.approx(m.mean()) and r.scale == pytest.approx(m.max() / 255)
    np.testing.assert_array_equal(r.hist, encode.histogram(m))


def test_sample_key_is_deterministic_and_sensitive():
    k = sample_key("alice", "a photo", 3)
    assert k == sample_key("alice", "a photo", 3) and len(k) == 40
    assert len({k, sample_key("alice", "a photo", 4), sample_key("alice", "a photo", 3, "x"),
                sample_key("bob", "a photo", 3)}) == 4
    assert canonical_json('{"b": 1, "a": [1, 2]}') == '{"a":[1,2],"b":1}'


def test_site_record_parses_processor_keys():
    s = SiteRecord.from_key("up_blocks.0.attentions.2.transformer_blocks.6.attn2.processor", 20, 32, 32)
    assert (s.site, s.part, s.block, s.attention, s.layer, s.attn) == (
        "up_blocks.0.attentions.2.transformer_blocks.6.attn2", "up", 0, 2, 6, "attn2")
    m = SiteRecord.from_key("mid_block.attentions.0.transformer_blocks.3.attn1", 20, 32, 32)
    assert (m.part, m.block, m.layer, m.attn) == ("mid", 0, 3, "attn1")
    with pytest.raises(ValueError):
        SiteRecord.from_key("up_blocks.0.resnets.1", 1, 1, 1)
