"""The per-step schedules reach the denoising loop and the attention processors at the right step.

The step of every recorded call is counted by a forward pre-hook on the UNet (the n-th UNet call
of a generation is step n), not read from the pipeline's context; the expected per-step values
are METHOD.md's numbers, written in tests/unit/test_schedules_method.py. Spies wrap the functions
the pipeline and the processor call (they record the arguments, then call the real function).
"""
from __future__ import annotations

import pytest

import fastface.models.pipeline as pipeline_module
import fastface.method.processor as processor_module
from fastface.method.config import load_preset
from tests.unit.test_schedules_method import (
    ADAIN_W, AM1_RELEASE, AM2_D, AM2_P, AM2_S, PHI, STYLISTIC_A, STYLISTIC_B,
)

PROMPT = "a person"


class StepCounter:
    """Counts UNet calls with a forward pre-hook; ``step`` is the index of the call running now."""

    def __init__(self, unet):
        self.calls = 0
        self.handle = unet.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        self.calls += 1

    @property
    def step(self) -> int:
        return self.calls - 1

    def close(self):
        self.handle.remove()


@pytest.fixture
def spied(tiny_pipes, tiny_identity, monkeypatch):
    """(pipe, identity, counter, records): records[name] lists (step, kwargs) of each spied call."""
    pipe = tiny_pipes("hyper")
    counter = StepCounter(pipe.pipe.unet)
    records: dict[str, list] = {"combine": [], "am2": [], "scale_power": [], "adain_blend": []}

    def spy(name, real, module):
        def wrapper(*args, **kwargs):
            records[name].append((counter.step, args, kwargs))
            return real(*args, **kwargs)
        monkeypatch.setattr(module, real.__name__, wrapper)

    spy("combine", pipeline_module.combine_branches, pipeline_module)
    spy("am2", processor_module.am2, processor_module)
    spy("scale_power", processor_module.scale_power, processor_module)
    spy("adain_blend", processor_module.adain_blend, processor_module)
    try:
        yield pipe, tiny_identity(pipe), counter, records
    finally:
        counter.close()


def _targets(pipe) -> int:
    """Number of AM target sites (every attn2 under down_blocks and up_blocks, METHOD.md section 4)."""
    return sum(1 for s in pipe.sites if s.startswith(("down_blocks", "up_blocks")))


@pytest.mark.parametrize("preset", ["dcg", "ff-am2"])
def test_dcg_weights_and_branches_per_step(spied, preset):
    pipe, ident, counter, records = spied
    result = pipe.generate(PROMPT, ident, load_preset(preset), seed=1, steps=4)
    assert counter.calls == 4
    got = [(step, args[1], args[2], kwargs["rescale"]) for step, args, kwargs in records["combine"]]
    assert got == [(i, STYLISTIC_A[i], STYLISTIC_B[i], PHI) for i in range(4)]
    # by hand: a = b = 1 gives weights (0, 0, 1), rescale adds e1, e2 -> branches id, text_id; steps 1-2
    # need all three (ff-am2: AM2's batch normalisation couples the branches at every step)
    expected = [("id", "text_id"), ("uncond", "id", "text_id"), ("uncond", "id", "text_id"), ("id", "text_id")]
    if preset == "ff-am2":
        expected = [("uncond", "id", "text_id")] * 4
    assert [l.names for l in result.layouts] == expected


@pytest.mark.parametrize("checkpoint, scale", [("hyper", 1.0), ("lcm", 1.5)])
def test_baseline_guidance_per_step(tiny_pipes, tiny_identity, monkeypatch, checkpoint, scale):
    pipe = tiny_pipes(checkpoint)
    seen = []

    def wrapper(branches, alpha, beta, **kwargs):
        seen.append((alpha, beta, kwargs["rescale"]))
        return real(branches, alpha, beta, **kwargs)

    real = pipeline_module.combine_branches
    monkeypatch.setattr(pipeline_module, "combine_branches", wrapper)
    pipe.generate(PROMPT, tiny_identity(pipe), load_preset("baseline"), seed=1, steps=4)
    assert seen == [(scale, scale, 0.0)] * 4


@pytest.mark.parametrize("preset, adain", [("am2", None), ("ff-am2", ADAIN_W)])
def test_am2_schedule_per_step_at_every_target_site(spied, preset, adain):
    pipe, ident, counter, records = spied
    pipe.generate(PROMPT, ident, load_preset(preset), seed=1, steps=4)
    n = _targets(pipe)
    calls = [(step, kw["steepness"], kw["quantile"], kw["scale"]) for step, _, kw in records["am2"]]
    assert calls == [(i, AM2_D[i], AM2_P[i], AM2_S[i]) for i in range(4) for _ in range(n)]
    weights = [(step, kw["weight"]) for step, _, kw in records["adain_blend"]]
    assert weights == ([] if adain is None else [(i, adain[i]) for i in range(4) for _ in range(n)])
    assert records["scale_power"] == []


def test_am1_scales_per_part_at_every_step(spied):
    pipe, ident, counter, records = spied
    pipe.generate(PROMPT, ident, load_preset("am1"), seed=1, steps=4)
    n_down = sum(1 for s in pipe.sites if s.startswith("down_blocks"))
    n_up = sum(1 for s in pipe.sites if s.startswith("up_blocks"))
    per_step = sorted([AM1_RELEASE["down"]] * n_down + [AM1_RELEASE["up"]] * n_up)
    calls = [(step, kw["scale"], kw["power"], kw["max_value"]) for step, _, kw in records["scale_power"]]
    for i in range(4):
        assert sorted(s for step, s, _, _ in calls if step == i) == per_step
    assert {(p, m) for _, _, p, m in calls} == {(1.3, 10.0)} and len(calls) == 4 * (n_down + n_up)
    assert records["am2"] == []


def test_baseline_runs_no_am(spied):
    pipe, ident, counter, records = spied
    pipe.generate(PROMPT, ident, load_preset("baseline"), seed=1, steps=4)
    assert counter.calls == 4 and records["am2"] == [] and records["scale_power"] == []
