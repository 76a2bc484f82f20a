"""Paired comparisons that hold at small n: an exact sign-flip permutation test and a
Student-t interval (used by ``fastface report``).

For the n units (identity, prompt, seed) that a run and its baseline both have, d_i = run_i -
baseline_i.  Under "no difference" the run and the baseline are exchangeable within a unit,
so each d_i is as likely to be +|d_i| as -|d_i| whatever the metric's distribution.  The
two-sided p-value is the share of the 2^n sign flips whose |sum| reaches the observed |sum|:

- exact enumeration of all 2^n flips for n <= ``EXACT_MAX_N`` (16: 65,536 flips);
- above that, ``n_perm`` random flips from a generator seeded with ``seed`` (reproducible),
  p = (1 + #{|T*| >= |T|}) / (1 + n_perm) (a valid p-value).

The smallest two-sided p an exact test can give with n pairs is 2 / 2^n (the observed signs
and their mirror): 0.25 at n=3, 0.0625 at n=5, 0.03125 at n=6.  So below n = ``min_pairs(alpha)``
(6 at alpha 0.05) no difference can be marked: the report says so instead of marking, and a
mark always comes with its p-value and n.  The false-positive rate of the mark under the null is
at most alpha at every n (exactly alpha up to the discreteness of 2^n outcomes: 3.1 % at n=6,
4.7 % at n=8, 5.0 % at n=12); ``tests/unit/test_eval_stats.py`` simulates it.

Both ``fastface report`` and the workbench's Compare page pair units with :func:`paired_units`
and test them with :func:`paired_test`: one answer to one question.

The interval is the Student-t 95 % interval of the mean difference (mean ± t_{0.975, n-1} ·
sd / sqrt(n)): exact for normal differences, no resampling.  It describes the size of the
difference; the mark comes from the permutation test alone (the two can disagree near the
boundary).  The percentile bootstrap interval used before marked 25 % of null comparisons at
n=3 and 11 % at n=8.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXACT_MAX_N = 16
ALPHA = 0.05


def min_pairs(alpha: float = ALPHA) -> int:
    """The smallest n at which an exact two-sided sign-flip test can reach p <= alpha (2/2^n <= alpha)."""
    n = 1
    while 2.0 / 2 ** n > alpha:
        n += 1
    return n


MIN_PAIRS = min_pairs(ALPHA)


def _sign_matrix(n: int) -> np.ndarray:
    """All 2^n sign vectors as a [2^n, n] float array of +1/-1."""
    codes = np.arange(2 ** n, dtype=np.int64)[:, None]
    bits = (codes >> np.arange(n, dtype=np.int64)[None, :]) & 1
    return 1.0 - 2.0 * bits


def sign_flip_pvalues(d: np.ndarray, *, n_perm: int = 20000, seed: int = 0, exact_max_n: int = EXACT_MAX_N
                      ) -> np.ndarray:
    """Two-sided sign-flip p-values of the columns of ``d`` ([n, k]: k samples of n paired
    differences each, no NaN).  Vectorised over columns; exact for n <= exact_max_n."""
    d = np.asarray(d, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    n = d.shape[0]
    if n == 0:
        return np.full(d.shape[1], np.nan)
    observed = np.abs(d.sum(axis=0))
    tol = 1e-9 * np.maximum(np.abs(d).sum(axis=0), 1e-300)  # sums equal in exact arithmetic count as ties
    if n <= exact_max_n:
        signs = _sign_matrix(n)
        hits = np.zeros(d.shape[1], dtype=np.int64)
        for start in range(0, signs.shape[0], 8192):  # bounded memory: [8192, k] at a time
            t = np.abs(signs[start:start + 8192] @ d)
            hits += (t >= observed - tol).sum(axis=0)
        return hits / float(signs.shape[0])
    if n_perm < 1:
        raise ValueError("n_perm must be >= 1")
    rng = np.random.default_rng(seed)
    hits = np.zeros(d.shape[1], dtype=np.int64)
    left = n_perm
    while left > 0:
        b = min(left, 4096)
        signs = rng.integers(0, 2, size=(b, n)) * 2.0 - 1.0
        hits += (np.abs(signs @ d) >= observed - tol).sum(axis=0)
        left -= b
    return (1.0 + hits) / (1.0 + n_perm)


def t_interval(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``d`` (NaN for n < 2)."""
    from scipy import stats

    d = np.asarray(d, dtype=np.float64)
    n = d.size
    if n < 2:
        return math.nan, math.nan
    mean = float(d.mean())
    se = float(d.std(ddof=1)) / math.sqrt(n)
    q = float(stats.t.ppf(0.5 + level / 2.0, n - 1))
    return mean - q * se, mean + q * se


@dataclass(frozen=True)
class Paired:
    """One run-vs-baseline comparison over the units both have."""

    n: int                 # complete pairs
    delta: float           # mean(run - baseline)
    lo: float              # Student-t interval of delta
    hi: float
    p: float               # two-sided sign-flip p-value (NaN without pairs)
    mean_run: float        # means over the pairs
    mean_base: float
    significant: bool      # p <= alpha and n >= min_pairs(alpha)
    method: str            # "exact" | "monte-carlo" | "" (no pairs)

    def relative_pct(self) -> float:
        """100 · delta / |mean_base| over the same pairs: its sign is delta's (NaN if mean_base is 0)."""
        if self.n == 0 or not math.isfinite(self.mean_base) or self.mean_base == 0:
            return math.nan
        return 100.0 * self.delta / abs(self.mean_base)


def paired_test(run, base, *, alpha: float = ALPHA, n_perm: int = 20000, seed: int = 0) -> Paired:
    """Compare paired values (``run[i]`` and ``base[i]`` are the same unit); pairs with a
    missing value (None/NaN) are dropped."""
    a = np.asarray(run, dtype=np.float64).reshape(-1)
    b = np.asarray(base, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, False, "")
    d = a - b
    p = float(sign_flip_pvalues(d, n_perm=n_perm, seed=seed)[0])
    lo, hi = t_interval(d)
    return Paired(n, float(d.mean()), lo, hi, p, float(a.mean()), float(b.mean()),
                  bool(n >= min_pairs(alpha) and p <= alpha), "exact" if n <= EXACT_MAX_N else "monte-carlo")


UNIT_KEYS = ("identity", "prompt", "seed")


def paired_units(run, base, *, keys=UNIT_KEYS, alpha: float = ALPHA, n_perm: int = 20000, seed: int = 0) -> Paired:
    """``run`` and ``base``: frames with ``keys`` and ``value`` (one row per sample and metric of
    each run).  A unit measured more than once in a run is averaged first; the units both runs
    have are paired and tested with :func:`paired_test`."""
    keys = list(keys)
    mine = run.groupby(keys, as_index=False, dropna=False)["value"].mean()
    theirs = base.groupby(keys, as_index=False, dropna=False)["value"].mean()
    merged = mine.merge(theirs, on=keys, suffixes=("", "_base"))
    return paired_test(merged["value"], merged["value_base"], alpha=alpha, n_perm=n_perm, seed=seed)
