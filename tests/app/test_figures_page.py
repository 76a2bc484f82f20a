"""The Figures page's standard figures in a fresh session (no other page visited), the binned
means of "ID similarity vs face size" against hand values, and the paper layout of an export
(column widths in pixels at a dpi, legend placement, margins) against hand values."""

import json
import re
import shutil

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from tests.app.conftest import APP
from workbench.charts import style
from workbench.data import binning, export

MODEL = "dlib/face_recognition_resnet_model_v1@test#protocol=corrected"
#: the standard figures (workbench/data/standard_figures.build) and what each must draw
STANDARD = {"ID similarity vs generated face size": "scatter", "generated face size per run": "box",
            "ID similarity per run": "box", "Face fail count (FFC) per run": "bar",
            "Attention values pre vs post": "scatter"}


@pytest.fixture(scope="module")
def evaluated_store(fixture_store, tmp_path_factory):
    """A copy of the fixture store with the metrics `fastface evaluate` writes (id_sim,
    face_size, face_detected under one '#protocol=' model) for every sample with a detected
    face: similarity 0.5 + face size / 2 (and face_detected 0, no id_sim, where none was)."""
    import duckdb

    from store.records import MetricRecord
    from store.writer import StoreWriter

    path = tmp_path_factory.mktemp("evaluated") / "store"
    shutil.copytree(fixture_store["path"], path)
    con = duckdb.connect()
    faces = con.execute("select run_id, sample_key, detected, area_ratio from read_parquet($p, union_by_name=true) "
                        "where role = 'generated'", {"p": str(path / "data" / "**" / "faces.parquet")}).fetchall()
    con.close()
    with StoreWriter(path, worker_id="eval", durable=False) as w:
        for run_id, key, detected, area in faces:
            recs = [MetricRecord("face_detected", float(bool(detected)), MODEL)]
            if detected:
                recs += [MetricRecord("face_size", float(area), MODEL),
                         MetricRecord("id_sim", 0.5 + float(area) / 2, MODEL)]
            w.add_metrics(run_id, key, recs)
    return {"path": str(path), "n_faces": len(faces), "n_detected": sum(1 for f in faces if f[2])}


def test_figures_page_shows_every_standard_figure_in_a_fresh_session(evaluated_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FASTFACE_STORE", evaluated_store["path"])
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("views/figures.py").run()  # straight to Figures: no other page ran in this session
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    charts = {}
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        title = re.sub(r"<br><span.*", "", spec["layout"]["title"]["text"]).replace("<br>", " ")
        charts[title] = spec
    assert set(charts) == set(STANDARD)
    for title, kind in STANDARD.items():
        data = [t for t in charts[title]["data"] if t["type"] == kind]
        assert data, title
        assert sum(_n(t.get("x")) for t in data) > 0, title  # each draws something
        # laid out for a single column (the default) at print font sizes
        assert charts[title]["layout"]["width"] == style.column_px("single")
    hist = charts["Attention values pre vs post"]  # one panel per run; the legend holds the stages only
    assert {t["name"] for t in hist["data"] if t.get("showlegend", True)} <= {"pre", "post"}
    panels = {t.get("xaxis", "x") for t in hist["data"] if t.get("showlegend", True) is False}
    assert len(panels) == len({a["text"] for a in hist["layout"]["annotations"]}) > 1
    sim = charts["ID similarity vs generated face size"]
    # the fixture's samples with a face: every one a point of its run (faint markers)
    points = [t for t in sim["data"] if t["mode"] == "markers"]
    assert sum(_n(t["x"]) for t in points) == evaluated_store["n_detected"]
    # undetected samples counted in the subtitle, not dropped silently
    n_out = evaluated_store["n_faces"] - evaluated_store["n_detected"]
    text = re.sub(r"<[^>]+>", " ", sim["layout"]["title"]["text"])  # the subtitle is folded into the title
    assert f"{n_out} without a detected face left out" in " ".join(text.split())


def _n(values) -> int:
    if values is None:
        return 0
    if isinstance(values, dict):  # plotly's binary array encoding
        return int(np.prod(values.get("shape", [len(_decode(values))]))) if "shape" in values else len(_decode(values))
    return len(values)


def _decode(v: dict) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))


def test_binned_means_against_hand_values():
    df = pd.DataFrame({"run_id": ["a"] * 5 + ["b"] * 2,
                       "face_size": [0.1, 0.15, 0.2, 0.9, 1.0, 0.1, None],
                       "id_sim": [0.5, 0.7, 0.6, 0.9, 0.8, 0.4, 0.3]})
    edges = binning.bin_edges(df["face_size"], 2)
    assert np.allclose(edges, [0.1, 0.55, 1.0])
    out = binning.binned_means(df, "face_size", "id_sim", "run_id", edges).set_index(["run_id", "bin"])
    a0 = out.loc[("a", 0)]
    assert a0["n"] == 3 and a0["y_mean"] == pytest.approx(0.6) and a0["x_mean"] == pytest.approx(0.15)
    # sd of 0.5, 0.7, 0.6 = 0.1; t(0.975, 2) = 4.302653; half width 0.1 * 4.302653 / sqrt(3)
    assert a0["hi"] - a0["y_mean"] == pytest.approx(0.1 * 4.302653 / 3 ** 0.5, rel=1e-5)
    a1 = out.loc[("a", 1)]  # 1.0 sits on the last edge: in the last bin
    assert a1["n"] == 2 and a1["y_mean"] == pytest.approx(0.85)
    assert a1["hi"] - a1["y_mean"] == pytest.approx(np.std([0.9, 0.8], ddof=1) * 12.706205 / 2 ** 0.5, rel=1e-5)
    b0 = out.loc[("b", 0)]
    assert b0["n"] == 1 and np.isnan(b0["lo"])  # one value: no interval
    assert binning.dropped(df, "face_size", "id_sim", "run_id").to_dict() == {"a": 0, "b": 1}


# --- the paper layout ----------------------------------------------------------------------------

def _legend_fig(n: int = 6) -> go.Figure:
    fig = go.Figure([go.Scatter(x=[0, 1, 2], y=[i, i + 1, i], name=f"preset{i} λ=0.8 (run-{i})") for i in range(n)])
    fig.update_layout(title="A title long enough to need wrapping in a single printed column of a paper")
    fig.update_xaxes(title_text="x")
    return fig


def test_column_widths_in_css_pixels_and_at_a_dpi():
    # 89 mm = 3.504 in -> 336 CSS px (96/in); 183 mm = 7.205 in -> 692 px
    assert style.column_px("single") == 336 and style.column_px("double") == 692
    assert int(style.column_px("single") * style.png_scale(300)) == 1050   # 3.5 in at 300 dpi
    assert int(style.column_px("double") * style.png_scale(600)) == 4325  # 692 * 600 / 96 = 4325.0
    assert style.pt_px(8) == pytest.approx(10.6667, abs=1e-3)  # 8 pt = 8/72 in = 10.67 CSS px
    with pytest.raises(ValueError, match="single"):
        style.column_px("triple")


def test_paper_layout_puts_the_legend_below_or_inside_never_beside():
    below = export.publication_figure(_legend_fig(), column="single", legend="below")
    lg = below.layout.legend
    assert (lg.orientation, lg.xref, lg.yref, lg.y, lg.yanchor, lg.xanchor) == ("h", "container", "container", 0,
                                                                               "bottom", "left")
    assert lg.x * 336 == pytest.approx(8)  # PRINT_PAD from the left edge
    # entries in columns: the widest label "preset0 λ=0.8" (13 characters of 0.62 em at 7.5 pt) + 4 px
    assert lg.entrywidthmode == "pixels" and lg.entrywidth == pytest.approx(13 * 0.62 * 10 + 4)
    assert below.layout.width == 336 and below.layout.font.size == pytest.approx(style.pt_px(8))
    assert all("(run-" not in t.name for t in below.data)  # run ids dropped: names stay distinct
    # title PRINT_PAD from the left edge, above the plot (automargin makes room); wrapped to the width
    t = below.layout.title
    title_px = style.pt_px(9)
    top = 8 + 0.8 * title_px  # 8 px of white above a two-line title (plotly lifts it up to ~0.8 em)
    assert (t.xref, t.x, t.yref, t.yanchor) == ("container", 0, "container", "top")
    assert t.y == pytest.approx(1 - top / below.layout.height) and t.pad.l >= 8 and t.text.count("<br>") == 1
    # the top margin holds the title's two lines (1.35 em each) and a 6 px gap above the plot
    assert below.layout.margin.t == round(top + 2 * 1.35 * title_px + 6)
    assert max(len(line) for line in t.text.split("<br>")) * 0.62 * style.pt_px(9) <= 336 - 16
    assert min(below.layout.margin[k] for k in "lrtb") >= 8
    # six entries of 80.6 + 44 px: two a row in 336 - 16 px -> three rows, the figure grows by them
    rows = style.legend_rows(below, 336)
    assert rows == 3
    # a 4:3 plot, plus the legend's rows (2 em of 7.5 pt each, 16 px gap) and the title's second line
    assert t.text.count("<br>") == 1
    assert below.layout.height == round(336 * 0.75 + rows * 2.0 * style.pt_px(7.5) + 16) + round(1.4 * style.pt_px(8))
    inside = export.publication_figure(_legend_fig(), column="double", legend="inside")
    lg = inside.layout.legend
    assert (lg.orientation, lg.xref, lg.yref, lg.xanchor, lg.yanchor) == ("v", "paper", "paper", "right", "top")
    assert 0 < lg.x <= 1 and 0 < lg.y <= 1 and inside.layout.width == 692
    assert inside.layout.height == round(692 * 0.5)


needs_chromium = pytest.mark.skipif(export.browser_path() is None,
                                    reason="Chromium not found (apt-get install -y chromium)")


@needs_chromium
def test_exported_files_have_the_column_size(tmp_path):
    """The files themselves: PNG pixels = column px x dpi / 96, PDF page = column width in points
    (72/in), SVG width = column px; the legend (its text) sits below the plot in the PNG: the last
    rows of the image hold non-white pixels left of the middle (legend entries start left)."""
    import re

    from PIL import Image

    try:
        single = export.export_figure(_legend_fig(), tmp_path, "s", {"query": "q"}, column="single", dpi=300)
        double = export.export_figure(_legend_fig(), tmp_path, "d", {"query": "q"}, ("png", "pdf"),
                                      column="double", dpi=150)
    finally:
        export.shutdown()
    im = Image.open(single["png"])
    assert im.size[0] == 1050 and im.size[1] == int(export.publication_figure(_legend_fig(), column="single").layout.height
                                                      * 300 / 96)
    assert Image.open(double["png"]).size[0] == int(692 * 150 / 96)  # 1081
    media = re.search(rb"MediaBox\s*\[\s*0\s+0\s+([\d.]+)", double["pdf"].read_bytes())
    assert float(media.group(1)) == pytest.approx(692 * 72 / 96, abs=0.5)  # 519 pt = 7.2 in
    assert re.search(rb'<svg[^>]*width="336"', single["svg"].read_bytes())
    side = json.loads(single["json"].read_text())
    assert side["style"]["column"] == "single" and side["style"]["png_dpi"] == 300 and side["query"] == "q"
    px = np.asarray(im.convert("L"))
    assert (px[:12] > 250).all() and (px[:, :12] > 250).all() and (px[:, -12:] > 250).all()  # white margins
    ink_rows = np.where((px < 200).any(axis=1))[0]
    bottom = px[ink_rows[-1] - 20:ink_rows[-1] + 1]
    cols = np.where((bottom < 200).any(axis=0))[0]
    assert cols.min() < px.shape[1] / 2  # the last line is legend text starting on the left, not a right column
