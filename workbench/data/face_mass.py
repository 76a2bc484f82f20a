"""The Attention page's face-mass numbers across runs (pure pandas/numpy, no Streamlit).

Units are samples: per sample, the mean over its maps (sites x steps of a UNet part, and the
chosen tokens) of the mass in the generated face box and of the box's share of the map's cells
(workbench/data/sql/face_mass_samples.sql); per run x part x token, the mean over samples with a
95 % percentile-bootstrap interval over samples (``mean_interval``), for the mass and for the
ratio mass / area share (1 = no preference for the face: what a uniform map gives).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

LEVEL = 0.95
N_BOOT = 2000
#: the ID tokens that attend to the face (token 0 attends to the background)
FACE_TOKENS = (1, 2, 3)
PARTS = ("down", "mid", "up")
INTERVAL = "95 % percentile bootstrap over samples (2,000 resamples)"


def default_tokens(tokens) -> list[int]:
    """The face tokens present (1-3), else every token but 0 (the background's), else all."""
    tokens = sorted(int(t) for t in tokens)
    face = [t for t in FACE_TOKENS if t in tokens]
    return face or [t for t in tokens if t != 0] or tokens


def token_group_label(tokens) -> str:
    tokens = sorted(int(t) for t in tokens)
    if len(tokens) == 1:
        return "sum of tokens" if tokens[0] == -1 else f"token {tokens[0]}"
    if tokens == list(range(tokens[0], tokens[-1] + 1)):
        return f"tokens {tokens[0]}-{tokens[-1]} (mean)"
    return "tokens " + ", ".join(str(t) for t in tokens) + " (mean)"


def mean_interval(values, level: float = LEVEL, n_boot: int = N_BOOT, seed: int = 0
                  ) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of the finite values: a percentile bootstrap interval of the mean
    (numpy Generator seeded with ``seed``: reproducible); n = 1 gives lo = hi = the value."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(v.mean())
    if n == 1:
        return mean, mean, mean, 1
    boot = v[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return mean, float(lo), float(hi), n


def across_runs(per_sample: pd.DataFrame, pool: bool = True) -> pd.DataFrame:
    """Per run x part x token (or the pooled tokens when ``pool``): mean mass, mean share, mean
    ratio (per sample mass / share) with their intervals over samples.

    ``per_sample``: run_id, sample_key, part, token, mass, share, n_maps, n_negative (one row per
    sample, part and token).  Pooled: a sample's mass and share are the means over the tokens'
    maps (weighted by n_maps)."""
    cols = ["run_id", "part", "tokens", "mass", "mass_lo", "mass_hi", "share", "ratio", "ratio_lo",
            "ratio_hi", "n_samples", "n_maps", "n_negative"]
    if per_sample.empty:
        return pd.DataFrame(columns=cols)
    df = per_sample.copy()
    if pool:
        label = token_group_label(df["token"].unique())
        df["w_mass"], df["w_share"] = df["mass"] * df["n_maps"], df["share"] * df["n_maps"]
        df = df.groupby(["run_id", "sample_key", "part"], as_index=False).agg(
            w_mass=("w_mass", "sum"), w_share=("w_share", "sum"), n_maps=("n_maps", "sum"),
            n_negative=("n_negative", "sum"))
        df["mass"], df["share"] = df["w_mass"] / df["n_maps"], df["w_share"] / df["n_maps"]
        df["tokens"] = label
    else:
        df["tokens"] = df["token"].map(lambda t: token_group_label([t]))
    df["ratio"] = df["mass"] / df["share"].where(df["share"] > 0)
    rows = []
    for (run_id, part, tokens), g in df.groupby(["run_id", "part", "tokens"], sort=True):
        mass, mlo, mhi, n = mean_interval(g["mass"])
        ratio, rlo, rhi, _ = mean_interval(g["ratio"])
        rows.append({"run_id": run_id, "part": part, "tokens": tokens, "mass": mass, "mass_lo": mlo,
                     "mass_hi": mhi, "share": float(g["share"].mean()), "ratio": ratio, "ratio_lo": rlo,
                     "ratio_hi": rhi, "n_samples": n, "n_maps": int(g["n_maps"].sum()),
                     "n_negative": int(g["n_negative"].sum())})
    return pd.DataFrame(rows, columns=cols)


def count_line(counts: pd.DataFrame, what: str = "maps") -> str:
    """One caption line: how many maps the averages cover, how many they leave out and why.
    ``counts``: n_maps, n_covered, n_no_face, n_no_data, n_zero_sum, n_negative (summed)."""
    if counts.empty:
        return f"No {what}."
    t = {c: int(counts[c].fillna(0).sum()) for c in ("n_maps", "n_covered", "n_no_face", "n_no_data",
                                                      "n_zero_sum", "n_negative") if c in counts}
    left = t["n_maps"] - t["n_covered"]
    reasons = [f"{t[c]:,} {why}" for c, why in (("n_no_face", "of samples without a detected face"),
                                                   ("n_no_data", "stored without values"),
                                                   ("n_zero_sum", "with no value > 0")) if t.get(c)]
    line = (f"Covers {t['n_covered']:,} of {t['n_maps']:,} {what}; {left:,} excluded"
            + (": " + ", ".join(reasons) if reasons else "") + ".")
    if t.get("n_negative"):
        line += f" Maps with negative values: {t['n_negative']:,}, counted on their positive part max(v, 0)."
    return line
