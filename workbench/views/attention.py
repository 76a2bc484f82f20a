"""Attention statistics: the mass of the ID tokens' attention in the generated face across runs
(per UNet part), face mass per site and step of one run, value histograms pre vs post (Fig. 6),
entropy and peak statistics per step, and the ID-versus-text balance of the decoupled blocks
(views/balance_section.py).  Reads only the pre-aggregated views (map_stats,
map_face_mass, balance: summaries and face-mass rows written with each sample): no map is decoded.  Every
average says how many maps it covers and how many it leaves out, and why."""

import streamlit as st

from workbench.charts import attention as attention_charts
from workbench.charts import face_mass as face_mass_charts
from workbench.charts.maps import token_label
from workbench.charts.style import run_order
from workbench.data import export, queries
from workbench.data import face_mass as fm
from workbench.views.balance_section import render as render_balance

PAGE = "Attention statistics"
ALL = "(all)"

st.title(PAGE)
path, all_runs, run_ids, meta = queries.chosen_runs_or_stop()
facets = queries.query("map_facets", run_ids=run_ids)
missing_summaries = queries.missing_summaries(path)
if facets.empty and missing_summaries:
    st.warning(f"This store was written before the map summary tables existed: run "
               f"`fastface store backfill --store {path}` once to see its attention statistics.")
    st.stop()
if facets.empty:
    st.info("The chosen runs captured no attention maps: run `fastface capture ...` with a capture spec.")
    st.stop()
if missing_summaries:
    st.warning(f"{missing_summaries} sample folders or segments hold summaries of older code (maps with "
               f"negative values left out, no counts): run `fastface store backfill --store {path}` once.")

shown = queries.run_labels(run_ids, all_runs)  # by what differs (preset, scale, varied values)
labels = {r: shown.labels.get(r, r) for r in run_ids}
if shown.common:
    st.caption(f"Runs labelled by what differs between them; all share: {shown.common}.")
order = sorted(run_ids, key=lambda r: run_order(r, meta[r]["preset"], meta[r]["ip_scale"]))
legend_meta = {r: {**meta[r], "label": labels[r]} for r in run_ids}  # preset and scale, not the run id
for r in order:
    stages = set(facets.loc[facets["run_id"] == r, "stage"])
    if r in set(facets["run_id"]) and "post" not in stages:
        st.info(f"Run {labels[r]} captured no post maps: capture with stage=post.")
    if r in set(facets["run_id"]) and "pre" not in stages:
        st.info(f"Run {labels[r]} captured no pre maps: capture with stage=pre.")
missing = [r for r in order if r not in set(facets["run_id"])]
if missing:
    st.caption("No maps in: " + ", ".join(labels[r] for r in missing))
all_tokens = sorted(int(t) for t in facets["token"].unique())
face_tokens = fm.default_tokens(all_tokens)


def choice(col, label, values, key, fmt=str, default=ALL):
    opts = [ALL] + list(values)
    queries.keep_valid(key, opts)
    idx = opts.index(default) if default in opts else 0
    v = col.selectbox(label, opts, index=idx, key=key, format_func=lambda x: x if x == ALL else fmt(x))
    return None if v == ALL else v


def tokens_choice(col, key, default) -> list[int]:
    """A multiselect of ID tokens (default: the face tokens 1-3); empty = every token."""
    if key in st.session_state:
        st.session_state[key] = [t for t in st.session_state[key] if t in all_tokens]
    return col.multiselect("ID tokens", all_tokens, default=None if key in st.session_state else default,
                           key=key, format_func=lambda t: "sum" if t == -1 else str(t),
                           help="Tokens 1-3 attend to the face; token 0 attends to the background.")


def branch_choice(col, key, branches):
    queries.keep_valid(key, branches)
    return col.selectbox("Branch", branches, key=key, index=branches.index("text_id") if "text_id" in branches else 0)


def stage_choice(col, key, stages):
    return col.radio("Stage", stages, index=len(stages) - 1, key=key, horizontal=True)


tab_runs, tab_sites, tab_hist, tab_steps, tab_balance = st.tabs(
    ["Face mass across runs", "Face mass per site and step", "Value histograms", "Entropy and peaks",
     "Balance (ID vs text)"])

runs_with_maps = [r for r in order if r in set(facets.loc[facets["n_data"] > 0, "run_id"])]
no_data_note = ("Only map summaries were stored (encoding 'none'): the face mass needs the maps "
                "(capture with keep_maps=True).")

with tab_runs:
    if not runs_with_maps:
        st.info(no_data_note)
    else:
        c = st.columns([1, 1.1, 1.8, 1.3, 1.8])
        f = facets[facets["run_id"].isin(runs_with_maps)]
        stage = stage_choice(c[0], "mr_stage", [s for s in ("pre", "post") if s in set(f["stage"])])
        branch = branch_choice(c[1], "mr_branch", sorted(f["branch"].unique()))
        tokens = tokens_choice(c[2], "mr_tokens", face_tokens)
        pool = c[3].toggle("Pool", value=True, key="mr_pool",
                           help="One bar for the chosen tokens (each sample's mean over their maps), "
                                "or one bar per token.")
        value = c[4].radio("Show", list(face_mass_charts.VALUES), key="mr_value", horizontal=True,
                           format_func=lambda v: "mass ÷ area share" if v == "ratio" else "mass in box")
        params = dict(run_ids=runs_with_maps, stage=stage, branch=branch, tokens=tokens or None)
        per_sample = queries.query("face_mass_samples", **params)
        counts = queries.query("face_mass_counts", **params)
        table = fm.across_runs(per_sample, pool=pool)
        if table.empty:
            st.info("No map of the chosen runs lies on a detected generated face for this selection.")
        else:
            what = fm.token_group_label(tokens or all_tokens)
            fig = face_mass_charts.across_runs(
                table, labels, [r for r in order if r in set(table["run_id"])], value=value,
                title=f"Attention mass in the face box · {what} · {stage}")
            export.show(fig, key="attn_mass_runs", page=PAGE,
                        provenance=queries.provenance("face_mass_samples", **params), theme=None)
            st.caption(
                f"Per sample: the mean over its maps (the part's sites x steps, branch {branch}"
                f"{', the chosen tokens pooled' if pool else ''}) of the share of the map's mass inside the detected face box, and of the box's share "
                f"of the map's cells (area share: what a uniform map puts there; ratio 1 = no preference for "
                f"the face). Bars: mean over samples; whiskers: {fm.INTERVAL}. " + fm.count_line(counts))
            with st.expander("Counts per run and part (maps covered and excluded, and why)"):
                shown = counts.assign(run=counts["run_id"].map(labels)).groupby(
                    ["run", "part"], as_index=False)[["n_maps", "n_covered", "n_no_face", "n_no_data",
                                                      "n_zero_sum", "n_negative"]].sum()
                st.dataframe(shown, hide_index=True, width="stretch")

with tab_sites:
    if not runs_with_maps:
        st.info(no_data_note)
    else:
        c = st.columns([1.6, 1.2, 1.2, 2.2, 1.6])
        queries.keep_valid("mass_run", runs_with_maps)
        run = c[0].selectbox("Run", runs_with_maps, key="mass_run", format_func=lambda r: labels[r])
        f = facets[facets["run_id"] == run]
        stage = stage_choice(c[1], "mass_stage", [s for s in ("pre", "post") if s in set(f["stage"])])
        branch = branch_choice(c[2], "mass_branch", sorted(f["branch"].unique()))
        tokens = tokens_choice(c[3], "mass_tokens", face_tokens)
        value = c[4].radio("Face region", ["mass_in_box", "mass_in_ellipse"], key="mass_value",
                           format_func=lambda v: "box" if v.endswith("box") else "landmark ellipse")
        params = dict(run_id=run, stage=stage, branch=branch, tokens=tokens or None)
        mass = queries.query("face_mass", **params)
        if mass.empty:
            st.info("No map of this run lies on a detected generated face (no face detected, or no "
                    "maps with data for this selection).")
        else:
            what = fm.token_group_label(tokens or all_tokens)
            fig = attention_charts.face_mass_heatmap(
                mass, value=value, title=f"Attention mass on the face · {labels[run]} · {what} · {stage}")
            export.show(fig, key="attn_mass", page=PAGE,
                        provenance=queries.provenance("face_mass", **params), theme=None)
            covered = mass["n_covered"].sum()
            mean = (mass[value] * mass["n_covered"]).sum() / covered if covered else float("nan")
            st.metric("Mean share on the face", f"{mean:.3f}")
            st.caption("Each cell: the mean over the maps of that site and step on detected faces. "
                       + fm.count_line(mass))

with tab_hist:
    c = st.columns([1, 1, 1, 1.2, 1, 0.8])
    part = choice(c[0], "Part", [p for p in ("down", "mid", "up") if p in set(facets["part"])], "hist_part")
    blocks = sorted(facets.loc[facets["part"] == part, "block"].dropna().astype(int).unique()) if part else []
    block = choice(c[1], "Block", blocks, "hist_block")
    step = choice(c[2], "Step", sorted(int(s) for s in facets["step"].unique()), "hist_step")
    token = choice(c[3], "ID token", all_tokens, "hist_token", fmt=token_label)
    branch = choice(c[4], "Branch", sorted(facets["branch"].unique()), "hist_branch")
    log_y = c[5].toggle("Log y", value=True, key="hist_log")
    runs_hist = [r for r in order if r in set(facets["run_id"])]
    if "hist_runs" in st.session_state:
        st.session_state["hist_runs"] = [r for r in st.session_state["hist_runs"] if r in runs_hist]
    shown_runs = st.multiselect("Runs shown (one panel each)", runs_hist, default=None if "hist_runs" in st.session_state else runs_hist,
                                key="hist_runs",
                                format_func=lambda r: labels[r])
    params = dict(run_ids=shown_runs, part=part, block=None if block is None else int(block),
                  step=None if step is None else int(step), token=None if token is None else int(token),
                  branch=branch)
    hist = queries.query("hist_sum", **params) if shown_runs else None
    if hist is None or hist.empty or hist["count"].sum() == 0:
        st.info("No stored histograms match: the probes store `hist` with every map summary; "
                "pick fewer filters or more runs.")
    else:
        n_maps = hist.groupby(["run_id", "stage"])["n_maps"].first()
        where = " · ".join(x for x in [part or "all parts", None if block is None else f"block {block}",
                                       "all steps" if step is None else f"step {step}",
                                       "all tokens" if token is None else token_label(token),
                                       branch or "all branches"] if x)
        fig = attention_charts.hist_facets(hist, legend_meta, labels, [r for r in order if r in shown_runs],
                                           log_y=log_y, title=f"Attention values pre vs post ({where})")
        export.show(fig, key="attn_hist", page=PAGE, provenance=queries.provenance("hist_sum", **params),
                    theme=None)
        st.caption("Each curve: the values of every map summed (no map left out: a map with negative values "
                   "puts them in the leftmost bin, < 0). Maps per run and stage: " + ", ".join(
                       f"{labels[r]} {s}: {n:,}" for (r, s), n in n_maps.items()))

with tab_steps:
    c = st.columns([1, 2, 1])
    branch = choice(c[0], "Branch", sorted(facets["branch"].unique()), "steps_branch")
    tokens = tokens_choice(c[1], "steps_tokens", face_tokens)
    stages = [s for s in ("pre", "post") if s in set(facets["stage"])]
    stage = c[2].radio("Stage", stages + ["both"] if len(stages) > 1 else stages, index=len(stages) - 1,
                       key="steps_stage", horizontal=True)
    params = dict(run_ids=run_ids, branch=branch, tokens=tokens or None)
    stats = queries.query("step_stats", **params)
    if stage != "both":
        stats = stats[stats["stage"] == stage]
    if stats.empty:
        st.info("No map summaries for this selection.")
    else:
        fig = attention_charts.step_lines(stats, legend_meta, y="entropy", y_title="entropy (nats)",
                                          title="Attention entropy per step")
        export.show(fig, key="attn_entropy", page=PAGE,
                    provenance=queries.provenance("step_stats", **params), theme=None)
        n = {k: int(stats[k].sum()) for k in ("n_maps", "n_entropy", "n_zero_sum", "n_negative", "n_entropy_excluded")}
        other = n["n_entropy_excluded"] - n["n_zero_sum"]
        st.caption(
            f"Each point: the mean over the maps of that run, stage, part and step. Entropy covers "
            f"{n['n_entropy']:,} of {n['n_maps']:,} maps; {n['n_entropy_excluded']:,} excluded"
            + (f": {n['n_zero_sum']:,} with no value > 0" if n["n_zero_sum"] else "")
            + (f", {other:,} with negative values stored without values by older code (not recomputable)"
               if other else "") + "."
            + (f" Maps with negative values: {n['n_negative']:,}, counted on their positive part max(v, 0)."
               if n["n_negative"] else ""))
        fig = attention_charts.step_lines(stats, legend_meta, y="peak_ratio", y_title="peak / mean",
                                          title="Attention peak (max / mean) per step")
        export.show(fig, key="attn_peak", page=PAGE,
                    provenance=queries.provenance("step_stats", **params), theme=None)
        zero_mean = int(stats["n_maps"].sum() - stats["n_peak_ratio"].sum())
        st.caption(f"Each point: the mean over the maps of that run, stage, part and step. Covers "
                   f"{int(stats['n_peak_ratio'].sum()):,} of {n['n_maps']:,} maps; {zero_mean:,} excluded"
                   + (": mean 0, no peak ratio." if zero_mean else "."))

with tab_balance:
    render_balance(order, meta, queries.run_labels(order, all_runs))
