"""workbench.data.selection: sweeps, the default runs to compare, and Compare's baseline pairing
(pure functions on frames shaped like the `runs` query)."""

import json

import pandas as pd
import pytest

from workbench.data import selection

T0 = pd.Timestamp("2026-01-01 12:00:00")


def notes(presets, scales, dataset="ds", checkpoints=("hyper",)):
    return json.dumps({"sweep": {"checkpoints": list(checkpoints), "presets": list(presets),
                                 "ip_scales": list(scales), "lora_scales": [1.0], "seed": 50},
                       "dataset": dataset, "tiny": True})


def runs(*groups):
    """Rows (run_id, preset, checkpoint, ip_scale, notes), created one second apart in order."""
    rows = []
    for g in groups:
        rows.extend(g)
    df = pd.DataFrame(rows, columns=["run_id", "preset", "checkpoint", "ip_scale", "notes"])
    df["lora_scale"] = 1.0
    df["seed"] = 50
    df["capture_spec_json"] = "{}"
    df["host"] = "h"
    df["package_versions_json"] = "{}"
    df["created_at"] = [T0 + pd.Timedelta(seconds=i) for i in range(len(df))]
    return df.iloc[::-1].reset_index(drop=True)  # the runs query lists the newest first


def sweep(tag, presets, scales, checkpoints=("hyper",), dataset="ds"):
    n = notes(presets, scales, dataset, checkpoints)
    return [(f"{tag}-{c}-{p}-{ip:g}", p, c, ip, n) for c in checkpoints for p in presets for ip in scales]


DEMO = ("baseline", "dcg", "am1", "am2", "ff-am1", "ff-am2")


def test_sweep_key_groups_runs_of_one_command():
    a = {"run_id": "a", "notes": notes(["baseline"], [0.8])}
    b = {"run_id": "b", "notes": notes(["baseline"], [0.8])}
    c = {"run_id": "c", "notes": notes(["baseline"], [0.5])}
    assert selection.sweep_key(a) == selection.sweep_key(b) != selection.sweep_key(c)
    imp = {"run_id": "i1", "notes": json.dumps({"import": {"images": "/x"}})}
    assert selection.sweep_key(imp) != selection.sweep_key({**imp, "run_id": "i2"})  # one import, one run
    plain = dict(run_id="p", notes=None, seed=7, capture_spec_json="{}", host="h", package_versions_json="{}")
    assert selection.sweep_key(plain) == selection.sweep_key({**plain, "run_id": "q", "notes": "free text"})
    assert selection.sweep_key(plain) != selection.sweep_key({**plain, "seed": 8})


def test_default_runs_is_the_newest_sweep_with_its_baselines():
    df = runs(sweep("old", ("baseline", "ff-am2"), (0.8,)), sweep("new", DEMO, (0.5, 0.8)))
    chosen = selection.default_runs(df)
    assert len(chosen) == 12 and not any(r.startswith("old") for r in chosen)
    assert chosen[:2] == ["new-hyper-baseline-0.5", "new-hyper-baseline-0.8"]  # baselines first
    assert chosen[2:4] == ["new-hyper-dcg-0.5", "new-hyper-dcg-0.8"]  # then as the command made them
    assert selection.default_runs(df.iloc[:0]) == []


def test_default_runs_adds_the_baseline_of_an_older_sweep_at_the_same_scales():
    df = runs(sweep("old", ("baseline",), (0.5, 0.8)), sweep("older2", ("baseline",), (0.8,), dataset="d2"),
              sweep("new", ("ff-am2",), (0.8, 0.6)))
    chosen = selection.default_runs(df)
    # the newest baseline at 0.8 joins; there is none at 0.6
    assert chosen == ["older2-hyper-baseline-0.8", "new-hyper-ff-am2-0.8", "new-hyper-ff-am2-0.6"]


def test_default_runs_of_a_large_sweep_keep_the_newest_checkpoint():
    df = runs(sweep("big", DEMO, (0.2, 0.5, 0.8), checkpoints=("hyper", "lightning")))
    chosen = selection.default_runs(df, limit=24)
    assert len(chosen) == 18 and all("-lightning-" in r for r in chosen)
    assert len(selection.default_runs(df, limit=5)) == 5


def test_matched_baseline_and_compare_plan_never_pair_a_run_with_itself():
    df = runs(sweep("a", ("baseline", "ff-am2"), (0.5, 0.8)), sweep("b", ("baseline", "am1"), (0.8,), dataset="d2"))
    assert selection.matched_baseline("a-hyper-ff-am2-0.8", df) == "a-hyper-baseline-0.8"  # same sweep first
    assert selection.matched_baseline("b-hyper-am1-0.8", df) == "b-hyper-baseline-0.8"
    # a chosen baseline is preferred to the one of the same sweep
    assert selection.matched_baseline("a-hyper-ff-am2-0.8", df, prefer=["b-hyper-baseline-0.8"]) == \
        "b-hyper-baseline-0.8"
    assert selection.matched_baseline("a-hyper-baseline-0.8", df) == "b-hyper-baseline-0.8"  # not itself
    assert selection.matched_baseline("nope", df) is None
    ids = ["a-hyper-baseline-0.5", "a-hyper-baseline-0.8", "a-hyper-ff-am2-0.5", "a-hyper-ff-am2-0.8"]
    plan = selection.compare_plan(ids, df)
    assert plan == {"a-hyper-ff-am2-0.5": "a-hyper-baseline-0.5", "a-hyper-ff-am2-0.8": "a-hyper-baseline-0.8"}
    single = selection.compare_plan(ids, df, "a-hyper-ff-am2-0.8")
    assert "a-hyper-ff-am2-0.8" not in single and set(single.values()) == {"a-hyper-ff-am2-0.8"}
    assert len(single) == 3
    assert all(k != v for k, v in {**plan, **single}.items())


def test_default_baseline():
    df = runs(sweep("a", ("baseline", "ff-am2"), (0.8,)), sweep("x", ("am1",), (0.3,), dataset="d3"))
    assert selection.default_baseline(["a-hyper-baseline-0.8", "a-hyper-ff-am2-0.8"], df) == selection.MATCHED
    # no run with a baseline at its scales: a chosen baseline run, else the first run
    assert selection.default_baseline(["x-hyper-am1-0.3", "a-hyper-baseline-0.8"], df) == "a-hyper-baseline-0.8"
    assert selection.default_baseline(["x-hyper-am1-0.3"], df) == "x-hyper-am1-0.3"


@pytest.mark.parametrize("picked,expect", [
    (False, "Runs chosen: 12, the newest sweep with 2 baseline runs (6 presets × 2 IP scales)"),
    (True, "Runs chosen: 12 (picked on Runs)"),
])
def test_describe(picked, expect):
    df = runs(sweep("new", DEMO, (0.5, 0.8)))
    assert selection.describe(selection.default_runs(df), df, picked).startswith(expect)
    assert selection.describe([], df, False).startswith("Runs chosen: none")
