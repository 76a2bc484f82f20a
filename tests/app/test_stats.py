"""workbench.data.stats: Compare's paired statistics are the report's (fastface.evaluation.stats):
exact sign-flip p-values enumerated by hand, Student-t intervals from the formula, no mark below 6
pairs, and the same numbers as fastface report's build_table on the same data."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from workbench.data.stats import paired_deltas

UNIT = ["identity", "prompt", "seed"]


def frame(rows):
    return pd.DataFrame(rows, columns=["run_id", "name", "identity", "prompt", "seed", "value"])


def by_hand_p(d):
    """Share of the 2^n sign flips whose |sum| reaches the observed |sum| (itertools, no numpy)."""
    obs = abs(sum(d))
    flips = list(itertools.product((1, -1), repeat=len(d)))
    return sum(abs(sum(s * x for s, x in zip(signs, d))) >= obs - 1e-12 for signs in flips) / len(flips)


def t_by_formula(d):
    n, m = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((x - m) ** 2 for x in d) / (n - 1))
    q = scipy_stats.t.ppf(0.975, n - 1)
    return m - q * sd / math.sqrt(n), m + q * sd / math.sqrt(n)


def test_four_pairs_p_interval_and_no_mark():
    # by hand: |d| = (.3, .1, .1, .5) sums to 1.0; negating a subset S gives 1.0 - 2 sum(S), which reaches
    # the observed |0.8| when sum(S) <= 0.1 ({}, {.1}, {.1}') or >= 0.9 (their complements): 6 of 16
    d = [0.3, 0.1, -0.1, 0.5]
    rows = []
    for u, x in enumerate(d):
        rows += [("base", "m", f"i{u}", "p", u, 1.0), ("run", "m", f"i{u}", "p", u, 1.0 + x)]
    t = paired_deltas(frame(rows), {"run": "base"}).set_index("run_id").loc["run"]
    assert by_hand_p(d) == pytest.approx(6 / 16)
    assert t["p"] == pytest.approx(6 / 16)
    lo, hi = t_by_formula(d)
    assert (t["lo"], t["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert t["delta"] == pytest.approx(0.2) and t["n_pairs"] == 4
    assert not t["significant"]  # 4 pairs can never reach p <= 0.05 (2/16)


def test_six_pairs_all_positive_are_marked_and_five_are_not():
    for n, marked in ((5, False), (6, True)):
        d = [0.1 + 0.01 * u for u in range(n)]
        rows = [r for u, x in enumerate(d) for r in (("b", "m", "i", "p", u, 0.5), ("r", "m", "i", "p", u, 0.5 + x))]
        t = paired_deltas(frame(rows), {"r": "b"}).iloc[0]
        assert t["p"] == pytest.approx(2 / 2 ** n) == pytest.approx(by_hand_p(d))
        assert bool(t["significant"]) is marked


def test_pairs_on_identity_prompt_seed_and_a_baseline_per_run():
    rows = []
    for u in range(3):
        rows += [("b5", "m", f"i{u}", "p", u, 1.0 + u), ("b8", "m", f"i{u}", "p", u, 2.0 + u),
                 ("x5", "m", f"i{u}", "p", u, 1.25 + u), ("x8", "m", f"i{u}", "p", u, 1.5 + u),
                 ("lone", "m", f"i{u}", "p", u, 9.0)]
    rows.append(("x5", "m", "i9", "p", 9, 100.0))  # a unit the baseline lacks: not paired
    rows += [("x8", "m", "i0", "p", 0, 1.7)]       # a unit measured twice: averaged first (1.5, 1.7) -> 1.6
    t = paired_deltas(frame(rows), {"x5": "b5", "x8": "b8", "lone": None}).set_index("run_id")
    assert sorted(t.index) == ["lone", "x5", "x8"]  # the baselines are not compared (with themselves)
    assert t.loc["x5", "delta"] == pytest.approx(0.25) and t.loc["x5", "n_pairs"] == 3
    assert t.loc["x8", "delta"] == pytest.approx((-0.4 - 0.5 - 0.5) / 3) and t.loc["x8", "baseline_mean"] == 3.0
    assert np.isnan(t.loc["lone", "delta"]) and t.loc["lone", "n_pairs"] == 0
    same = paired_deltas(frame(rows), "b5").set_index("run_id")
    assert same.loc["b5", "delta"] == 0.0 and np.isnan(same.loc["b5", "p"])


def test_same_numbers_as_fastface_report_on_the_same_data():
    from fastface.evaluation.report import ReportData, build_table

    rng = np.random.default_rng(4)
    model = "dlib/face_recognition_resnet_model_v1@46ab12c9#protocol=corrected"
    units = []
    for run_id, shift in (("base", 0.0), ("ff", 0.04)):
        for u in range(20):  # 20 pairs: the report's Monte-Carlo path (seeded) as well
            units.append((run_id, "id_sim", model, f"id{u % 5}", f"prompt {u // 5}", u, "realistic",
                          0.5 + 0.1 * np.sin(u) + shift + rng.normal(0, 0.05)))
    units = pd.DataFrame(units, columns=["run_id", "name", "model", "identity", "prompt", "seed", "category", "value"])
    summary = (units.groupby(["run_id", "name", "model"], as_index=False)["value"]
               .agg(mean="mean", n="count").assign(subset="joint", n_rows=lambda d: d["n"], n_zero=0))
    runs = pd.DataFrame({"run_id": ["base", "ff"], "preset": ["baseline", "ff-am2"], "checkpoint": ["hyper"] * 2,
                         "lora_scale": [1.0] * 2, "ip_scale": [0.8] * 2, "n_ok": [20, 20], "n_failed": [0, 0]})
    _, report = build_table(ReportData(runs, summary, units), "joint", {"id": model}, {"ff": "base", "base": None})
    r = report.set_index("run_id").loc["ff"]
    mine = paired_deltas(units[["run_id", "name", *UNIT, "value"]], {"ff": "base"}).iloc[0]
    assert mine["n_pairs"] == r["n_pairs"] == 20
    for a, b in (("delta", "delta"), ("lo", "ci_lo"), ("hi", "ci_hi"), ("p", "p_value")):
        assert mine[a] == pytest.approx(r[b], rel=1e-12), a
    assert bool(mine["significant"]) == bool(r["significant"])
