"""Figures: the standard figures of the chosen runs (each made here from its own query, so a
fresh session shows them all) and any chart shown on another page in this session, laid out for
a paper (single or double column) and exported as PNG, SVG and PDF with a JSON sidecar (query
text, parameters and run ids that made it)."""

import os
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from workbench.charts import style
from workbench.data import export, queries, standard_figures

MIMES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "json": "application/json"}

st.title("Figures")
path, all_runs, run_ids, meta = queries.chosen_runs_or_stop()
shown = queries.run_labels(run_ids, all_runs)  # runs labelled by what differs (as on the other pages)
meta = {r: dict(m, short=shown.labels[r]) if r in shown.labels else m for r, m in meta.items()}

# ------------------------------------------------------------------ export settings
c1, c2, c3, c4 = st.columns([2, 2, 1, 3])
column = c1.radio("Width", list(style.COLUMN_MM), key="fig_column", horizontal=True,
                  format_func=lambda c: f"{c} column ({style.COLUMN_MM[c]:g} mm)",
                  help="Single column ~3.5 in (89 mm), double column ~7.2 in (183 mm); fonts are set in "
                       f"points for print ({style.PRINT_FONT_PT} pt text, {style.PRINT_TITLE_PT} pt title).")
legend = c2.radio("Legend", list(style.LEGEND_PLACES), key="fig_legend", horizontal=True,
                  help="below: horizontal rows under the plot; inside: the plot's top right corner.")
dpi = c3.number_input("PNG dpi", min_value=72, max_value=1200, value=style.PRINT_DPI, step=50, key="fig_dpi")
formats = c4.multiselect("Formats", list(export.FORMATS), default=list(export.FORMATS), key="fig_formats")
d1, d2 = st.columns([4, 2])
default_dir = os.environ.get("FASTFACE_FIGURES") or str(Path(path).parent / "figures")  # next to, not in, the store
out_dir = d1.text_input("Folder", value=default_dir, key="fig_dir")
if export.browser_path() is None:
    st.warning("Static export needs Chromium, which was not found: install it with "
               "`apt-get install -y chromium` (or set BROWSER_PATH) and restart the workbench.")
st.caption(f"Preview at the printed size: {style.column_px(column)} px wide = {style.COLUMN_MM[column]:g} mm; "
           f"the PNG is {int(style.column_px(column) * style.png_scale(dpi))} px wide at {dpi:g} dpi.")


def export_one(fig: go.Figure, name: str, provenance: dict) -> dict:
    return export.export_figure(fig, out_dir, name, provenance, formats, column=column, legend=legend, dpi=dpi)


def run_export(items: list[tuple[go.Figure, str, dict]]) -> None:
    written: dict[str, str] = {}
    try:
        with st.spinner("Rendering with kaleido..."):
            for fig, name, prov in items:
                written |= {f"{name}.{k}": str(v) for k, v in export_one(fig, name, prov).items()}
        st.session_state["fig_last_export"] = written
    except export.ExportUnavailable as e:
        st.error(str(e))
    except OSError as e:
        st.error(f"Cannot write to {out_dir}: {e}")


# ------------------------------------------------------------------ standard figures
models = standard_figures.models_of(run_ids)
model = None
if len(models) > 1:
    model = st.selectbox("ID similarity and face size scored by", models, key="fig_model",
                         format_func=standard_figures.short_model,
                         help="fastface evaluate's metrics (model '#protocol=...') come first; the capture's "
                              "own face scorer writes the same metric names under its backend name.")
std = standard_figures.build(run_ids, meta, model, column)
ready = [s for s in std if s.fig is not None]
st.subheader("Standard figures of the chosen runs")
if st.button(f"Export all {len(ready)} standard figures", key="fig_export_all", type="primary",
             disabled=not formats or not ready, icon=":material/download:"):
    run_export([(s.fig, s.key.removeprefix("std_"), s.provenance) for s in ready])
session = st.session_state.get(queries.STATE_FIGURES, {})
tabs = st.tabs([s.title for s in std] + [f"Charts of other pages ({len(session)})"])
for tab, s in zip(tabs, std):
    with tab:
        if s.fig is None:
            st.info(s.note)
            continue
        st.plotly_chart(export.publication_figure(s.fig, column=column, legend=legend), key=f"fig_prev_{s.key}",
                        theme=None, width="content", config={"displaylogo": False})
        n1, n2 = st.columns([3, 1])
        name = n1.text_input("File name", value=s.key.removeprefix("std_"), key=f"fig_name_{s.key}")
        if n2.button("Export", key=f"fig_export_{s.key}", disabled=not formats, icon=":material/download:"):
            run_export([(s.fig, name, s.provenance)])

with tabs[-1]:
    if not session:
        st.info("Charts shown on the other pages (Attention statistics, Faces, Compare, ...) in this session "
                "appear here too, to export them in the same layout.")
    else:
        keys = list(session)
        queries.keep_valid("fig_pick", keys)
        key = st.selectbox("Chart", keys, key="fig_pick",
                           format_func=lambda k: f"{session[k]['page'] or '?'} · {session[k]['title']}")
        entry = session[key]
        fig = go.Figure(entry["figure"])
        st.plotly_chart(export.publication_figure(fig, column=column, legend=legend), key="fig_preview",
                        theme=None, width="content")
        n1, n2 = st.columns([3, 1])
        name = n1.text_input("File name", value=export.safe_name(entry["title"]), key=f"fig_name_{key}")
        if n2.button("Export", key="fig_export", disabled=not formats, icon=":material/download:"):
            run_export([(fig, name, entry["provenance"])])
        with st.expander("Provenance (written to the sidecar)"):
            st.json(entry["provenance"])

last = st.session_state.get("fig_last_export")
if last:
    st.success("Written: " + ", ".join(f"`{p}`" for p in last.values()))
    shown = [(label, p) for label, p in last.items() if os.path.isfile(p)][:12]
    cols = st.columns(min(len(shown), 6) or 1)
    for i, (label, p) in enumerate(shown):
        cols[i % len(cols)].download_button(label, Path(p).read_bytes(), file_name=os.path.basename(p),
                                            mime=MIMES.get(p.rsplit(".", 1)[-1]), key=f"fig_dl_{i}")
