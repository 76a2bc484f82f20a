"""Runs: every run, live progress of running sweeps, and the runs to compare."""

import json

import pandas as pd
import streamlit as st

from workbench import charts, data

st.title("Runs")
path, _ = data.require_store()
t1, t2 = st.columns([3, 1])
auto = t1.toggle("Auto refresh every 5 s", value=False, key="runs_auto",
                 help="Re-reads the runs while a sweep is writing (progress below).")
if t2.button("Refresh now", key="runs_refresh", icon=":material/refresh:"):
    data.refresh()
all_runs = data.runs()
if all_runs.empty:
    data.no_runs_message()
    st.stop()


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




@st.fragment(run_every=5 if auto else None)
def overview():
    df = data.runs()
    running = df[df["status"] == "running"]
    if len(running):
        st.subheader("Running")
        for r in running.itertuples(index=False):
            done = max(int(r.n_samples), int(r.n_done) if pd.notna(r.n_done) else 0)
            frac = charts.progress_fraction(done, r.n_total)
            text = (f"{r.run_id} ({r.preset}): {done} / {int(r.n_total)} samples, "
                    f"{int(r.n_failed_samples)} failed") if frac is not None else \
                f"{r.run_id} ({r.preset}): {done} samples (total unknown)"
            st.progress(frac if frac is not None else 0.0, text=text)
    table = pd.DataFrame({
        "run": df["run_id"], "name": df["name"], "preset": df["preset"], "checkpoint": df["checkpoint"],
        "ip scale": df["ip_scale"], "lora scale": df["lora_scale"], "status": df["status"].fillna("unknown"),
        "progress": [charts.progress_fraction(max(a, b if pd.notna(b) else 0), t)
                     for a, b, t in zip(df["n_samples"], df["n_done"], df["n_total"])],
        "samples": df["n_samples"], "ok": df["n_ok"], "failed": df["n_failed_samples"],
        "planned": df["n_total"], "capture": [capture_summary(s) for s in df["capture_spec_json"]],
        "created (UTC)": df["created_at"],
    })
    st.dataframe(table, hide_index=True, width="stretch", key="runs_table", column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        "ip scale": st.column_config.NumberColumn(format="%.2f"),
        "lora scale": st.column_config.NumberColumn(format="%.2f"),
    })


overview()

st.subheader("Runs to compare")
meta = data.run_meta(all_runs)
options = list(all_runs["run_id"])
if "runs_pick" not in st.session_state:
    st.session_state["runs_pick"] = data.selected_runs(all_runs)
else:
    st.session_state["runs_pick"] = [r for r in st.session_state["runs_pick"] if r in options]
picked = st.multiselect("Runs used by the other pages", options, key="runs_pick",
                        format_func=lambda r: meta[r]["label"])
st.session_state[data.STATE_RUNS] = list(picked)
if not picked:
    st.caption("None picked: the other pages use the newest runs.")

with st.expander("Run details"):
    rid = st.selectbox("Run", options, format_func=lambda r: meta[r]["label"], key="runs_detail")
    row = all_runs[all_runs["run_id"] == rid].iloc[0]
    c1, c2, c3 = st.columns(3)
    for col, title, field in ((c1, "Config", "config_json"), (c2, "Capture spec", "capture_spec_json"),
                              (c3, "Package versions", "package_versions_json")):
        with col:
            st.caption(title)
            value = row[field]
            st.json(json.loads(value) if isinstance(value, str) and value else {})
    if isinstance(row["status_message"], str) and row["status_message"]:
        st.caption(f"Status message: {row['status_message']}")
