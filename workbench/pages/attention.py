"""Attention statistics: value histograms pre vs post (Fig. 6), face-region attention mass per
site and step, entropy and peak statistics per step.  Reads only the pre-aggregated map_stats
view (summaries and face-mass sums written with each sample): no map row is scanned or decoded."""

import streamlit as st

from workbench.charts import attention as attention_charts
from workbench.charts.maps import token_label
from workbench.data import export, queries

st.title("Attention statistics")
path, all_runs, run_ids, meta = queries.chosen_runs_or_stop()
facets = queries.query("map_facets", run_ids=run_ids)
if facets.empty and queries.missing_summaries(path):
    st.warning(f"This store was written before the map summary tables existed: run "
               f"`fastface store backfill --store {path}` once to see its attention statistics.")
    st.stop()
if facets.empty:
    st.info("The chosen runs captured no attention maps: run `fastface capture ...` with a capture spec.")
    st.stop()

ALL = "(all)"
for r in run_ids:
    stages = set(facets.loc[facets["run_id"] == r, "stage"])
    if r in set(facets["run_id"]) and "post" not in stages:
        st.info(f"Run {meta[r]['label']} captured no post maps: capture with stage=post.")
    if r in set(facets["run_id"]) and "pre" not in stages:
        st.info(f"Run {meta[r]['label']} captured no pre maps: capture with stage=pre.")
missing = [r for r in run_ids if r not in set(facets["run_id"])]
if missing:
    st.caption("No maps in: " + ", ".join(meta[r]["label"] for r in missing))


def choice(col, label, values, key, fmt=str, default=ALL):
    opts = [ALL] + list(values)
    queries.keep_valid(key, opts)
    idx = opts.index(default) if default in opts else 0
    v = col.selectbox(label, opts, index=idx, key=key, format_func=lambda x: x if x == ALL else fmt(x))
    return None if v == ALL else v


tab_hist, tab_mass, tab_steps = st.tabs(["Value histograms", "Face-region mass", "Entropy and peaks"])

with tab_hist:
    c = st.columns(6)
    part = choice(c[0], "Part", [p for p in ("down", "mid", "up") if p in set(facets["part"])], "hist_part")
    blocks = sorted(facets.loc[facets["part"] == part, "block"].dropna().astype(int).unique()) if part else []
    block = choice(c[1], "Block", blocks, "hist_block")
    step = choice(c[2], "Step", sorted(int(s) for s in facets["step"].unique()), "hist_step")
    token = choice(c[3], "ID token", sorted(int(t) for t in facets["token"].unique()), "hist_token",
                   fmt=token_label)
    branch = choice(c[4], "Branch", sorted(facets["branch"].unique()), "hist_branch")
    log_y = c[5].toggle("Log scale", value=True, key="hist_log")
    params = dict(run_ids=run_ids, part=part, block=None if block is None else int(block),
                  step=None if step is None else int(step), token=None if token is None else int(token),
                  branch=branch)
    hist = queries.query("hist_sum", **params)
    if hist.empty or hist["count"].sum() == 0:
        st.info("No stored histograms match: the probes store `hist` with every map summary; "
                "pick fewer filters.")
    else:
        n_maps = hist.groupby(["run_id", "stage"])["n_maps"].first()
        where = " · ".join(x for x in [part or "all parts", None if block is None else f"block {block}",
                                       "all steps" if step is None else f"step {step}",
                                       "all tokens" if token is None else token_label(token),
                                       branch or "all branches"] if x)
        fig = attention_charts.hist_overlay(hist, meta, log_y=log_y, title=f"Attention values pre vs post ({where})")
        export.show(fig, key="attn_hist", page="Attention statistics",
                    provenance=queries.provenance("hist_sum", **params), theme=None)
        st.caption("Maps summed per run and stage: " + ", ".join(
            f"{meta[r]['label']} {s}: {n}" for (r, s), n in n_maps.items()))

with tab_mass:
    c = st.columns(5)
    runs_with_maps = [r for r in run_ids if r in set(facets.loc[facets["n_data"] > 0, "run_id"])]
    if not runs_with_maps:
        st.info("Only map summaries were stored (encoding 'none'): the face mass needs the maps "
                "(capture with keep_maps=True).")
    else:
        queries.keep_valid("mass_run", runs_with_maps)
        run = c[0].selectbox("Run", runs_with_maps, key="mass_run", format_func=lambda r: meta[r]["label"])
        f = facets[facets["run_id"] == run]
        stages = [s for s in ("pre", "post") if s in set(f["stage"])]
        stage = c[1].radio("Stage", stages, index=len(stages) - 1, key="mass_stage", horizontal=True)
        branches = sorted(f["branch"].unique())
        queries.keep_valid("mass_branch", branches)
        branch = c[2].selectbox("Branch", branches, key="mass_branch",
                                index=branches.index("text_id") if "text_id" in branches else 0)
        tokens = sorted(int(t) for t in f["token"].unique())
        queries.keep_valid("mass_token", tokens)
        token = c[3].selectbox("ID token", tokens, key="mass_token", format_func=token_label)
        value = c[4].radio("Face region", ["mass_in_box", "mass_in_ellipse"], key="mass_value",
                           format_func=lambda v: "box" if v.endswith("box") else "landmark ellipse")
        params = dict(run_id=run, stage=stage, branch=branch, token=int(token))
        mass = queries.query("face_mass", **params)
        if mass.empty:
            st.info("No map of this run lies on a detected generated face (no face detected, or no "
                    "maps with data for this selection).")
        else:
            fig = attention_charts.face_mass_heatmap(mass, value=value, title=f"Attention mass on the face · {meta[run]['label']} · {stage}")
            export.show(fig, key="attn_mass", page="Attention statistics",
                        provenance=queries.provenance("face_mass", **params), theme=None)
            st.metric("Mean share on the face", f"{mass[value].mean():.3f}")

with tab_steps:
    c = st.columns(3)
    branch = choice(c[0], "Branch", sorted(facets["branch"].unique()), "steps_branch")
    token = choice(c[1], "ID token", sorted(int(t) for t in facets["token"].unique()), "steps_token",
                   fmt=token_label)
    params = dict(run_ids=run_ids, branch=branch, token=None if token is None else int(token))
    stats = queries.query("step_stats", **params)
    if stats.empty:
        st.info("No map summaries for this selection.")
    else:
        fig = attention_charts.step_lines(stats, meta, y="entropy", y_title="entropy (nats)",
                                          title="Attention entropy per step")
        export.show(fig, key="attn_entropy", page="Attention statistics",
                    provenance=queries.provenance("step_stats", **params), theme=None)
        fig = attention_charts.step_lines(stats, meta, y="peak_ratio", y_title="peak / mean",
                                          title="Attention peak (max / mean) per step")
        export.show(fig, key="attn_peak", page="Attention statistics",
                    provenance=queries.provenance("step_stats", **params), theme=None)
