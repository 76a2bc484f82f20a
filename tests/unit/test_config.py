"""Configurations, presets, branch layouts and the branch-skipping rule (no models)."""
from __future__ import annotations

import json

import pytest

from fastface.method.config import (
    AM2Config, ConfigError, FastFaceConfig, GuidanceConfig, load_preset, preset_names, resolve_config,
)
from fastface.method.guidance import LAYOUTS, BranchLayout, required_branches

PAPER = ["baseline", "dcg", "am1", "am2", "ff-am1", "ff-am2"]


def test_all_paper_presets_exist_and_round_trip():
    assert set(PAPER) <= set(preset_names())
    for name in preset_names():
        cfg = load_preset(name)
        assert cfg.name == name
        assert FastFaceConfig.from_json(cfg.to_json()) == cfg
        assert json.loads(cfg.to_json())["name"] == name


def test_presets_follow_method_section_5():
    dcg = load_preset("dcg").guidance
    assert (dcg.variant, dcg.alpha, dcg.beta, dcg.rescale) == (2, (1.0, 1.5, 1.5, 1.0), (1.0, 3.0, 3.0, 1.0), 0.75)
    assert load_preset("baseline").guidance.alpha is None  # the checkpoint's own scale
    assert load_preset("am1").am.kind == "am1" and load_preset("am1").guidance.alpha is None
    am1 = load_preset("am1").am.am1
    assert (am1.scale_down, am1.scale_up, am1.power) == (1.55, 1.45, 1.3)
    text = load_preset("am1-text").am.am1
    assert (text.scale_down, text.scale_up) == (1.45, 1.55)
    assert load_preset("am2").am.am2.adain_weight is None
    ff2 = load_preset("ff-am2")
    assert ff2.am.am2.adain_weight == (0.7,) and ff2.guidance == dcg
    assert ff2.am.am2.steepness == (7.5, 5.0, 5.0, 5.0) and ff2.am.am2.scale == (1.0, 1.55, 1.55, 1.55)
    for name in PAPER:
        assert load_preset(name).am.parts == ("down", "up")


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown preset 'ff-am3'.*ff-am2"):
        load_preset("ff-am3")


def test_unknown_key_names_the_key_and_valid_keys():
    with pytest.raises(ConfigError, match=r"guidance: unknown key\(s\) \['alfa'\].*'alpha'"):
        FastFaceConfig.from_dict({"guidance": {"alfa": 1}})
    with pytest.raises(ConfigError, match=r"am.am2: unknown key"):
        FastFaceConfig.from_dict({"am": {"kind": "am2", "am2": {"steep": 1}}})


@pytest.mark.parametrize("data, match", [
    ({"ip_scale": -0.1}, "ip_scale"),
    ({"lora_scale": "high"}, "lora_scale"),
    ({"guidance": {"variant": 4}}, "guidance.variant"),
    ({"guidance": {"rescale": 1.5}}, "guidance.rescale"),
    ({"guidance": {"alpha": [1, 2]}}, "both alpha and beta"),
    ({"am": {"kind": "am3"}}, "am.kind"),
    ({"am": {"parts": ["left"]}}, "am.parts"),
    ({"am": {"kind": "am2", "am2": {"quantile": 1.5}}}, "am.am2.quantile"),
    ({"am": {"kind": "am1", "am1": {"power": 0}}}, "am.am1.power"),
    ({"am": {"kind": "am2", "am2": {"quantile_dtype": "half"}}}, r"am.am2.quantile_dtype: 'half' is not 'float32' or 'float16'"),
])
def test_out_of_range_values_are_clear_errors(data, match):
    with pytest.raises(ConfigError, match=match):
        FastFaceConfig.from_dict(data)


def test_am2_quantile_dtype_default_and_round_trip():
    assert load_preset("ff-am2").am.am2.quantile_dtype == "float32"  # default: q compared in float32
    exact = FastFaceConfig.from_dict({"am": {"kind": "am2", "am2": {"quantile_dtype": "float16"}}})
    assert exact.am.am2.quantile_dtype == "float16"
    assert exact.to_dict()["am"]["am2"]["quantile_dtype"] == "float16"
    assert FastFaceConfig.from_json(exact.to_json()) == exact and exact != FastFaceConfig(am=exact.am.__class__(kind="am2"))


def test_schedule_length_checked_against_steps():
    cfg = FastFaceConfig(guidance=GuidanceConfig(alpha=[1, 2, 2, 1], beta=[1, 3, 3, 1]))
    cfg.validate_for_steps(4)
    with pytest.raises(ConfigError, match=r"4 values but the run has 8 steps"):
        cfg.validate_for_steps(8)
    FastFaceConfig(am=__import__("fastface.method.config").method.config.AMConfig(kind="am2", am2=AM2Config(
        steepness=5.0, quantile=0.6, scale=1.5))).validate_for_steps(50)  # constants fit any length


def test_config_files_json_and_toml(tmp_path):
    cfg = load_preset("ff-am1").with_scales(ip_scale=0.35)
    (tmp_path / "c.json").write_text(cfg.to_json())
    assert resolve_config(config_file=str(tmp_path / "c.json")) == cfg
    (tmp_path / "c.toml").write_text('name = "t"\nip_scale = 0.5\n[guidance]\nvariant = 3\nalpha = [1.0]\nbeta = [2.0]\n')
    t = resolve_config(config_file=str(tmp_path / "c.toml"))
    assert (t.name, t.ip_scale, t.guidance.variant, t.guidance.beta) == ("t", 0.5, 3, (2.0,))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: not valid"):
        resolve_config(config_file=str(tmp_path / "bad.json"))
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve_config(config_file=str(tmp_path / "missing.json"))


def test_published_layouts():
    assert [b.name for b in LAYOUTS[1]] == ["uncond", "text", "text_id"]
    assert [b.name for b in LAYOUTS[2]] == ["uncond", "id", "text_id"]
    assert [b.name for b in LAYOUTS[3]] == ["uncond", "text", "id"]
    assert [(b.text, b.identity) for b in LAYOUTS[2]] == [(False, False), (False, True), (True, True)]
    lay = BranchLayout(2, (0, 2), rows=2)
    assert lay.names == ("uncond", "text_id") and lay.batch_size == 4
    assert lay.rows_of("text_id") == slice(2, 4)
    with pytest.raises(KeyError, match="'id' is not in this batch"):
        lay.rows_of("id")


@pytest.mark.parametrize("variant, a, b, rescale, coupled, expected", [
    (2, 1.0, 1.0, 0.0, False, (2,)),         # baseline distilled: only eps(text, id)
    (2, 1.5, 1.5, 0.0, False, (0, 2)),       # LCM baseline: plain CFG
    (2, 1.0, 1.0, 0.75, False, (1, 2)),      # rescale reads e1 and e2
    (2, 1.5, 3.0, 0.0, False, (0, 1, 2)),
    (2, 1.0, 1.0, 0.0, True, (0, 1, 2)),     # AM2 normalising over the batch
    (3, 1.0, 1.0, 0.0, False, (0, 1, 2)),    # DCG_3: c0 = 1 - a - b = -1
    (1, 1.0, 0.0, 0.0, False, (1,)),
])
def test_required_branches(variant, a, b, rescale, coupled, expected):
    assert required_branches(variant, a, b, rescale=rescale, batch_coupled=coupled) == expected
