"""The line every page shows while a capture writes into the store ("capture in progress: N of
M samples"), from the frame of the ``runs`` query (pure: no Streamlit).

The capture in progress is the sweep (workbench.data.selection.sweep_key) of the runs whose
status is ``running``: N counts its committed samples, M its planned ones (``n_total`` of every
run, which fastface.sweeps.sweep.begin_runs records when a run begins; a run without it makes
M unknown).
"""

from __future__ import annotations

import pandas as pd

from workbench.data.selection import sweep_key


def capture_progress(runs: pd.DataFrame) -> dict | None:
    """{'done', 'total' (None when unknown), 'runs_done', 'runs', 'failed'} of the sweeps with a
    running run, or None when no run is running."""
    if runs.empty or not (runs["status"] == "running").any():
        return None
    keys = [sweep_key(r._asdict()) for r in runs.itertuples(index=False)]
    active = {k for k, s in zip(keys, runs["status"]) if s == "running"}
    d = runs[[k in active for k in keys]]
    done = [max(int(a), int(b) if pd.notna(b) else 0) for a, b in zip(d["n_samples"], d["n_done"])]
    totals = d["n_total"]
    total = None if totals.isna().any() else int(totals.sum())
    return {"done": int(sum(done)), "total": total, "runs": len(d),
            "runs_done": int((d["status"] == "completed").sum()),
            "failed": int(d["n_failed_samples"].sum())}


def progress_line(p: dict) -> str:
    """'Capture in progress: 37 of 192 samples (3 of 12 runs complete, 1 failed) ...'."""
    of = f" of {p['total']}" if p["total"] is not None else " (total not known yet)"
    failed = f", {p['failed']} failed" if p["failed"] else ""
    return (f"Capture in progress: {p['done']}{of} samples ({p['runs_done']} of {p['runs']} runs complete{failed}). "
            "The pages show the samples committed so far; \"Refresh data\" re-reads them.")
