"""Figures: export any chart of this session as PNG, SVG and PDF in the publication template,
with a JSON sidecar (query text, parameters and run ids that made it)."""

import os
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from workbench.charts import attention as attention_charts
from workbench.charts import faces as faces_charts
from workbench.data import export, queries

st.title("Figures")
path, _ = queries.require_store()


def build_standard() -> int:
    """Register the standard figures of the chosen runs (histograms, faces)."""
    all_runs = queries.runs()
    if all_runs.empty:
        return 0
    run_ids = queries.selected_runs(all_runs)
    meta = queries.run_meta(all_runs)
    n = 0
    params = dict(run_ids=run_ids, part=None, block=None, step=None, token=None, branch=None)
    hist = queries.query("hist_sum", **params)
    if not hist.empty:
        export.register("std_hist", attention_charts.hist_overlay(hist, meta), queries.provenance("hist_sum", **params),
                        "Figures")
        n += 1
    faces = queries.query("faces_generated", run_ids=run_ids)
    if not faces.empty:
        prov = queries.provenance("faces_generated", run_ids=run_ids)
        export.register("std_face_size", faces_charts.distribution(faces, meta, "area_ratio"), prov, "Figures")
        export.register("std_face_sim", faces_charts.distribution(faces, meta, "similarity"), prov, "Figures")
        n += 2
    counts = queries.query("face_counts", run_ids=run_ids)
    if not counts.empty:
        export.register("std_ffc", faces_charts.ffc_bars(counts, meta),
                        queries.provenance("face_counts", run_ids=run_ids), "Figures")
        n += 1
    return n


if st.button("Add the standard figures of the chosen runs", key="fig_standard", icon=":material/add_chart:"):
    st.session_state["fig_standard_n"] = build_standard()
registry = st.session_state.get(queries.STATE_FIGURES, {})
if not registry:
    st.info("No charts yet: open a page (Attention statistics, Faces, Compare, ...) and its charts "
            "appear here, or add the standard figures above.")
    st.stop()

keys = list(registry)
queries.keep_valid("fig_pick", keys)
key = st.selectbox("Chart", keys, key="fig_pick",
                   format_func=lambda k: f"{registry[k]['page'] or '?'} · {registry[k]['title']}")
entry = registry[key]
fig = go.Figure(entry["figure"])
pub = export.publication_figure(fig)
st.plotly_chart(pub, key="fig_preview", theme=None, width="content")

browser = export.browser_path()
c1, c2, c3 = st.columns([2, 2, 2])
default_dir = os.environ.get("FASTFACE_FIGURES") or str(Path(path).parent / "figures")  # next to, not in, the store
out_dir = c1.text_input("Folder", value=default_dir, key="fig_dir")
name = c2.text_input("File name", value=export.safe_name(entry["title"]), key=f"fig_name_{key}")
formats = c3.multiselect("Formats", list(export.FORMATS), default=list(export.FORMATS), key="fig_formats")
if browser is None:
    st.warning("Static export needs Chromium, which was not found: install it with "
               "`apt-get install -y chromium` (or set BROWSER_PATH) and restart the workbench.")
if st.button("Export", type="primary", key="fig_export", disabled=not formats, icon=":material/download:"):
    try:
        with st.spinner("Rendering with kaleido..."):
            paths = export.export_figure(fig, out_dir, name, entry["provenance"], formats)
        st.session_state["fig_last_export"] = {k: str(v) for k, v in paths.items()}
    except export.ExportUnavailable as e:
        st.error(str(e))
    except OSError as e:
        st.error(f"Cannot write to {out_dir}: {e}")

last = st.session_state.get("fig_last_export")
if last:
    st.success("Written: " + ", ".join(f"`{p}`" for p in last.values()))
    cols = st.columns(len(last))
    mimes = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "json": "application/json"}
    for col, (fmt, p) in zip(cols, last.items()):
        if os.path.isfile(p):
            col.download_button(fmt.upper(), Path(p).read_bytes(), file_name=os.path.basename(p),
                                mime=mimes.get(fmt), key=f"fig_dl_{fmt}")
with st.expander("Provenance (written to the sidecar)"):
    st.json(entry["provenance"])
