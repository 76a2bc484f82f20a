"""Statistics of the Compare page (pure functions, no Streamlit)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

PAIR_KEYS = ("identity", "prompt", "seed")


def paired_bootstrap(a, b, n_boot: int = 2000, seed: int = 0, level: float = 0.95
                     ) -> tuple[float, float, float, int]:
    """Mean of the paired differences a - b with a percentile bootstrap confidence interval.

    ``a[i]`` and ``b[i]`` are the same unit (same identity, prompt and seed) under two runs.
    Pairs where either value is missing (None/NaN) are dropped.  The bootstrap resamples
    the n pairs with replacement ``n_boot`` times (numpy Generator seeded with ``seed``, so
    the result is reproducible) and returns the (1-level)/2 and (1+level)/2 percentiles of
    the resampled mean differences.

    Returns ``(mean_delta, lo, hi, n)``; with no complete pair: ``(nan, nan, nan, 0)``.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}")
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = int(d.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(d.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    boot = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return mean, float(lo), float(hi), n


def paired_deltas(values: pd.DataFrame, baseline: str | Mapping[str, str | None], n_boot: int = 2000,
                  seed: int = 0) -> pd.DataFrame:
    """Per (run, metric): mean, baseline mean, delta and its paired bootstrap CI.

    ``values`` has columns run_id, name, identity, prompt, seed, value (one row per sample
    and metric).  Pairs are matched on (identity, prompt, seed); a unit measured twice in
    one run is averaged first.  ``baseline``: one run id (every run of ``values`` against it;
    its own row has delta 0), or ``{run_id: baseline run id or None}`` (only those runs, each
    against its own baseline; None: no baseline, delta NaN).  Column ``baseline_id`` says
    which baseline each row was paired with.
    """
    cols = ["run_id", "name", "baseline_id", "mean", "n", "baseline_mean", "delta", "lo", "hi", "n_pairs"]
    if values.empty:
        return pd.DataFrame(columns=cols)
    plan = ({r: baseline for r in values["run_id"].unique()} if isinstance(baseline, str)
            else dict(baseline))
    keys = list(PAIR_KEYS)
    unit = values.groupby(["run_id", "name", *keys], as_index=False, dropna=False)["value"].mean()
    rows = []
    for (run_id, name), g in unit.groupby(["run_id", "name"], sort=True):
        if run_id not in plan:
            continue
        base_id = plan[run_id]
        base = unit[(unit.run_id == base_id) & (unit.name == name)]
        mean = float(g["value"].mean()) if g["value"].notna().any() else math.nan
        row = {"run_id": run_id, "name": name, "baseline_id": base_id, "mean": mean,
               "n": int(g["value"].notna().sum()),
               "baseline_mean": float(base["value"].mean()) if base["value"].notna().any() else math.nan}
        if run_id == base_id:
            row.update(delta=0.0, lo=0.0, hi=0.0, n_pairs=int(g["value"].notna().sum()))
        else:
            merged = g.merge(base, on=keys, suffixes=("", "_base"))
            delta, lo, hi, n = paired_bootstrap(merged["value"], merged["value_base"], n_boot, seed)
            row.update(delta=delta, lo=lo, hi=hi, n_pairs=n)
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)
