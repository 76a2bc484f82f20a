"""workbench.data.labels: runs labelled by what differs between them (hand-written labels)."""

import json

from workbench.data.labels import differing_labels, flatten

BASE_AM = {"am1": {"scale_up": 1.45, "scale_down": 1.55, "power": 1.3}, "kind": "none", "parts": ["down", "up"]}


def run(run_id, preset, ip, *, checkpoint="hyper", lora=1.0, seed=50, am=None, **cfg):
    config = {"name": preset, "description": f"the {preset} preset", "ip_scale": ip, "lora_scale": lora,
              "am": am or BASE_AM, **cfg}
    return {"run_id": run_id, "preset": preset, "ip_scale": ip, "lora_scale": lora, "checkpoint": checkpoint,
            "seed": seed, "config_json": json.dumps(config)}


def test_flatten_dotted_paths_with_step_indices():
    assert flatten({"am": {"am2": {"steepness": [7.5, 5.0]}, "kind": "am2"}, "ip_scale": 0.8, "e": []}) == {
        "am.am2.steepness[0]": 7.5, "am.am2.steepness[1]": 5.0, "am.kind": "am2", "ip_scale": 0.8, "e": []}


def test_demo_grid_presets_and_scales():
    ff = dict(BASE_AM, kind="am2")  # differs from baseline's, but only with the preset
    runs = [run("hyper-baseline-ip0.5-x", "baseline", 0.5), run("hyper-baseline-ip0.8-y", "baseline", 0.8),
            run("hyper-ff-am2-ip0.5-z", "ff-am2", 0.5, am=ff), run("hyper-ff-am2-ip0.8-w", "ff-am2", 0.8, am=ff)]
    out = differing_labels(runs)
    assert out.labels == {"hyper-baseline-ip0.5-x": "baseline · λ=0.5", "hyper-baseline-ip0.8-y": "baseline · λ=0.8",
                          "hyper-ff-am2-ip0.5-z": "ff-am2 · λ=0.5", "hyper-ff-am2-ip0.8-w": "ff-am2 · λ=0.8"}
    assert out.common == "LoRA=1 · checkpoint hyper · seed 50"
    assert out.fields == ("preset", "ip_scale")


def test_one_scale_only_presets_differ():
    out = differing_labels([run("a", "am1", 0.8), run("b", "am2", 0.8, am=dict(BASE_AM, kind="am2"))])
    assert out.labels == {"a": "am1", "b": "am2"}
    assert out.common == "λ=0.8 · LoRA=1 · checkpoint hyper · seed 50"


def test_a_varied_parameter_within_a_preset_is_named_by_its_path():
    up12 = {**BASE_AM, "am1": {**BASE_AM["am1"], "scale_up": 1.2}}
    out = differing_labels([run("r1", "am1", 0.8), run("r2", "am1", 0.8, am=up12),
                            run("r3", "baseline", 0.8, checkpoint="lightning")])
    assert out.labels == {"r1": "am1 · hyper · am.am1.scale_up=1.45", "r2": "am1 · hyper · am.am1.scale_up=1.2",
                          "r3": "baseline · lightning · am.am1.scale_up=1.45"}
    assert out.common == "λ=0.8 · LoRA=1 · seed 50"


def test_step_index_and_missing_value():
    a = run("a", "ff-am2", 0.8, guidance={"beta": [3.0, 3.0]})
    b = run("b", "ff-am2", 0.8, guidance={"beta": [3.0, 1.0]})
    c = run("c", "ff-am2", 0.8, guidance={"beta": [3.0]})  # a one-step schedule: no beta[1]
    assert differing_labels([a, b, c]).labels == {
        "a": "guidance.beta[1]=3", "b": "guidance.beta[1]=1", "c": "guidance.beta[1]=—"}


def test_identical_runs_fall_back_to_the_run_id_and_a_single_run_keeps_preset_and_scale():
    assert differing_labels([run("a", "dcg", 0.5), run("b", "dcg", 0.5)]).labels == {"a": "a", "b": "b"}
    one = differing_labels([run("only", "dcg", 0.5)])
    assert one.labels == {"only": "dcg · λ=0.5"} and one.common == "LoRA=1 · checkpoint hyper · seed 50"
    assert differing_labels([]).labels == {}
