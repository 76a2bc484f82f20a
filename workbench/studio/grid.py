"""Grid mode: one or two parameter paths and their values over a base preset (or a grid stored in
the store, e.g. captured with ``fastface capture --vary``); the missing cells are generated and
kept as runs (progress; Cancel stops after the image in flight), then the grid is drawn from the
store as the paper draws its ablations: rows x columns of images of one (identity, prompt, seed),
each labelled with its values, ID similarity and face size, optionally with an attention overlay;
and each metric along an axis over all the grid's samples (mean with the Student-t interval)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import streamlit as st

from fastface.method.config import ConfigError, load_preset, preset_names
from fastface.studio import grid as G
from fastface.studio.maps import part_of
from workbench.charts import studio as studio_charts
from workbench.charts.maps import decode_row, png_size
from workbench.data import export, queries
from workbench.studio.results import token_select, token_text

NEW, STORED = "New grid", "A stored grid"
STATE_GRID = "studio_grid_id"
STATE_AXES = "studio_grid_axes"  # the new grid's paths in the order given (rows first)
METRIC_LABELS = {"id_sim": "ID similarity", "face_size": "face size", "clip_t": "CLIP-T", "aesthetic": "aesthetics"}


def _axes_inputs() -> list[G.Axis] | None:
    c1, c2 = st.columns(2)
    rows_path = c1.text_input("Rows: parameter path", value="am.am1.scale_up", key="studio_g_path0",
                              help="e.g. am.am1.scale_up, guidance.beta[3], am.am2.steepness[0], ip_scale")
    rows_vals = c1.text_input("Rows: values (comma-separated)", value="1.0,1.45,2.0", key="studio_g_vals0")
    cols_path = c2.text_input("Columns: parameter path (optional)", value="am.am1.power", key="studio_g_path1")
    cols_vals = c2.text_input("Columns: values", value="1.0,1.3,1.6", key="studio_g_vals1")
    axes = []
    try:
        axes.append(G.Axis.parse(rows_path, rows_vals))
        if cols_path.strip():
            axes.append(G.Axis.parse(cols_path, cols_vals))
    except ConfigError as e:
        st.error(str(e))
        return None
    return axes


def _generate(engine, subject, path: str, preset: str, cells, gid: str) -> None:
    from fastface.studio.keep import keep

    bar = st.progress(0.0, text=f"Generating {len(cells)} cells …")
    wait = st.empty()
    cancel = st.empty()
    cancel.button("Cancel", key="studio_g_cancel", icon=":material/stop:",
                  help="Stops after the image in flight; the cells done so far stay in the store.")
    try:
        plans, counts = keep(engine, path, subject, preset, [(c.config, c.coords) for c in cells], grid=gid,
                             progress=lambda done, total: bar.progress(done / max(total, 1),
                                                                       text=f"Generated {done} of {total} cells …"),
                             on_wait=lambda: wait.info("Waiting: another generation is running on this model."))
        queries.refresh()
        st.success(f"Grid {gid}: {counts['written']} cells generated, {counts['skipped']} already in the store.")
    except Exception as e:  # noqa: BLE001 shown, never a traceback
        st.error(f"Grid generation failed: {' '.join(str(e).split())[:600]}")
    finally:
        bar.empty()
        wait.empty()
        cancel.empty()


def grid_tab(engine, subject, path: str) -> None:
    source = st.radio("Grid", [NEW, STORED], horizontal=True, key="studio_g_source")
    if source == NEW:
        names = preset_names()
        preset = st.selectbox("Base preset", names, index=names.index("ff-am1") if "ff-am1" in names else 0,
                              key="studio_g_preset")
        axes = _axes_inputs()
        if axes is None:
            return
        try:
            cells = G.plan(load_preset(preset), axes, engine.num_steps)
        except ConfigError as e:
            st.error(str(e))
            return
        from fastface.studio.keep import grid_id

        gid = grid_id(preset, [(a.path, list(a.values)) for a in axes])
        st.caption(f"{len(cells)} cells over {preset} · grid id `{gid}` (the id `fastface capture --vary` gives "
                   "the same paths and values)")
        if st.button("Generate missing cells", type="primary", key="studio_g_generate", icon=":material/grid_on:",
                     disabled=subject is None):
            _generate(engine, subject, path, preset, cells, gid)
        st.session_state[STATE_GRID] = gid
        st.session_state[STATE_AXES] = [a.name for a in axes]
    else:
        try:
            grids = queries.query("studio_grids", freshness="live")
        except Exception:  # noqa: BLE001 a store written before grids existed
            grids = pd.DataFrame()
        if grids.empty:
            st.info("No parameter grids in this store yet: make one here (New grid) or with "
                    "`fastface capture --vary PATH=v1,v2 ...`.")
            return
        gids = list(grids["grid"])
        queries.keep_valid("studio_g_pick", gids)
        gid = st.selectbox("Stored grid", gids, key="studio_g_pick", format_func=lambda g: (lambda r: (
            f"{g} · {r.base} · {', '.join(r.paths) if r.paths is not None and len(r.paths) else '(base)'} · "
            f"{r.n_runs} runs"))(grids[grids["grid"] == g].iloc[0]))
        st.session_state[STATE_GRID] = gid
        st.session_state[STATE_AXES] = []
    show_grid(st.session_state.get(STATE_GRID), subject)


def _as_dict(m) -> dict:
    """A DuckDB MAP value as a dict (pandas gets a dict, or {'key': [...], 'value': [...]})."""
    if m is None or (isinstance(m, float) and np.isnan(m)):
        return {}
    if isinstance(m, dict):
        return dict(zip(m["key"], m["value"])) if set(m) == {"key", "value"} else dict(m)
    return dict(m)


def _coords(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The coords MAP column as one text column per path."""
    as_dict = df["coords"].map(_as_dict)
    paths = sorted({k for d in as_dict for k in d})
    out = df.copy()
    for p in paths:
        out[p] = as_dict.map(lambda d, p=p: d.get(p))
    return out, paths


def _order(values) -> list:
    vals = [v for v in pd.unique(values) if v is not None]
    try:
        return sorted(vals, key=float)
    except (TypeError, ValueError):
        return sorted(vals, key=str)


def show_grid(gid: str | None, subject) -> None:
    if not gid:
        return
    df = queries.query("studio_grid_samples", freshness="live", grid=gid)
    if df.empty:
        st.info(f"Grid {gid} has no samples in the store yet: generate its cells.")
        return
    df, paths = _coords(df)
    given = [p for p in st.session_state.get(STATE_AXES, []) if p in paths]
    paths = given + [p for p in paths if p not in given]
    for m in ("clip_t", "aesthetic"):
        df[m] = df["metrics"].map(lambda d, m=m: _as_dict(d).get(m))
    units = list(dict.fromkeys(zip(df["identity"], df["prompt"], df["seed"])))
    mine = (subject.identity, subject.prompt, subject.seed) if subject is not None else None
    queries.keep_valid("studio_g_unit", units)
    unit = st.selectbox("Sample shown (identity, prompt, seed)", units, key="studio_g_unit",
                        index=units.index(mine) if mine in units else 0,
                        format_func=lambda u: f"{u[0]} · {u[1]} · seed {u[2]}")
    one = df[(df["identity"] == unit[0]) & (df["prompt"] == unit[1]) & (df["seed"] == unit[2])]
    row_path = paths[0] if paths else None
    col_path = paths[1] if len(paths) > 1 else None
    if len(paths) == 2 and st.toggle("Swap rows and columns", key="studio_g_swap"):
        row_path, col_path = col_path, row_path
    row_vals = _order(one[row_path]) if row_path else [None]
    col_vals = _order(one[col_path]) if col_path else [None]
    c1, c2, c3, c4, c5 = st.columns([1, 1, 1.2, 1.2, 1])
    overlay = c1.toggle("Attention overlay", key="studio_g_overlay")
    amaps: dict = {}
    where = ""
    if overlay:
        catalog = queries.query("map_catalog", run_ids=sorted(set(one["run_id"])))
        if catalog.empty:
            st.info("No attention maps were captured for this grid's runs.")
        else:
            parts = [p for p in ("down", "mid", "up") if p in set(catalog["part"])]
            part = c2.selectbox("Part", parts, index=len(parts) - 1, key="studio_g_part")
            steps = sorted(int(v) for v in set(catalog["step"]))
            step = (c3.select_slider("Step", steps, value=steps[-1], key="studio_g_step_of") if len(steps) > 1
                    else steps[0])
            tokens = token_select(c4, sorted(int(v) for v in set(catalog["token"]) if v is not None and v >= 0),
                                  key="studio_g_tokset")
            stages = [v for v in ("pre", "post") if v in set(catalog["stage"])]
            stage = c5.radio("Stage", stages, index=len(stages) - 1, key="studio_g_stage", horizontal=True)
            amaps = _overlay_maps(one, catalog, part, step, list(tokens), stage)
            where = f" · attention: {part} (mean of its sites), step {step}, ID tokens {token_text(tokens)}, {stage}"
    cells = []
    for _, r in one.iterrows():
        i = row_vals.index(r[row_path]) if row_path else 0
        j = col_vals.index(r[col_path]) if col_path else 0
        face = [f"ID {r['similarity']:.3f}" if pd.notna(r["similarity"]) else "no face",
                f"size {r['area_ratio']:.2f}" if pd.notna(r["area_ratio"]) else None]
        more = [f"CLIP {r['clip_t']:.3f}" if pd.notna(r.get("clip_t")) else None,
                f"aes {r['aesthetic']:.2f}" if pd.notna(r.get("aesthetic")) else None]
        label = "<br>".join(" · ".join(m for m in line if m) for line in (face, more) if any(line))
        png = bytes(r["image_png"]) if r["image_png"] is not None else None
        box = (r["x0"], r["y0"], r["x1"], r["y1"]) if r["detected"] is True else None
        cells.append({"row": i, "col": j, "png": png, "size": png_size(png) if png else None, "box": box,
                      "label": label, "amap": amaps.get(r["run_id"])})
    title = f"{unit[0]} · seed {unit[2]}"
    cell_px = int(max(120, min(256, (820 - 12 * (len(col_vals) - 1)) / max(len(col_vals), 1))))
    fig = studio_charts.image_grid(cells, [str(v) for v in row_vals], [str(v) for v in col_vals],
                                   row_title=row_path or "", col_title=col_path or "", title=title,
                                   cell_px=cell_px)
    prov = queries.provenance("studio_grid_samples", grid=gid)
    prov["run_ids"] = sorted(set(one["run_id"]))
    prov["configs"] = _configs(prov["run_ids"])
    st.caption(f"Grid {gid}: {len(one)} cells of this sample{where}. Export it from the Figures page "
               "(PNG, SVG, PDF with the query and the configs).")
    export.show(fig, key="studio_grid_figure", page="Studio", provenance=prov, theme=None, width="content")
    _metric_lines(df, row_path, col_path, gid)


def _configs(run_ids: list[str]) -> dict:
    runs = queries.runs()
    sub = runs[runs["run_id"].isin(run_ids)]
    return {r.run_id: json.loads(r.config_json) for r in sub.itertuples(index=False) if r.config_json}


def _overlay_maps(one: pd.DataFrame, catalog: pd.DataFrame, part: str, step: int, tokens: list[int],
                  stage: str) -> dict:
    run_ids = sorted(set(one["run_id"]))
    sites = sorted({s for s in catalog["site"] if part_of(s) == part}) if not catalog.empty else []
    if not sites:
        st.info(f"No {part} maps were captured for this grid.")
        return {}
    out = {}
    for key in set(one["sample_key"]):
        rows = queries.query("studio_grid_maps", freshness="static", run_ids=run_ids, sample_key=key, sites=sites,
                             step=step, tokens=[int(t) for t in tokens], stage=stage)
        for run_id, g in rows.groupby("run_id"):
            per_site = []
            for _, s in g.groupby("site"):
                if len(s) == len(tokens):
                    per_site.append(np.sum([decode_row(r).astype(float) for _, r in s.iterrows()], axis=0))
            if per_site:
                shape = max((m.shape for m in per_site), key=lambda sh: sh[0] * sh[1])
                from fastface.studio.maps import upsample

                out[run_id] = np.mean([upsample(m, shape) for m in per_site], axis=0)
    return out


def _metric_lines(df: pd.DataFrame, row_path: str | None, col_path: str | None, gid: str) -> None:
    if not row_path:
        return
    values = df.rename(columns={"similarity": "id_sim", "area_ratio": "face_size"})
    metrics = [m for m in ("id_sim", "face_size", "clip_t", "aesthetic") if values[m].notna().any()]
    n_units = len(set(zip(df["identity"], df["prompt"], df["seed"])))
    st.caption(f"Metrics along the rows' path over {'all' if n_units != 1 else 'the'} {n_units} "
               f"sample{'s' if n_units != 1 else ''} of the grid "
               "(mean; with two or more samples, the 95 % Student-t interval"
               + ("; one sample: its values, no interval" if n_units == 1 else "")
               + "). Samples without a value (no face detected) are left out and counted in the hover.")
    cols = st.columns(max(len(metrics), 1))
    for col, m in zip(cols, metrics):
        summary = G.along_axis(values, row_path, m, by=col_path)
        order = {v: i for i, v in enumerate(_order(values[row_path]))}
        summary = summary.sort_values(row_path, key=lambda s: s.map(order))
        fig = studio_charts.metric_along_axis(summary, row_path, METRIC_LABELS.get(m, m), by=col_path,
                                              title=f"{METRIC_LABELS.get(m, m)} along {row_path}")
        with col:
            export.show(fig, key=f"studio_grid_line_{m}", page="Studio",
                        provenance=queries.provenance("studio_grid_samples", grid=gid), theme=None)
