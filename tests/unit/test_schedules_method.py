"""Per-step schedules against the numbers written in METHOD.md (sections 3-5), step by step.

Every expected value below is copied by hand from METHOD.md; nothing is computed with the code
under test. ``schedule_at`` gets its own hand-value tests, then each preset's per-step DCG
(alpha, beta, phi) and AM (AM1 s, p; AM2 d, p, s, AdaIN w) are read through it and compared with
the spec's table (a reversed or shifted schedule fails: the AM2 schedules are not palindromes).
"""
from __future__ import annotations

import pytest

from fastface.method.config import ConfigError, load_preset, preset_names, schedule_at

STEPS = 4

# METHOD.md section 3: the stylistic DCG_2 schedule, first and last step left at 1; phi = 0.75
STYLISTIC_A = [1.0, 1.5, 1.5, 1.0]
STYLISTIC_B = [1.0, 3.0, 3.0, 1.0]
PHI = 0.75
# METHOD.md section 4, AM2 per-step schedule (step index 0..3) and AdaIN weight
AM2_D = [7.5, 5.0, 5.0, 5.0]
AM2_P = [0.65, 0.65, 0.65, 0.65]
AM2_S = [1.0, 1.55, 1.55, 1.55]
ADAIN_W = [0.7, 0.7, 0.7, 0.7]
# METHOD.md section 4, AM1: p = 1.3; release s = 1.55 down, 1.45 up; paper text the reverse
AM1_RELEASE = {"down": 1.55, "up": 1.45}
AM1_TEXT = {"down": 1.45, "up": 1.55}
# METHOD.md section 3: baseline guidance a = b = 1 (LCM 1.5; 50-step SDXL 5.0)
BASELINE_SCALE = {"hyper": 1.0, "lightning": 1.0, "turbo": 1.0, "lcm": 1.5, "base": 5.0}

# METHOD.md section 5 (plus the two paper-text AM1 presets the spec asks to offer)
PRESETS = {
    "baseline": dict(dcg=None, am=None),
    "dcg": dict(dcg="stylistic", am=None),
    "am1": dict(dcg=None, am=("am1", AM1_RELEASE)),
    "am1-text": dict(dcg=None, am=("am1", AM1_TEXT)),
    "am2": dict(dcg=None, am=("am2", None)),
    "ff-am1": dict(dcg="stylistic", am=("am1", AM1_RELEASE)),
    "ff-am1-text": dict(dcg="stylistic", am=("am1", AM1_TEXT)),
    "ff-am2": dict(dcg="stylistic", am=("am2", ADAIN_W)),
}


# --- schedule_at by hand ---------------------------------------------------------------------------

def test_schedule_at_indexes_the_step_hand_values():
    sched = (10.0, 20.0, 30.0, 40.0)
    assert [schedule_at(sched, step, 4, "x") for step in range(4)] == [10.0, 20.0, 30.0, 40.0]
    assert [schedule_at((7.5, 5.0, 5.0, 5.0), step, 4, "d") for step in range(4)] == [7.5, 5.0, 5.0, 5.0]
    assert schedule_at((1.0, 2.0), 1, 2, "x") == 2.0 and schedule_at((1.0, 2.0), 0, 2, "x") == 1.0


def test_schedule_at_one_value_is_constant():
    assert [schedule_at((0.65,), step, 4, "p") for step in range(4)] == [0.65] * 4
    assert schedule_at((3.0,), 0, 1, "x") == 3.0 and schedule_at((3.0,), 49, 50, "x") == 3.0


def test_schedule_at_refuses_a_length_that_is_not_the_step_count():
    with pytest.raises(ConfigError, match=r"am.am2.scale: the schedule has 4 values but the run has 3 steps"):
        schedule_at((1.0, 1.55, 1.55, 1.55), 0, 3, "am.am2.scale")
    with pytest.raises(ConfigError, match="2 values"):
        schedule_at((1.0, 2.0), 0, 4, "x")


# --- every preset, step by step -------------------------------------------------------------------

def test_the_presets_are_the_ones_of_the_spec():
    assert set(preset_names()) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("checkpoint", sorted(BASELINE_SCALE))
def test_dcg_alpha_beta_per_step(name, checkpoint):
    from fastface.models.checkpoints import get_checkpoint

    cfg = load_preset(name)
    g = cfg.guidance.resolved(get_checkpoint(checkpoint).guidance_scale)
    assert g.variant == 2  # DCG_2, the paper default
    got = [(schedule_at(g.alpha, i, STEPS, "a"), schedule_at(g.beta, i, STEPS, "b")) for i in range(STEPS)]
    if PRESETS[name]["dcg"] == "stylistic":
        assert got == list(zip(STYLISTIC_A, STYLISTIC_B))
        assert g.rescale == PHI and g.rescale_mode == "release"
    else:
        s = BASELINE_SCALE[checkpoint]
        assert got == [(s, s)] * STEPS
        assert g.rescale == 0.0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_am_per_step(name):
    cfg = load_preset(name)
    am = PRESETS[name]["am"]
    if am is None:
        assert cfg.am.kind == "none" and not any(cfg.am.applies(p, i) for p in ("down", "mid", "up")
                                                 for i in range(STEPS))
        return
    kind, extra = am
    assert cfg.am.kind == kind
    # METHOD.md section 4: target blocks down and up (mid excluded), all 4 tokens, all 4 steps
    assert cfg.am.tokens is None and cfg.am.steps is None
    for i in range(STEPS):
        assert cfg.am.applies("down", i) and cfg.am.applies("up", i) and not cfg.am.applies("mid", i)
    if kind == "am1":
        a1 = cfg.am.am1
        assert (a1.scale_for("down"), a1.scale_for("up")) == (extra["down"], extra["up"])
        assert a1.power == 1.3 and a1.max_value == 10.0
        return
    a2 = cfg.am.am2
    got = [(schedule_at(a2.steepness, i, STEPS, "d"), schedule_at(a2.quantile, i, STEPS, "p"),
            schedule_at(a2.scale, i, STEPS, "s")) for i in range(STEPS)]
    assert got == list(zip(AM2_D, AM2_P, AM2_S))
    assert a2.invert_first_token and a2.normalization == "batch" and a2.quantile_dtype == "float32"
    if extra is None:  # AM2-only: no AdaIN
        assert a2.adain_weight is None
    else:
        assert [schedule_at(a2.adain_weight, i, STEPS, "w") for i in range(STEPS)] == extra


def test_the_default_am2_config_is_the_spec_schedule():
    from fastface.method.config import AM2Config

    a2 = AM2Config()
    assert [schedule_at(a2.steepness, i, STEPS, "d") for i in range(STEPS)] == AM2_D
    assert [schedule_at(a2.scale, i, STEPS, "s") for i in range(STEPS)] == AM2_S
    assert [schedule_at(a2.quantile, i, STEPS, "p") for i in range(STEPS)] == AM2_P
