"""Runs: every run, live progress of running sweeps, and the runs to compare."""

import json

import pandas as pd
import streamlit as st

from workbench.charts import quick as quick_charts
from workbench.data import queries

REFRESH_S = 5  # seconds between re-reads while a run is in progress
SHOWN = ("run", "preset", "varied", "ip scale", "lora scale", "checkpoint", "status", "progress", "ok", "failed",
         "created (UTC)")  # the Runs table's visible columns (the others: "Show/hide columns")
GRID_HELP = ("A parameter grid's cell (`fastface capture --vary`, the Studio's kept edits): the values it "
             "varies from its preset; 'base': the grid's unchanged preset; empty: no grid. "
             "SQL: views grid_cells and run_params.")

st.title("Runs")
path, _ = queries.require_store()
t1, t2 = st.columns([3, 1])
auto = t1.toggle(f"Refresh every {REFRESH_S} s while a run is in progress", value=True, key="runs_auto",
                 help="Re-reads the runs and their progress by itself while any run's status is "
                      "'running' (a sweep is writing); off: only the Refresh buttons re-read.")
if t2.button("Refresh now", key="runs_refresh", icon=":material/refresh:"):
    queries.refresh()
all_runs = queries.runs()
if all_runs.empty:
    queries.no_runs_message()
    st.stop()
running_now = bool((all_runs["status"] == "running").any())


def capture_summary(spec_json) -> str:
    if not isinstance(spec_json, str) or not spec_json:
        return "no capture"
    try:
        spec = json.loads(spec_json)
    except ValueError:
        return "?"
    if not isinstance(spec, dict):
        return str(spec)[:60]
    bits = []
    for k in ("sites", "steps", "tokens", "branches", "stages", "heads"):
        v = spec.get(k)
        if v is None and k in spec:
            bits.append(f"{k}: all")
        elif isinstance(v, list):
            bits.append(f"{k}: {len(v) if k == 'sites' and len(v) > 3 else ','.join(map(str, v))}")
        elif v is not None:
            bits.append(f"{k}: {v}")
    return "; ".join(bits) or "default"


@st.fragment(run_every=REFRESH_S if auto and running_now else None)
def overview():
    df = queries.runs()
    running = df[df["status"] == "running"]
    if len(running):
        st.subheader("Running")
        for r in running.itertuples(index=False):
            done = max(int(r.n_samples), int(r.n_done) if pd.notna(r.n_done) else 0)
            frac = quick_charts.progress_fraction(done, r.n_total)
            text = (f"{r.run_id} ({r.preset}): {done} / {int(r.n_total)} samples, "
                    f"{int(r.n_failed_samples)} failed") if frac is not None else \
                f"{r.run_id} ({r.preset}): {done} samples (total unknown)"
            st.progress(frac if frac is not None else 0.0, text=text)
        if auto:
            st.caption(f"Updates every {REFRESH_S} s while a run is in progress.")
    if set(df["run_id"]) != set(all_runs["run_id"]) or bool(len(running)) != running_now:
        st.rerun()  # runs appeared or a run ended: the whole page (choices, refresh timer) follows
    # fits 1400 px: the key columns are pinned (they stay where the rest scrolls), and samples,
    # planned, name and capture are hidden (the table's "Show/hide columns" menu shows them)
    table = pd.DataFrame({
        "run": df["run_id"], "preset": df["preset"],
        "varied": [(v or "base") if isinstance(v, str) else "" for v in df["varied"]],
        "grid": df["grid"], "ip scale": df["ip_scale"], "lora scale": df["lora_scale"],
        "checkpoint": df["checkpoint"], "status": df["status"].fillna("unknown"),
        "progress": [quick_charts.progress_fraction(max(a, b if pd.notna(b) else 0), t)
                     for a, b, t in zip(df["n_samples"], df["n_done"], df["n_total"])],
        "samples": df["n_samples"], "ok": df["n_ok"], "failed": df["n_failed_samples"], "planned": df["n_total"],
        "created (UTC)": df["created_at"], "name": df["name"],
        "capture": [capture_summary(s) for s in df["capture_spec_json"]],
    })
    shown = SHOWN if (table["varied"] != "").any() else tuple(c for c in SHOWN if c != "varied")  # no grid: no column
    st.dataframe(table, hide_index=True, width="stretch", key="runs_table", column_order=shown, column_config={
        "run": st.column_config.TextColumn("run", pinned=True),
        "preset": st.column_config.TextColumn("preset", pinned=True, width=70),
        "varied": st.column_config.TextColumn("varied", width=260, help=GRID_HELP),
        "grid": st.column_config.TextColumn("grid", width=110, help="the id shared by the runs of one grid"),
        "ip scale": st.column_config.NumberColumn("ip", format="%.2f", pinned=True, width=50,
                                                  help="IP-Adapter scale"),
        "lora scale": st.column_config.NumberColumn("lora", format="%.2f", width=50, help="LoRA scale"),
        "checkpoint": st.column_config.TextColumn("checkpoint", width=85),
        "status": st.column_config.TextColumn("status", width=85),
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent",
                                                    width=105),
        "samples": st.column_config.NumberColumn("samples", width=65, help="samples written"),
        "ok": st.column_config.NumberColumn("ok", width=40, help="samples written without error"),
        "failed": st.column_config.NumberColumn("failed", width=50, help="samples written as failed"),
        "planned": st.column_config.NumberColumn("planned", width=65, help="samples the run plans"),
        "created (UTC)": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm", width=130),
        "name": st.column_config.TextColumn("name", width=120),
        "capture": st.column_config.TextColumn("capture", width="medium"),
    })


overview()

st.subheader("Runs to compare")
meta = queries.run_meta(all_runs)
options = list(all_runs["run_id"])
if queries.STATE_RUNS not in st.session_state or "runs_pick" not in st.session_state:
    # not picked yet (or back from another page): show what the pages use
    st.session_state["runs_pick"] = queries.selected_runs(all_runs)
else:
    st.session_state["runs_pick"] = [r for r in st.session_state["runs_pick"] if r in options]


def _picked():
    st.session_state[queries.STATE_RUNS] = list(st.session_state["runs_pick"])


st.multiselect("Runs used by the other pages", options, key="runs_pick", on_change=_picked,
               format_func=lambda r: meta[r]["label"],
               help="Default: the newest sweep (the runs of one capture command) with its baseline run(s).")
if queries.runs_picked(all_runs):
    st.caption("Picked by you: every page uses these runs.")
else:
    st.caption("Default: the newest sweep with its baseline run(s); pick runs here to change it "
               "(none picked: the default).")

with st.expander("Run details"):
    rid = st.selectbox("Run", options, format_func=lambda r: meta[r]["label"], key="runs_detail")
    row = all_runs[all_runs["run_id"] == rid].iloc[0]
    st.caption(" · ".join(f"{k}: {v}" for k, v in (("name", row["name"]), ("host", row["host"]),
                                                    ("created (UTC)", row["created_at"]), ("seed", row["seed"]))
                          if v is not None and not pd.isna(v)))
    c1, c2, c3 = st.columns(3)
    if isinstance(row["varied"], str):
        st.caption(f"Grid {row['grid']} over preset {row['preset']}: {row['varied'] or 'the base (nothing varied)'}")
    for col, title, field in ((c1, "Config", "config_json"), (c2, "Capture spec", "capture_spec_json"),
                              (c3, "Package versions", "package_versions_json")):
        with col:
            st.caption(title)
            value = row[field]
            st.json(json.loads(value) if isinstance(value, str) and value else {})
    if isinstance(row["status_message"], str) and row["status_message"]:
        st.caption(f"Status message: {row['status_message']}")
