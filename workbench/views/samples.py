"""Samples: image grid with filters; one (identity, prompt, seed) across runs with the
attention overlay, the generated face box and the reference photo.

The variants open on a readable default: the chosen runs at one IP scale (the baseline and its
variants), PER_ROW panels per row, each labelled by what differs between the shown runs
(workbench.data.labels); the overlay of ID tokens 1-3 (summed: the tokens that attend to the
face) averaged over a UNet part; one colour scale shared by the panels (or one per panel)."""

import os

import streamlit as st

from workbench.charts import attention as attention_charts
from workbench.charts.maps import (chosen_word, default_part, overlay_maps, overlay_panel, png_size, prompt_words,
                                   shared_zmax, token_choices, token_label, word_choice)
from workbench.data import export, queries

st.title("Samples")
path, all_runs, run_ids, meta = queries.chosen_runs_or_stop()
index = queries.query("sample_index", run_ids=run_ids)
if index.empty:
    st.info("The chosen runs have no samples yet: wait for the sweep or run `fastface capture ...`.")
    st.stop()

ALL = "(all)"

focus = st.session_state.pop(queries.STATE_FOCUS, None)
if focus:  # opened from another page: show that unit
    st.session_state["smp_identity"] = focus["identity"]
    st.session_state["smp_prompt"] = ALL
    st.session_state["smp_category"] = ALL
    st.session_state["smp_unit"] = (focus["identity"], focus["prompt"], int(focus["seed"]))

c1, c2, c3 = st.columns([1, 2, 1])
queries.keep_valid("smp_identity", [ALL] + list(index["identity"].unique()))
queries.keep_valid("smp_prompt", [ALL] + list(index["prompt"].unique()))
queries.keep_valid("smp_category", [ALL] + list(index["category"].unique()))
identity = c1.selectbox("Identity", [ALL] + sorted(index["identity"].unique()), key="smp_identity")
prompt = c2.selectbox("Prompt", [ALL] + sorted(index["prompt"].unique()), key="smp_prompt")
category = c3.selectbox("Category", [ALL] + sorted(index["category"].unique()), key="smp_category")
sel = lambda v: None if v == ALL else v  # noqa: E731

tab_grid, tab_variants = st.tabs(["Grid", "Variants and attention"])

with tab_grid:
    per_page = 24
    grid = queries.query("sample_grid", freshness="static", run_ids=run_ids, identity=sel(identity),
                         prompt=sel(prompt), category=sel(category), limit=per_page, offset=0)
    if grid.empty:
        st.info("No sample matches these filters.")
    else:
        st.caption(f"{len(grid)} samples shown (first {per_page} matching, ordered by identity, prompt, seed, run).")
        grid_labels = queries.run_labels(list(dict.fromkeys(grid["run_id"])), all_runs).labels
        cols = st.columns(6)
        for i, r in enumerate(grid.itertuples(index=False)):
            with cols[i % 6]:
                label = f"{grid_labels.get(r.run_id, r.run_id)} · {r.identity} · seed {r.seed}"
                if r.status == "ok" and r.image_png is not None:
                    st.image(bytes(r.image_png), caption=label, width="stretch")
                else:
                    st.warning(f"{label}: failed ({r.error})")

PER_ROW = (3, 4, 5, 6)     # panels per row offered (the reference photo takes the first slot)
PANEL_HEIGHT = {3: 370, 4: 290, 5: 240, 6: 210}  # px: a square image at 1400 px plus its colour bar
SCALE_SHARED, SCALE_PANEL = "one scale for all panels (shared max)", "one scale per panel (its own max)"


def default_shown(variants, all_runs) -> list[str]:
    """The runs the variants open on: those at one IP scale (the most common among the runs
    that have this sample, the larger on a tie), the baseline first -- a sweep's baseline and
    its variants side by side; every run when all share one scale."""
    sub = all_runs[all_runs["run_id"].isin(variants["run_id"])]
    ids = list(variants["run_id"])
    if sub["ip_scale"].nunique(dropna=False) <= 1:
        return ids
    counts = sub["ip_scale"].fillna(-1.0).value_counts()
    best = max(counts.index, key=lambda v: (counts[v], v))
    keep = set(sub.loc[sub["ip_scale"].fillna(-1.0) == best, "run_id"])
    return [r for r in ids if r in keep]


with tab_variants:
    units = index.copy()
    for col, v in (("identity", identity), ("prompt", prompt), ("category", category)):
        if v != ALL:
            units = units[units[col] == v]
    if units.empty:
        st.info("No sample matches these filters.")
        st.stop()
    unit_list = [(u.identity, u.prompt, int(u.seed)) for u in units.itertuples(index=False)]
    if st.session_state.get("smp_unit") not in unit_list:
        st.session_state["smp_unit"] = unit_list[0]
    unit = st.selectbox("Sample (identity, prompt, seed)", unit_list, key="smp_unit",
                        format_func=lambda u: f"{u[0]} · {u[1]} · seed {u[2]}")
    variants = queries.query("variants", freshness="static", run_ids=run_ids, identity=unit[0],
                             prompt=unit[1], seed=unit[2])
    order = {r: i for i, r in enumerate(run_ids)}  # the chosen order: baselines first
    variants = variants.assign(_o=variants["run_id"].map(order)).sort_values("_o").drop(columns="_o")
    every = list(variants["run_id"])
    all_labels = queries.run_labels(every, all_runs).labels
    kept = st.session_state.get("smp_runs")
    if st.session_state.get("smp_runs_for") != unit or not kept or any(r not in every for r in kept):
        st.session_state["smp_runs"] = default_shown(variants, all_runs)
        st.session_state["smp_runs_for"] = unit
    r1, r2 = st.columns([4, 1])
    shown_ids = r1.multiselect("Runs shown", every, key="smp_runs", format_func=lambda r: all_labels.get(r, r),
                               help="Opens on the runs at one IP scale; add or remove runs here (the panels wrap).")
    per_row = r2.selectbox("Panels per row", PER_ROW, index=1, key="smp_per_row")
    variants = variants[variants["run_id"].isin(shown_ids)]
    shown = queries.run_labels(list(variants["run_id"]), all_runs)
    catalog = queries.query("map_catalog", run_ids=sorted(set(variants["run_id"])))
    words = queries.query("map_words", run_ids=sorted(set(variants["run_id"])))

    amaps, caption, threshold, opacity, zmax = {}, "", 0.0, 0.5, None
    if catalog.empty:
        st.info("No attention maps were captured for this sample: run `fastface capture ...` with a "
                "capture spec to see attention overlays.")
    else:
        with st.container(border=True):
            k1, k2, k3, k4 = st.columns(4)
            scope = k1.radio("Overlay of", ["mean over a part / block", "one site"], key="ov_scope")
            if scope == "one site":
                sites = sorted(catalog["site"].unique(), key=lambda s: attention_charts.short_site(s))
                queries.keep_valid("ov_site", sites)
                site = k1.selectbox("Site", sites, key="ov_site", format_func=attention_charts.short_site)
                chosen_sites, where = [site], attention_charts.short_site(site)
            else:
                parts = [p for p in ("down", "mid", "up") if p in set(catalog["part"])]
                queries.keep_valid("ov_part", parts)
                part = k1.selectbox("Part", parts, index=parts.index(default_part(parts)), key="ov_part")
                blocks = sorted(catalog.loc[catalog["part"] == part, "block"].dropna().astype(int).unique())
                queries.keep_valid("ov_block", ["all"] + blocks)
                block = k1.selectbox("Block", ["all"] + blocks, key="ov_block")
                sub = catalog[catalog["part"] == part]
                if block != "all":
                    sub = sub[sub["block"] == block]
                chosen_sites = sorted(sub["site"].unique())
                where = f"mean of {len(chosen_sites)} {part} sites" + ("" if block == "all" else f" (block {block})")
            sub = catalog[catalog["site"].isin(chosen_sites)]
            steps = sorted(int(s) for s in sub["step"].unique())
            queries.keep_valid("ov_step", steps)
            step = (k2.select_slider("Step", steps, key="ov_step") if len(steps) > 1
                    else k2.selectbox("Step", steps, key="ov_step_one"))
            branches = sorted(sub["branch"].unique())
            default_branch = "text_id" if "text_id" in branches else branches[0]
            queries.keep_valid("ov_branch", branches)
            branch = k2.selectbox("Branch", branches, index=branches.index(default_branch), key="ov_branch")
            word_rows = words[words["site"].isin(chosen_sites) & (words["step"] == step)
                              & (words["branch"] == branch)]
            tokens = token_choices(sub["token"].unique()) + [word_choice(w) for w in prompt_words(word_rows["word"],
                                                                                                  unit[1])]
            queries.keep_valid("ov_token", tokens)
            token = k3.selectbox("ID token or prompt word", tokens, key="ov_token", format_func=token_label,
                                 help="Default: ID tokens 1-3 summed, the tokens that attend to the face "
                                      "(token 0 attends to the background). Prompt words (runs captured with "
                                      "--words): the text attention of the same block, stage pre.")
            word = chosen_word(token)
            if word is None:
                stages = [s for s in ("pre", "post") if s in set(sub["stage"])]
                stage = k3.radio("Stage", ["pre", "post"], index=1 if "post" in stages else 0,
                                 key="ov_stage", horizontal=True)
            else:  # the text attention has no AM: word maps are stored pre only
                stages, stage = ["pre"], "pre"
                k3.caption("Stage: pre (word maps are the text attention before any AM).")
            opacity = k4.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="ov_opacity")
            threshold = k4.slider("Threshold (fraction of max)", 0.0, 1.0, 0.0, 0.05, key="ov_threshold")
            scale_mode = k4.radio("Colour scale", [SCALE_SHARED, SCALE_PANEL], key="ov_scale")
        if stage not in stages:
            st.info(f"These runs captured no {stage} maps for this selection: capture with stage={stage}.")
        else:
            rows = queries.query("maps_on_screen", freshness="static", run_ids=list(variants["run_id"]),
                                 sample_keys=sorted(set(variants["sample_key"])), sites=chosen_sites,
                                 step=int(step), branch=branch, word=word,
                                 tokens=[-1] if word is not None else [int(t) for t in token], stage=stage)
            amaps = overlay_maps(rows)
            if not amaps and word is not None:
                st.info(f'No map of the word "{word}" for this selection (or only its summaries were stored).')
            elif not amaps:
                st.info("Only summaries were stored for these maps (encoding 'none'): capture with "
                        "keep_maps=True to see the overlay.")
            zmax = shared_zmax(amaps) if scale_mode == SCALE_SHARED else None
            scale_text = (f"colour 0 to {zmax:.3g} in every panel (the largest value shown)" if zmax is not None
                          else "colour 0 to each panel's own maximum: compare the colour bars, not the colours")
            caption = f"{where} · step {step} · {branch} · {token_label(token)} · {stage} · {scale_text}"

    st.caption(caption)
    if shown.common:
        st.caption(f"All panels: {shown.common}.")
    slots = ["reference"] + list(variants.itertuples(index=False))
    for start in range(0, len(slots), per_row):
        cols = st.columns(per_row)
        for col, v in zip(cols, slots[start:start + per_row]):
            with col:
                if isinstance(v, str):
                    st.markdown("**Reference photo**")
                    ref = variants["id_image_path"].dropna()
                    ref_path = ref.iloc[0] if len(ref) else None
                    if ref_path and os.path.isfile(ref_path) and os.access(ref_path, os.R_OK):
                        st.image(ref_path, caption=os.path.basename(ref_path), width="stretch")
                    else:
                        st.caption(f"Reference image not readable here ({ref_path or 'no path stored'}).")
                    continue
                st.markdown(f"**{shown.labels.get(v.run_id, v.run_id)}**")
                if v.status != "ok" or v.image_png is None:
                    st.warning(f"Failed: {v.error}")
                    continue
                size = png_size(bytes(v.image_png)) or (int(v.width), int(v.height))
                box = (v.x0, v.y0, v.x1, v.y1) if v.detected is True else None
                fig = overlay_panel(bytes(v.image_png), amaps.get(v.run_id), size=size, box=box, opacity=opacity,
                                    threshold=threshold, zmax=zmax, height=PANEL_HEIGHT[per_row])
                export.show(fig, key=f"overlay_{v.run_id}", page="Samples",
                            provenance=queries.provenance("variants", run_ids=run_ids, identity=unit[0],
                                                           prompt=unit[1], seed=unit[2]), theme=None)
                if v.detected is True:
                    st.caption(f"face: similarity {v.similarity:.3f}, size {v.area_ratio:.3f}")
                elif v.detected is False:
                    st.caption("No face detected in the generated image (counts toward FFC).")
                else:
                    st.caption("Face detection not run for this sample.")
