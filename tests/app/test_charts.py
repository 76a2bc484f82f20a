"""Chart functions on small frames: trace counts, axis titles, values, colours."""

import json

import numpy as np
import pandas as pd
import pytest

from workbench.charts import attention as attention_charts
from workbench.charts import compare as compare_charts
from workbench.charts import faces as faces_charts
from workbench.charts import quick as quick_charts
from workbench.charts import style


META = {"r1": {"preset": "baseline", "ip_scale": 0.8, "label": "baseline λ=0.8 (r1)"},
        "r2": {"preset": "ff-am2", "ip_scale": 0.8, "label": "ff-am2 λ=0.8 (r2)"}}


def test_preset_colours_are_fixed_and_stable():
    assert style.preset_color("ff-am2") == style.PRESET_COLORS["ff-am2"]
    assert style.preset_color("my-new-preset") == style.preset_color("my-new-preset")
    assert style.preset_color(None) in style.SPARE_COLORS


def test_hist_overlay_one_trace_per_run_and_stage_normalised():
    rows = []
    for run in ("r1", "r2"):
        for stage in ("pre", "post"):
            for b in range(1, 35):
                rows.append((run, stage, b, 10 if b in (2, 3) else 0))
    fig = attention_charts.hist_overlay(pd.DataFrame(rows, columns=["run_id", "stage", "bin", "count"]), META, log_y=False)
    assert len(fig.data) == 4
    tr = fig.data[0]
    assert tr.line.color == style.PRESET_COLORS["baseline"]
    assert sum(tr.y) == pytest.approx(1.0)
    assert len(tr.x) == 32  # empty under/overflow bins hidden
    assert fig.layout.xaxis.title.text.startswith("attention value")
    assert fig.layout.yaxis.title.text == "fraction of values"
    dashes = {t.name.split(" · ")[1]: t.line.dash for t in fig.data}
    assert dashes == {"pre": "dot", "post": "solid"}


def test_face_mass_heatmap_pivots_sites_by_step():
    df = pd.DataFrame({"site": ["up_blocks.0.attentions.2.transformer_blocks.6.attn2"] * 2
                       + ["down_blocks.2.attentions.1.transformer_blocks.3.attn2"] * 2,
                       "step": [0, 1, 0, 1], "mass_in_box": [0.1, 0.2, 0.3, 0.4]})
    fig = attention_charts.face_mass_heatmap(df)
    assert len(fig.data) == 1
    hm = fig.data[0]
    assert list(hm.y) == ["down2.a1.t3", "up0.a2.t6"]  # UNet order
    assert np.allclose(np.asarray(hm.z), [[0.3, 0.4], [0.1, 0.2]])
    assert fig.layout.xaxis.title.text == "denoising step"


def test_step_lines_panels_per_part():
    df = pd.DataFrame({"run_id": ["r1"] * 4, "step": [0, 1, 0, 1], "part": ["down", "down", "up", "up"],
                       "stage": ["post"] * 4, "entropy": [1.0, 2.0, 3.0, 4.0]})
    fig = attention_charts.step_lines(df, META, y="entropy")
    assert len(fig.data) == 2
    assert [a.text for a in fig.layout.annotations] == ["down", "up"]
    assert sum(t.showlegend for t in fig.data) == 1


def test_attention_overlay_geometry_threshold_and_box():
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    amap = np.arange(16, dtype=float).reshape(4, 4)
    fig = attention_charts.attention_overlay(img, amap, opacity=0.4, threshold=0.5, box=(10, 12, 50, 58))
    assert [t.type for t in fig.data] == ["image", "heatmap"]
    hm = fig.data[1]
    assert hm.dx == 16 and hm.x0 == 8 and hm.opacity == 0.4
    z = np.asarray(hm.z, dtype=float)
    assert np.isnan(z[0, 0]) and z[3, 3] == 15  # below 0.5 * max hidden
    assert fig.layout.shapes[0].x0 == 10 and fig.layout.shapes[0].y1 == 58


def test_attention_overlay_from_png_bytes():
    from tests.app.fixture_store import _png, base_image

    fig = attention_charts.attention_overlay(_png(base_image()), np.ones((8, 8)), image_size=(64, 64))
    assert fig.data[0].source.startswith("data:image/png;base64,")
    with pytest.raises(ValueError):
        attention_charts.attention_overlay(b"\x89PNG", None)


def test_mean_map_upsamples_to_finest_grid():
    m = attention_charts.mean_map([np.ones((2, 2)), np.zeros((4, 4))])
    assert m.shape == (4, 4) and np.allclose(m, 0.5)
    assert attention_charts.upsample(np.arange(4.0).reshape(2, 2), (3, 3)).shape == (3, 3)


def test_face_charts():
    df = pd.DataFrame({"run_id": ["r1", "r1", "r2", "r2"], "sample_key": list("abcd"),
                       "identity": ["i"] * 4, "prompt": ["p"] * 4,
                       "detected": [True, False, True, True], "area_ratio": [0.2, None, 0.3, 0.35],
                       "similarity": [0.5, None, 0.6, 0.7]})
    fig = faces_charts.distribution(df, META, "similarity")
    assert len(fig.data) == 2 and list(fig.data[0].x) == [0.5]  # runs are rows, values along x
    assert fig.data[0].orientation == "h" and fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.title.text.startswith("ID similarity")
    assert fig.data[0].y[0] == "baseline λ=0.8<br>r1"  # two-line run label
    assert fig.layout.height == style.HEIGHT  # two runs: the standard height
    sc = faces_charts.similarity_vs_size(df, META)
    assert len(sc.data) == 2
    assert sc.data[1].customdata[0][0] == "r2" and sc.data[1].customdata[1][1] == "d"
    assert sc.data[1].marker.color == style.PRESET_COLORS["ff-am2"]
    counts = pd.DataFrame({"run_id": ["r1", "r2"], "ffc": [1, 0], "n_evaluated": [2, 2]})
    bars = faces_charts.ffc_bars(counts, META)
    assert [t.x[0] for t in bars.data] == [1, 0] and bars.data[0].text[0] == "1 / 2"
    assert bars.data[0].orientation == "h"
    many = pd.DataFrame({"run_id": [f"r{i}" for i in range(20)], "ffc": [1] * 20, "n_evaluated": [2] * 20})
    tall = faces_charts.ffc_bars(many, META)
    assert tall.layout.height == style.rows_height(20) >= 20 * style.ROW_HEIGHT  # a row per run


def test_compare_charts():
    table = pd.DataFrame({"run_id": ["r1", "r2"], "name": ["m", "m"], "delta": [0.0, 0.1],
                          "lo": [0.0, 0.05], "hi": [0.0, 0.2], "n_pairs": [3, 3]})
    fig = compare_charts.delta_forest(table, META, "m", baseline="r1")
    assert len(fig.data) == 1 and fig.data[0].x[0] == 0.1
    assert fig.data[0].error_x.array[0] == pytest.approx(0.1)
    assert "r1" in fig.layout.title.subtitle.text
    # each run against its own baseline (baseline_id): a row paired with itself is never drawn
    own = table.assign(baseline_id=["r1", "r1"])
    fig = compare_charts.delta_forest(own, META, "m")
    assert [t.name for t in fig.data] == ["ff-am2 λ=0.8 (r2)"]
    assert "vs baseline λ=0.8 (r1)" in fig.data[0].hovertemplate
    assert "at its checkpoint and scales" in fig.layout.title.subtitle.text
    long_metric = "id_sim @ dlib/face_recognition_resnet_model_v1@87d583e6"
    fig = compare_charts.delta_forest(own.assign(name=long_metric), META, long_metric)
    lines = fig.layout.xaxis.title.text.split("<br>")
    assert len(lines) > 1 and all(len(x) <= 60 for x in lines)  # wrapped, not one clipped line
    per_run = pd.DataFrame({"run_id": ["a", "b", "c"], "preset": ["ff-am2", "ff-am2", "baseline"],
                            "ip_scale": [0.8, 0.6, 0.8], "clip_t": [0.2, 0.3, 0.25], "id_sim": [0.6, 0.5, 0.4]})
    fr = compare_charts.fronts(per_run, "clip_t", "id_sim")
    assert [t.name for t in fr.data] == ["baseline", "ff-am2", "λ=0.6", "λ=0.8"]  # presets, then the scales' key
    ff = [t for t in fr.data if t.name == "ff-am2"][0]
    assert list(ff.text) == ["λ=0.6", "λ=0.8"] and list(ff.x) == [0.3, 0.2]
    assert "text" not in ff.mode  # no labels on the points to overlap
    assert list(ff.marker.symbol) == ["circle", "square"] and fr.data[3].marker.symbol == "square"
    base = fr.data[0]
    assert (base.line.dash, ff.line.dash) == ("solid", "dash") and base.line.width > ff.line.width
    assert fr.layout.xaxis.title.text == "clip_t"


def test_style_wrap_ticks_and_heights():
    assert style.wrap("short title") == "short title"
    wrapped = style.wrap("Δ a_rather_long_metric_name, run − baseline (95% CI)", width=20)
    assert all(len(x) <= 26 for x in wrapped.split("<br>")) and wrapped.replace("<br>", " ").startswith("Δ a_")
    assert style.wrap("x" * 50, width=10) == "x" * 50  # a longer word keeps its line
    assert style.run_tick("r9", "am1", 0.5) == "am1 λ=0.5<br>r9"
    assert style.run_tick("r9") == f"{style.UNKNOWN_PRESET}<br>r9"
    assert style.rows_height(1) == style.HEIGHT and style.rows_height(30) > 30 * style.ROW_HEIGHT


def test_hist_log_axis_labels_decades_only_when_they_span_one():
    from workbench.charts.attention import log_ticks

    assert log_ticks([1e-3, 0.2, None, float("nan"), 0.0]) == {"dtick": 1}
    assert log_ticks([0.02, 0.05]) == {"dtick": "D2"}
    df = pd.DataFrame({"run_id": ["r1"] * 3, "stage": ["post"] * 3, "bin": [2, 3, 4], "count": [1000, 10, 1]})
    assert attention_charts.hist_overlay(df, META).layout.yaxis.dtick == 1


def test_quick_chart_and_progress():
    df = pd.DataFrame({"x": [2, 1, 3], "y": [4, 5, 6], "preset": ["dcg", "dcg", "am1"]})
    fig = quick_charts.quick_chart(df, "x", "y", "line", color="preset")
    assert len(fig.data) == 2
    assert {t.name: t.marker.color for t in fig.data}["dcg"] == style.PRESET_COLORS["dcg"]
    assert list(fig.data[1].x) == [1, 2]  # lines sorted by x
    with pytest.raises(ValueError):
        quick_charts.quick_chart(df, "x", "y", "pie")
    assert quick_charts.progress_fraction(3, 6) == 0.5
    assert quick_charts.progress_fraction(3, None) is None and quick_charts.progress_fraction(9, 6) == 1.0
    json.loads(fig.to_json())  # serialisable (the Figures registry stores JSON)


def test_paper_height_gives_each_row_of_a_panel_grid_room():
    """A 4-row grid of panels (the standard histogram figure in single column) gets 12 body
    lines per row: 8 pt at 96 dpi = 10.67 px, so 70 + 4 * 12 * 10.67 = 582 px (a 4:3 plot of a
    single column would be 252 px, too short for four rows of titled panels)."""
    from plotly.subplots import make_subplots

    from workbench.charts import style

    grid = make_subplots(rows=4, cols=3)
    assert style.subplot_rows(grid) == 4
    assert style.paper_height(grid, 336, legend="inside") == 582
    assert style.paper_height(make_subplots(rows=1, cols=3), 336, legend="inside") == 252
