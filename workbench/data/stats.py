"""Statistics of the Compare page (pure functions, no Streamlit): the paired comparisons of
``fastface report``, from the one module that holds them (:mod:`fastface.evaluation.stats`:
units paired on (identity, prompt, seed), exact sign-flip p-value, Student-t 95 % interval,
no mark below ``MIN_PAIRS`` pairs), applied per (run, metric) of the ``metric_values`` query."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from fastface.evaluation.stats import ALPHA, EXACT_MAX_N, MIN_PAIRS, UNIT_KEYS, paired_units  # noqa: F401

PAIR_KEYS = UNIT_KEYS
COLUMNS = ["run_id", "name", "baseline_id", "mean", "n", "baseline_mean", "delta", "lo", "hi", "p", "n_pairs",
           "significant"]


def paired_deltas(values: pd.DataFrame, baseline: str | Mapping[str, str | None], *, n_perm: int = 20000,
                  seed: int = 0) -> pd.DataFrame:
    """Per (run, metric): mean, baseline mean, the mean paired difference with its Student-t
    interval (``lo``, ``hi``), the sign-flip p-value ``p``, ``n_pairs`` and ``significant``
    (p <= ALPHA with at least MIN_PAIRS pairs), exactly as ``fastface report`` computes them.

    ``values``: run_id, name, identity, prompt, seed, value (one row per sample and metric).
    ``baseline``: one run id (every run of ``values`` against it; its own row has delta 0 and
    no test), or ``{run_id: baseline run id or None}`` (only those runs, each against its own
    baseline; None: no baseline, delta NaN).  Column ``baseline_id`` names the baseline."""
    if values.empty:
        return pd.DataFrame(columns=COLUMNS)
    plan = ({r: baseline for r in values["run_id"].unique()} if isinstance(baseline, str)
            else dict(baseline))
    rows = []
    for (run_id, name), g in values.groupby(["run_id", "name"], sort=True):
        if run_id not in plan:
            continue
        base_id = plan[run_id]
        base = values[(values["run_id"] == base_id) & (values["name"] == name)]
        unit = g.groupby(list(PAIR_KEYS), dropna=False)["value"].mean()
        base_unit = base.groupby(list(PAIR_KEYS), dropna=False)["value"].mean()
        row = {"run_id": run_id, "name": name, "baseline_id": base_id,
               "mean": float(unit.mean()) if unit.notna().any() else math.nan, "n": int(unit.notna().sum()),
               "baseline_mean": float(base_unit.mean()) if base_unit.notna().any() else math.nan,
               "delta": math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan, "n_pairs": 0,
               "significant": False}
        if run_id == base_id:
            row.update(delta=0.0, lo=0.0, hi=0.0, n_pairs=row["n"])
        elif base_id is not None:
            t = paired_units(g, base, n_perm=n_perm, seed=seed)
            row.update(delta=t.delta, lo=t.lo, hi=t.hi, p=t.p, n_pairs=t.n, significant=t.significant)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
