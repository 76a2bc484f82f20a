"""Parameter paths (fastface.method.paths): reading, editing one step, validation and grids,
checked against the preset files' values written out by hand (METHOD.md section 5)."""
import json
from importlib import resources

import pytest

from fastface.method.config import ConfigError, FastFaceConfig, load_preset
from fastface.method.paths import get_value, grid_cells, param_paths, parse_path, parse_vary, set_value


def _preset_json(name):
    return json.loads((resources.files("fastface.method") / "presets" / f"{name}.json").read_text())


def test_every_dataclass_leaf_is_a_path_and_reads_the_preset_value():
    raw = _preset_json("ff-am2")
    base = load_preset("ff-am2")
    paths = param_paths()
    assert {"am.am1.scale_up", "am.am2.steepness", "guidance.beta", "ip_scale", "am.kind", "am.parts"} <= set(paths)
    assert "name" not in paths and "description" not in paths
    # the values the preset file states, read through the paths
    assert get_value(base, "am.kind") == raw["am"]["kind"] == "am2"
    if "steepness" in raw["am"].get("am2", {}):
        assert list(get_value(base, "am.am2.steepness")) == [float(v) for v in raw["am"]["am2"]["steepness"]]
    assert get_value(base, "am.am2.steepness[0]") == 7.5  # METHOD.md: steepness 7.5 on the first step
    assert get_value(base, "am.am1.scale_up") == 1.45


def test_one_step_of_a_constant_schedule_is_expanded():
    base = set_value(load_preset("am2"), "am.am2.quantile", "0.65")  # one constant value
    assert base.am.am2.quantile == (0.65,)
    edited = set_value(base, "am.am2.quantile[2]", "0.5", num_steps=4)
    assert edited.am.am2.quantile == (0.65, 0.65, 0.5, 0.65)
    assert base.am.am2.quantile == (0.65,)  # the base is untouched
    with pytest.raises(ConfigError, match="step count"):
        set_value(base, "am.am2.quantile[2]", 0.5)


@pytest.mark.parametrize("path, value, message", [
    ("am.am2.steepness[0]", "-1", r"am.am2.steepness\[0\]=-1.*below the minimum 0"),
    ("am.am2.steepness[7]", "1", r"step 7 is past the schedule's 4 steps"),
    ("am.kind", "am3", r"am.kind=am3.*allowed: none, am1, am2"),
    ("am.am1.scale_upp", "1", r"'am.am1.scale_upp' is not a field.*am.am1.scale_up"),
    ("ip_scale[0]", "1", r"not a per-step schedule"),
    ("am.parts", "down/left", r"\['left'\] are not UNet parts"),
    ("am.am1.power", "abc", r"am.am1.power=abc: not a number"),
])
def test_invalid_values_name_the_path_and_the_allowed_values(path, value, message):
    with pytest.raises(ConfigError, match=message):
        set_value(load_preset("ff-am2"), path, value, num_steps=4)


def test_text_values_of_each_kind():
    base = load_preset("ff-am1")
    assert set_value(base, "am.parts", "up").am.parts == ("up",)
    assert set_value(base, "am.tokens", "1/2/3").am.tokens == (1, 2, 3)
    assert set_value(base, "am.tokens", "none").am.tokens is None
    assert set_value(base, "am.am2.invert_first_token", "false").am.am2.invert_first_token is False
    assert set_value(base, "guidance.variant", "3").guidance.variant == 3
    assert set_value(base, "am.am2.steepness", "9/4/4/4").am.am2.steepness == (9.0, 4.0, 4.0, 4.0)
    # an edit survives the JSON round trip the store uses
    edited = set_value(base, "am.am1.scale_up", 1.2)
    assert FastFaceConfig.from_json(edited.to_json()).am.am1.scale_up == 1.2


def test_grid_is_the_cartesian_product_in_axis_order():
    base = load_preset("ff-am1")
    axes = [parse_vary("am.am1.scale_up=1.0,1.2"), parse_vary("guidance.beta[3]=1,3")]
    cells = grid_cells(base, axes, num_steps=4)
    got = [(c.coords["am.am1.scale_up"], c.coords["guidance.beta[3]"], c.config.am.am1.scale_up,
            c.config.guidance.beta[3]) for c in cells]
    assert got == [(1.0, 1.0, 1.0, 1.0), (1.0, 3.0, 1.0, 3.0), (1.2, 1.0, 1.2, 1.0), (1.2, 3.0, 1.2, 3.0)]
    # everything not varied is the base's
    for c in cells:
        assert c.config.am.am1.power == base.am.am1.power and c.config.name == base.name
        assert c.config.guidance.beta[:3] == (1.0, 3.0, 3.0)  # ff-am1.json's beta, steps 0-2
    assert cells[1].label == "am.am1.scale_up=1.0, guidance.beta[3]=3.0"


@pytest.mark.parametrize("text, message", [
    ("am.am1.scale_up", "expected PATH=v1,v2"), ("am.am1.scale_up=", "no values"),
    ("am.am1.scale_up=1,1", "repeated"),
])
def test_vary_syntax_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_vary(text)


def test_a_path_given_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice"):
        grid_cells(load_preset("ff-am1"), [parse_vary("ip_scale=0.5"), parse_vary("ip_scale=0.8")])


def test_parse_path_index():
    assert parse_path("guidance.beta[2]").index == 2 and parse_path("guidance.beta").index is None
