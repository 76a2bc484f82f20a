"""Compare: metrics per run with paired deltas against a baseline run (bootstrap CIs over the
same identity, prompt and seed), and fronts of ID similarity against CLIP / aesthetics / FFC
over IP-Adapter scales."""

import json

import pandas as pd
import streamlit as st

from workbench.charts import compare as compare_charts
from workbench.data import export, queries, selection, stats

st.title("Compare")
path, all_runs, run_ids, meta = queries.chosen_runs_or_stop()
# the baseline-preset runs at the chosen runs' scales, also where they are not chosen themselves
matched = selection.compare_plan(run_ids, all_runs, selection.MATCHED)
extra = sorted({b for b in matched.values() if b is not None} - set(run_ids))
values_all = queries.query("metric_values", run_ids=run_ids + extra)
values = values_all[values_all["run_id"].isin(run_ids)]
if values.empty:
    st.info("No metrics in the chosen runs yet: metrics (e.g. id_sim, clip_t) are written with the "
            "samples or added later by an evaluator; face similarity appears once faces are detected.")
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def deltas(values: pd.DataFrame, plan_json: str, n_boot: int) -> pd.DataFrame:
    return stats.paired_deltas(values, json.loads(plan_json), n_boot=n_boot, seed=0)


present = [r for r in run_ids if r in set(values["run_id"])]
choices = [selection.MATCHED] + present
queries.keep_valid("cmp_baseline", choices)
default = selection.default_baseline(present, all_runs)
c1, c2 = st.columns([2, 1])
baseline = c1.selectbox(
    "Baseline", choices, index=choices.index(default), key="cmp_baseline",
    format_func=lambda r: ("each run against the baseline-preset run at its checkpoint and scales"
                           if r == selection.MATCHED else meta[r]["label"]),
    help="A run is never compared with itself: the baseline run is left out of the compared runs.")
n_boot = c2.select_slider("Bootstrap resamples", [500, 1000, 2000, 5000], value=2000, key="cmp_nboot")
plan = selection.compare_plan(present, all_runs, baseline)
unmatched = [r for r, b in plan.items() if b is None]
if not plan:
    st.info("Nothing to compare: the chosen runs are all baseline runs. Pick other runs on the Runs page, "
            "or one of them as the baseline here.")
    st.stop()
table = deltas(values_all, json.dumps(plan, sort_keys=True), int(n_boot))
table.insert(1, "run", [meta[r]["label"] for r in table["run_id"]])
table.insert(2, "baseline", [b if b in meta else "none at these scales" for b in table["baseline_id"]])
st.subheader("Metrics per run")
st.caption(f"Δ = run − its baseline over the same (identity, prompt, seed); 95% paired bootstrap "
           f"interval with {n_boot} resamples.")
if unmatched:
    st.caption("No baseline-preset run at the same checkpoint and scales in the store for: "
               + ", ".join(meta[r]["label"] for r in unmatched) + " (their Δ is empty).")
st.dataframe(table.drop(columns=["run_id", "baseline_id"]), hide_index=True, width="stretch", key="cmp_table",
             column_config={"run": st.column_config.TextColumn("run", pinned=True),
                            "baseline": st.column_config.TextColumn("baseline run", help="run id"),
                            "name": st.column_config.TextColumn("metric", pinned=True)}
             | {c: st.column_config.NumberColumn(format="%.4f", width=80)
                for c in ("mean", "baseline_mean", "delta", "lo", "hi")})

metrics = sorted(values["name"].unique())
queries.keep_valid("cmp_metric", metrics)
metric = st.selectbox("Metric", metrics, key="cmp_metric",
                      index=metrics.index("face_similarity") if "face_similarity" in metrics else 0)
params = dict(run_ids=run_ids + extra)
single = None if baseline == selection.MATCHED else baseline
export.show(compare_charts.delta_forest(table, meta, metric, single), key="cmp_forest", page="Compare",
            provenance=queries.provenance("metric_values", **params) | {"baseline": plan, "n_boot": int(n_boot)},
            theme=None)

st.subheader("Fronts over IP-Adapter scales")
per_run = values.groupby(["run_id", "name"])["value"].mean().unstack("name")
counts = queries.query("face_counts", run_ids=run_ids).set_index("run_id")
per_run["ffc_rate"] = counts["ffc_rate"].reindex(per_run.index)
per_run = per_run.join(all_runs.set_index("run_id")[["preset", "ip_scale"]]).reset_index()


def base_name(name: str) -> str:
    """The metric name without the ' @ <model>' that metric_values.sql appends when several
    models computed the metric (e.g. 'id_sim @ dlib/face_recognition_resnet_model_v1@87d583e6')."""
    return name.split(" @ ", 1)[0]


sim_candidates = (["face_similarity"] if "face_similarity" in per_run.columns else []) + sorted(
    m for m in per_run.columns if base_name(m) == "id_sim")


def is_front_axis(name: str) -> bool:
    n = base_name(name).lower()
    return (any(k in n for k in ("clip", "aesthetic", "ffc", "reward")) or n == "ae" or n.startswith("ae_")
            or n.endswith("_ae"))


x_candidates = [m for m in per_run.columns
                if m not in ("preset", "ip_scale", "run_id") and is_front_axis(m) and per_run[m].notna().any()]
if not sim_candidates or not x_candidates:
    st.info("Fronts need an ID similarity (face_similarity or id_sim) and at least one of CLIP, "
            "aesthetics (AE) or FFC per run: evaluate the runs first with `fastface evaluate --store "
            f"{path}` (add `--tiny` for a tiny-world store such as the demo's; see "
            "fastface/evaluation/README.md).")
else:
    c1, c2 = st.columns(2)
    queries.keep_valid("cmp_front_y", sim_candidates)
    queries.keep_valid("cmp_front_x", x_candidates)
    y = c1.selectbox("Similarity", sim_candidates, key="cmp_front_y")
    x = c2.selectbox("Against", x_candidates, key="cmp_front_x")
    fig = compare_charts.fronts(per_run, x=x, y=y, run_meta=meta)
    export.show(fig, key="cmp_fronts", page="Compare",
                provenance=queries.provenance("metric_values", **params) | {"x": x, "y": y}, theme=None)
    if per_run.groupby("preset")["ip_scale"].nunique().max() < 2:
        st.caption("Each preset has a single IP-Adapter scale among the chosen runs: sweep --ip-scale "
                   "to draw a front.")
