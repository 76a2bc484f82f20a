"""workbench.data.stats: the paired bootstrap against cases with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from workbench.data.stats import paired_bootstrap, paired_deltas


def test_constant_difference_has_a_degenerate_interval():
    a = np.array([0.5, 0.6, 0.7, 0.8])
    mean, lo, hi, n = paired_bootstrap(a, a - 0.1)
    assert n == 4
    assert mean == pytest.approx(0.1) and lo == pytest.approx(0.1) and hi == pytest.approx(0.1)


def test_two_pairs_exact_bootstrap_distribution():
    # deltas {0, 1}: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% percentiles are exactly 0 and 1.
    mean, lo, hi, n = paired_bootstrap([1.0, 2.0], [1.0, 1.0], n_boot=4000, seed=3)
    assert (mean, lo, hi, n) == (0.5, 0.0, 1.0, 2)


def test_large_sample_matches_normal_theory():
    rng = np.random.default_rng(1)
    b = rng.normal(size=4000)
    d = rng.normal(0.2, 1.0, size=4000)
    mean, lo, hi, n = paired_bootstrap(b + d, b, n_boot=2000, seed=0)
    se = d.std() / math.sqrt(d.size)
    assert mean == pytest.approx(d.mean())
    assert lo == pytest.approx(mean - 1.96 * se, abs=0.35 * se)
    assert hi == pytest.approx(mean + 1.96 * se, abs=0.35 * se)


def test_missing_values_drop_pairs_and_empty_is_nan():
    mean, lo, hi, n = paired_bootstrap([1.0, np.nan, 3.0], [0.0, 1.0, None])
    assert n == 1 and mean == 1.0 and lo == hi == 1.0
    mean, lo, hi, n = paired_bootstrap([], [])
    assert n == 0 and math.isnan(mean) and math.isnan(lo) and math.isnan(hi)


def test_reproducible_and_validates_input():
    a, b = np.arange(10.0), np.arange(10.0)[::-1]
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1])


def test_paired_deltas_pairs_on_identity_prompt_seed():
    rows = []
    for u, (ident, seed) in enumerate([("a", 1), ("b", 2), ("c", 3)]):
        rows.append(("base", "m", ident, "p", seed, 1.0 + u))
        if ident != "c":  # 'c' missing in run x: not paired
            rows.append(("x", "m", ident, "p", seed, 1.5 + u))
    df = pd.DataFrame(rows, columns=["run_id", "name", "identity", "prompt", "seed", "value"])
    t = paired_deltas(df, "base").set_index("run_id")
    assert t.loc["x", "delta"] == pytest.approx(0.5)
    assert t.loc["x", "n_pairs"] == 2
    assert t.loc["base", "delta"] == 0.0
    assert t.loc["x", "baseline_mean"] == pytest.approx(2.0)
    assert set(t["baseline_id"]) == {"base"}


def test_paired_deltas_with_a_baseline_per_run():
    rows = []
    for u in range(3):
        rows += [("b5", "m", f"i{u}", "p", u, 1.0 + u), ("b8", "m", f"i{u}", "p", u, 2.0 + u),
                 ("x5", "m", f"i{u}", "p", u, 1.25 + u), ("x8", "m", f"i{u}", "p", u, 1.5 + u),
                 ("lone", "m", f"i{u}", "p", u, 9.0)]
    df = pd.DataFrame(rows, columns=["run_id", "name", "identity", "prompt", "seed", "value"])
    t = paired_deltas(df, {"x5": "b5", "x8": "b8", "lone": None}, n_boot=200).set_index("run_id")
    assert sorted(t.index) == ["lone", "x5", "x8"]  # the baselines are not compared (with themselves)
    assert t.loc["x5", "delta"] == pytest.approx(0.25) and t.loc["x5", "baseline_id"] == "b5"
    assert t.loc["x8", "delta"] == pytest.approx(-0.5) and t.loc["x8", "n_pairs"] == 3
    assert t.loc["x8", "baseline_mean"] == pytest.approx(3.0)
    assert np.isnan(t.loc["lone", "delta"]) and t.loc["lone", "n_pairs"] == 0
    assert pd.isna(t.loc["lone", "baseline_id"])
