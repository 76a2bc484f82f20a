"""Compare: metrics per run with paired deltas against a baseline run -- the statistics of
``fastface report`` (fastface.evaluation.stats: exact sign-flip test, Student-t interval, no mark
below 6 pairs) -- and fronts of ID similarity against CLIP / aesthetics / FFC over IP-Adapter
scales."""

import json

import pandas as pd
import streamlit as st

from workbench.charts import compare as compare_charts
from workbench.data import export, metric_names, queries, selection, stats

st.title("Compare")
path, all_runs, run_ids, meta = queries.chosen_runs_or_stop()
# the baseline-preset runs at the chosen runs' scales, also where they are not chosen themselves
matched = selection.compare_plan(run_ids, all_runs, selection.MATCHED)
extra = sorted({b for b in matched.values() if b is not None} - set(run_ids))
raw = queries.query("metric_values", run_ids=run_ids + extra)
if raw[raw["run_id"].isin(run_ids)].empty:
    st.info("No metrics in the chosen runs yet: metrics (e.g. id_sim, clip_t) are written with the "
            "samples or added later by an evaluator; face similarity appears once faces are detected.")
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def deltas(values: pd.DataFrame, plan_json: str) -> pd.DataFrame:
    return stats.paired_deltas(values, json.loads(plan_json), seed=0)


c1, c2 = st.columns([2, 1])
every_model = c2.toggle("Every model of a metric", False, key="cmp_every_model",
                        help="Off: one model per metric, the one `fastface report` reads (protocol-tagged, "
                             "versioned, most samples). On: every model, named by the shortest tag that "
                             "tells them apart. The full model strings are under 'Metric models' below.")
values_all, catalog = metric_names.name_series(raw, every_model=every_model)
values = values_all[values_all["run_id"].isin(run_ids)]
present = [r for r in run_ids if r in set(values["run_id"])]
choices = [selection.MATCHED] + present
queries.keep_valid("cmp_baseline", choices)
default = selection.default_baseline(present, all_runs)
baseline = c1.selectbox(
    "Baseline", choices, index=choices.index(default), key="cmp_baseline",
    format_func=lambda r: ("each run against the baseline-preset run at its checkpoint and scales"
                           if r == selection.MATCHED else meta[r]["label"]),
    help="A run is never compared with itself: the baseline run is left out of the compared runs.")
plan = selection.compare_plan(present, all_runs, baseline)
unmatched = [r for r, b in plan.items() if b is None]
if not plan:
    st.info("Nothing to compare: the chosen runs are all baseline runs. Pick other runs on the Runs page, "
            "or one of them as the baseline here.")
    st.stop()
table = deltas(values_all, json.dumps(plan, sort_keys=True))
shown = queries.run_labels(list(plan) + [b for b in plan.values() if b], all_runs)
name_of = lambda r: shown.labels.get(r, meta.get(r, {"label": r})["label"])  # noqa: E731
view = pd.DataFrame({
    "run": [name_of(r) for r in table["run_id"]],
    "metric": table["name"],
    "mean": table["mean"],
    "baseline": table["baseline_mean"],
    "Δ": table["delta"],
    "95% interval": [f"[{lo:+.4f}, {hi:+.4f}]" if pd.notna(lo) else "—" for lo, hi in zip(table["lo"], table["hi"])],
    "p": table["p"],
    "pairs": table["n_pairs"],
    "mark": ["✓" if s else "" for s in table["significant"]],
    "vs": [name_of(b) if b in meta else "none at these scales" for b in table["baseline_id"]],
})
st.subheader("Metrics per run")
st.caption(f"Runs: what differs between them ({shown.common or 'nothing in common'} for all). "
           "Δ = run − its baseline over the same (identity, prompt, seed); 95% Student-t interval of Δ; "
           f"p = two-sided sign-flip p-value (exact up to {stats.EXACT_MAX_N} pairs); ✓ = p ≤ {stats.ALPHA:g} "
           f"with at least {stats.MIN_PAIRS} pairs (fewer cannot reach it). The statistics of `fastface report` "
           "(fastface/evaluation/stats.py).")
if unmatched:
    st.caption("No baseline-preset run at the same checkpoint and scales in the store for: "
               + ", ".join(name_of(r) for r in unmatched) + " (their Δ is empty).")
# pixel widths that fit the whole table in the main column at 1400 px (no horizontal scrolling)
num = lambda label, fmt="%.4f", w=72, **kw: st.column_config.NumberColumn(label, format=fmt, width=w, **kw)  # noqa: E731
st.dataframe(view, hide_index=True, width="stretch", key="cmp_table", column_config={
    "run": st.column_config.TextColumn("run", pinned=True, width=120),
    "metric": st.column_config.TextColumn("metric", width=120,
                                          help="Short name of a metric series: its model is under 'Metric models'."),
    "mean": num("mean"), "baseline": num("baseline", help="the baseline's mean"),
    "Δ": num("Δ", "%+.4f", 76), "95% interval": st.column_config.TextColumn("95% interval", width=142),
    "p": num("p", "%.3g", 56), "pairs": num("pairs", "%d", 50),
    "mark": st.column_config.TextColumn("✓", width=32, help=f"p ≤ {stats.ALPHA:g} with ≥ {stats.MIN_PAIRS} pairs"),
    "vs": st.column_config.TextColumn("vs", width=112, help="the baseline run of the row")})
with st.expander("Metric models (full model strings)"):
    st.dataframe(catalog.rename(columns={"name": "metric series", "metric": "metric name", "n_values": "values",
                                         "n_models": "models of this metric", "preferred": "report's model"}),
                 hide_index=True, width="stretch", key="cmp_models")

metrics = sorted(values["name"].unique())
queries.keep_valid("cmp_metric", metrics)
metric = st.selectbox("Metric", metrics, key="cmp_metric",
                      index=metrics.index("face_similarity") if "face_similarity" in metrics else 0)
params = dict(run_ids=run_ids + extra)
single = None if baseline == selection.MATCHED else baseline
export.show(compare_charts.delta_forest(table, meta, metric, single, labels=shown.labels), key="cmp_forest",
            page="Compare",
            provenance=queries.provenance("metric_values", **params) | {"baseline": plan, "test": "sign-flip + t"},
            theme=None)

st.subheader("Fronts over IP-Adapter scales")
per_run = values.groupby(["run_id", "name"])["value"].mean().unstack("name")
counts = queries.query("face_counts", run_ids=run_ids).set_index("run_id")
per_run["ffc_rate"] = counts["ffc_rate"].reindex(per_run.index)
per_run = per_run.join(all_runs.set_index("run_id")[["preset", "ip_scale"]]).reset_index()


metric_of = dict(zip(catalog["name"], catalog["metric"]))


def base_name(name: str) -> str:
    """The metric a series measures ('id_sim (dlib, corrected)' -> 'id_sim')."""
    return metric_of.get(name, name)


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
