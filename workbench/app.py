"""FastFace Workbench: navigation only (each page renders itself from workbench/pages)."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `streamlit run workbench/app.py` puts only workbench/ on sys.path
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from workbench import data  # noqa: E402

st.set_page_config(page_title="FastFace Workbench", page_icon=":material/face:", layout="wide")

PAGES = [
    st.Page("pages/runs.py", title="Runs", icon=":material/list_alt:", default=True),
    st.Page("pages/samples.py", title="Samples", icon=":material/photo_library:"),
    st.Page("pages/attention.py", title="Attention statistics", icon=":material/bar_chart:"),
    st.Page("pages/faces.py", title="Faces", icon=":material/face:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/sql.py", title="SQL", icon=":material/database:"),
    st.Page("pages/figures.py", title="Figures", icon=":material/image:"),
]
page = st.navigation(PAGES)

with st.sidebar:
    st.caption("FastFace Workbench")
    path = data.store_path()
    st.caption(f"Store: `{path}`" if path else "Store: none (use --store or FASTFACE_STORE)")
    chosen = st.session_state.get(data.STATE_RUNS) or []
    st.caption(f"Runs chosen: {len(chosen)}" if chosen else "Runs chosen: the newest (pick on Runs)")
    if st.button("Refresh data", icon=":material/refresh:", key="wb_refresh"):
        data.refresh()

page.run()
