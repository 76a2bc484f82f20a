"""Which runs the pages show by default, and which baseline each compared run is paired with.
Pure functions on the frame of the ``runs`` query (workbench/data/sql/runs.sql); no Streamlit.

A *sweep* is the set of runs one capture command created.  ``fastface capture`` / ``demo``
(fastface.sweeps.sweep.begin_runs) write the command's grid into every run's ``notes`` as
``{"sweep": {...}, "dataset": ...}``, so runs with equal ``sweep`` and ``dataset`` are one
sweep (re-running or resuming the command adds nothing new: its run ids are the same).
``fastface import`` runs (``{"import": ...}``) are one sweep each.  Runs written by other code
(no such notes) are grouped by what one command gives all of its runs: seed, capture spec,
host and package versions.

Defaults:

* runs to compare (``default_runs``): the newest sweep (the one whose newest run was created
  last), baseline runs first, plus -- when the sweep has none at some (checkpoint, ip_scale,
  lora_scale) of its runs -- the newest baseline-preset run of the store at those scales.  A
  sweep larger than ``MAX_DEFAULT_RUNS`` is cut to the checkpoint of its newest run first.
* Compare (``compare_plan``): each compared run is paired with the baseline-preset run at the
  same checkpoint, ip_scale and lora_scale (``MATCHED``), or with one run picked by the user;
  a run is never paired with itself, and baseline runs are not compared in the matched mode.
"""

from __future__ import annotations

import json
import math

import pandas as pd

BASELINE_PRESET = "baseline"
MAX_DEFAULT_RUNS = 24
MATCHED = "__matched__"   # Compare: every run against the baseline run at its own scales
SCALE_KEYS = ("checkpoint", "ip_scale", "lora_scale")


def _text(v) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return str(v)


def sweep_key(row) -> str:
    """The sweep a run belongs to (a string; equal for the runs of one command).  ``row``:
    a mapping or namedtuple with run_id, notes, seed, capture_spec_json, host,
    package_versions_json."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    notes = _text(get("notes"))
    parsed = None
    if notes:
        try:
            parsed = json.loads(notes)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and "sweep" in parsed:
        return "sweep:" + json.dumps({"sweep": parsed["sweep"], "dataset": parsed.get("dataset")},
                                     sort_keys=True, default=str)
    if isinstance(parsed, dict) and "import" in parsed:
        return "import:" + str(get("run_id"))
    seed = get("seed")
    seed = None if seed is None or pd.isna(seed) else int(seed)
    return "same:" + json.dumps([seed, _text(get("capture_spec_json")), _text(get("host")),
                                 _text(get("package_versions_json"))])


def with_sweeps(all_runs: pd.DataFrame) -> pd.DataFrame:
    """all_runs with a ``sweep`` column (see sweep_key)."""
    out = all_runs.copy()
    out["sweep"] = [sweep_key(r._asdict()) for r in all_runs.itertuples(index=False)] if len(all_runs) else []
    return out


def _same(a, b) -> bool:
    a_na, b_na = a is None or pd.isna(a), b is None or pd.isna(b)
    if a_na or b_na:
        return a_na and b_na
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    return a == b


def same_scales(a, b) -> bool:
    """Two run rows (mappings) at the same checkpoint, ip_scale and lora_scale."""
    return all(_same(a[k], b[k]) for k in SCALE_KEYS)


def _created(df: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(df["created_at"])


def matched_baseline(run_id: str, all_runs: pd.DataFrame, prefer=()) -> str | None:
    """The baseline-preset run at the same checkpoint, ip_scale and lora_scale as run_id (never
    run_id itself): one of ``prefer`` (e.g. the runs chosen) if possible, else one of the same
    sweep, else the newest; None when the store has none."""
    rows = all_runs.set_index("run_id", drop=False)
    if run_id not in rows.index:
        return None
    me = rows.loc[run_id]
    cands = all_runs[(all_runs["preset"] == BASELINE_PRESET) & (all_runs["run_id"] != run_id)]
    cands = cands[[same_scales(me, c) for _, c in cands.iterrows()]]
    if cands.empty:
        return None
    prefer = list(prefer)
    sweep = sweep_key(me.to_dict())
    rank = pd.DataFrame({
        "run_id": cands["run_id"],
        "preferred": [prefer.index(r) if r in prefer else len(prefer) for r in cands["run_id"]],
        "other_sweep": [sweep_key(c.to_dict()) != sweep for _, c in cands.iterrows()],
        "age": -_created(cands).astype("int64"),
    })
    return str(rank.sort_values(["preferred", "other_sweep", "age", "run_id"]).iloc[0]["run_id"])


def _order(df: pd.DataFrame) -> list[str]:
    """Baseline runs first, then in the order the command created them."""
    d = df.assign(_nb=df["preset"] != BASELINE_PRESET, _t=_created(df))
    return list(d.sort_values(["_nb", "_t", "run_id"])["run_id"])


def default_runs(all_runs: pd.DataFrame, limit: int = MAX_DEFAULT_RUNS) -> list[str]:
    """The runs the pages use until the user picks some: the newest sweep with its baseline
    run(s) (see the module docstring)."""
    if all_runs is None or all_runs.empty:
        return []
    df = with_sweeps(all_runs)
    newest = df.loc[_created(df).idxmax(), "sweep"]
    sweep = df[df["sweep"] == newest]
    if len(sweep) > limit and sweep["checkpoint"].nunique(dropna=False) > 1:
        latest = sweep.loc[_created(sweep).idxmax()]
        sweep = sweep[[_same(c, latest["checkpoint"]) for c in sweep["checkpoint"]]]
    chosen = list(sweep["run_id"])
    have = sweep[sweep["preset"] == BASELINE_PRESET]
    for _, r in sweep[sweep["preset"] != BASELINE_PRESET].iterrows():
        if any(same_scales(r, b) for _, b in have.iterrows()):
            continue
        base = matched_baseline(r["run_id"], all_runs)
        if base is not None and base not in chosen:
            chosen.append(base)
            have = pd.concat([have, df[df["run_id"] == base]])
    ordered = _order(df[df["run_id"].isin(chosen)])
    return ordered[:limit]


def compare_plan(run_ids, all_runs: pd.DataFrame, baseline: str = MATCHED) -> dict[str, str | None]:
    """{compared run: its baseline run (None: no baseline at its scales)}.

    ``baseline=MATCHED``: every chosen run that is not a baseline-preset run, against
    matched_baseline (preferring chosen runs); a run id: every other chosen run against it.
    The baseline is never among the keys of its own pair."""
    run_ids = list(run_ids)
    if baseline != MATCHED:
        return {r: baseline for r in run_ids if r != baseline}
    presets = dict(zip(all_runs["run_id"], all_runs["preset"]))
    return {r: matched_baseline(r, all_runs, prefer=run_ids) for r in run_ids
            if presets.get(r) != BASELINE_PRESET}


def default_baseline(run_ids, all_runs: pd.DataFrame) -> str:
    """Compare's initial baseline choice: MATCHED when at least one chosen run has a baseline
    run at its scales, else a chosen baseline-preset run, else the first chosen run."""
    run_ids = list(run_ids)
    if any(v is not None for v in compare_plan(run_ids, all_runs).values()):
        return MATCHED
    presets = dict(zip(all_runs["run_id"], all_runs["preset"]))
    return next((r for r in run_ids if presets.get(r) == BASELINE_PRESET), run_ids[0] if run_ids else MATCHED)


def describe(run_ids, all_runs: pd.DataFrame, picked: bool) -> str:
    """One line for the sidebar: how many runs the pages use and why."""
    n = len(run_ids)
    if not n:
        return "Runs chosen: none (the store has no runs yet)"
    if picked:
        return f"Runs chosen: {n} (picked on Runs)"
    sub = all_runs[all_runs["run_id"].isin(run_ids)]
    presets = sub["preset"].fillna("?").nunique()
    scales = sub["ip_scale"].nunique(dropna=False)
    base = int((sub["preset"] == BASELINE_PRESET).sum())
    return (f"Runs chosen: {n}, the newest sweep with {base} baseline run{'s' * (base != 1)} "
            f"({presets} preset{'s' * (presets != 1)} × {scales} IP scale{'s' * (scales != 1)}); "
            "pick others on Runs")
