"""FastFace Workbench: navigation only (each page renders itself from workbench/views)."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `streamlit run workbench/app.py` puts only workbench/ on sys.path
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from workbench.data import queries  # noqa: E402

#: the browser tab's icon ships with the app (a ":material/...:" page icon is fetched from a font host)
ICON = str(Path(__file__).resolve().parent / "assets" / "icon.png")
st.set_page_config(page_title="FastFace Workbench", page_icon=ICON, layout="wide")

PAGES = [
    st.Page("views/runs.py", title="Runs", icon=":material/list_alt:", default=True),
    st.Page("views/samples.py", title="Samples", icon=":material/photo_library:"),
    st.Page("views/attention.py", title="Attention statistics", icon=":material/bar_chart:"),
    st.Page("views/faces.py", title="Faces", icon=":material/face:"),
    st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("views/sql.py", title="SQL", icon=":material/database:"),
    st.Page("views/figures.py", title="Figures", icon=":material/image:"),
    st.Page("views/studio.py", title="Studio", icon=":material/tune:"),
]
page = st.navigation(PAGES)

with st.sidebar:
    st.caption("FastFace Workbench")
    path = queries.store_path()
    st.caption(f"Store: `{path}`" if path else "Store: none (use --store or FASTFACE_STORE)")
    st.caption(queries.selection_caption())
    if st.button("Refresh data", icon=":material/refresh:", key="wb_refresh"):
        queries.refresh()

progress = queries.capture_progress()
if progress is not None:  # a capture is writing into the store: say how far it is, on every page
    from workbench.data.progress import progress_line

    @st.fragment(run_every=5)
    def capture_banner():
        now = queries.capture_progress()
        if now is None:
            st.rerun()  # the capture ended: the whole page (without this line) follows
        st.info(progress_line(now), icon=":material/hourglass_top:")

    capture_banner()

page.run()
