"""Binned means with confidence intervals (pure pandas/numpy): the "ID similarity vs face size"
figure averages the similarity of each run's samples in bins of face size.

``binned_means(df, x, y, by, edges)``: per group and bin, the mean of x (where the point is
drawn), the mean of y, n, and the 95 % t-interval of the mean of y (mean ± t(0.975, n-1) · sd /
√n, sd with n-1; no interval for n = 1).  Rows without x or y are not binned; ``dropped``
counts them per group, so nothing is left out silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fastface.evaluation.stats import t_interval

CONFIDENCE = 0.95


def bin_edges(values, n_bins: int = 5) -> np.ndarray:
    """``n_bins`` equal-width bins over [min, max] of values (one bin when they are all equal)."""
    v = np.asarray(pd.Series(values).dropna(), dtype=float)
    if v.size == 0:
        return np.array([0.0, 1.0])
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return np.array([lo - 0.5e-9, hi + 0.5e-9]) if lo == 0 else np.array([lo * (1 - 1e-9), hi * (1 + 1e-9)])
    return np.linspace(lo, hi, int(n_bins) + 1)


def binned_means(df: pd.DataFrame, x: str, y: str, by: str, edges) -> pd.DataFrame:
    """One row per (group, non-empty bin): by, bin (0-based), x_lo, x_hi, x_mean, y_mean, y_sd,
    n, lo, hi (the interval of the mean of y; NaN when n == 1).  The last bin includes its right
    edge; values outside [edges[0], edges[-1]] are not binned (counted by ``dropped``)."""
    edges = np.asarray(edges, dtype=float)
    d = df.dropna(subset=[x, y])
    d = d[(d[x] >= edges[0]) & (d[x] <= edges[-1])]
    idx = np.clip(np.searchsorted(edges, d[x].to_numpy(float), side="right") - 1, 0, len(edges) - 2)
    d = d.assign(_bin=idx)
    rows = []
    for (group, b), g in d.groupby([by, "_bin"], sort=True):
        vals = g[y].to_numpy(float)
        n = len(vals)
        mean = float(vals.mean())
        sd = float(vals.std(ddof=1)) if n > 1 else float("nan")
        lo, hi = t_interval(vals, CONFIDENCE)  # the report's Student-t interval (NaN for n = 1)
        rows.append({by: group, "bin": int(b), "x_lo": float(edges[b]), "x_hi": float(edges[b + 1]),
                     "x_mean": float(g[x].mean()), "y_mean": mean, "y_sd": sd, "n": n,
                     "lo": lo, "hi": hi})
    cols = [by, "bin", "x_lo", "x_hi", "x_mean", "y_mean", "y_sd", "n", "lo", "hi"]
    return pd.DataFrame(rows, columns=cols)


def dropped(df: pd.DataFrame, x: str, y: str, by: str) -> pd.Series:
    """Rows per group without x or without y (e.g. no face detected): not in any bin."""
    miss = df[x].isna() | df[y].isna()
    return miss.groupby(df[by]).sum().astype(int)
