"""Figure export: PNG, SVG and PDF in the publication template with a JSON sidecar."""

import json

import numpy as np
import pandas as pd
import pytest

from workbench.charts import attention as attention_charts
from workbench.charts import faces as faces_charts
from workbench.charts import style
from workbench.data import export

needs_chromium = pytest.mark.skipif(
    export.browser_path() is None,
    reason="Chromium not found (apt-get install -y chromium): kaleido cannot export static images")


@pytest.fixture(autouse=True, scope="module")
def _stop_kaleido():
    yield
    export.shutdown()


def _fig():
    df = pd.DataFrame({"run_id": ["r1", "r1", "r2"], "sample_key": ["a", "b", "c"], "identity": ["i"] * 3,
                       "prompt": ["p"] * 3, "detected": [True] * 3, "area_ratio": [0.2, 0.25, 0.3],
                       "similarity": [0.5, 0.55, 0.7]})
    meta = {"r1": {"preset": "baseline", "ip_scale": 0.8, "label": "baseline (r1)"},
            "r2": {"preset": "ff-am2", "ip_scale": 0.8, "label": "ff-am2 (r2)"}}
    return faces_charts.similarity_vs_size(df, meta)


@needs_chromium
def test_export_png_svg_pdf_with_sidecar(tmp_path):
    prov = {"query": "workbench:faces_generated", "sql": "select 1", "params": {"run_ids": ["r1", "r2"]},
            "run_ids": ["r1", "r2"], "store": "/x"}
    paths = export.export_figure(_fig(), tmp_path / "out", "Similarity vs size", prov)
    assert set(paths) == {"png", "svg", "pdf", "json"}
    png, svg, pdf = (paths[k].read_bytes() for k in ("png", "svg", "pdf"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    w, h = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (w, h) == (style.WIDTH * style.EXPORT_SCALE, style.HEIGHT * style.EXPORT_SCALE)
    assert b"<svg" in svg[:200] and b"ID similarity" in svg
    assert pdf.startswith(b"%PDF")
    side = json.loads(paths["json"].read_text())
    assert side["query"] == "workbench:faces_generated" and side["sql"] == "select 1"
    assert side["run_ids"] == ["r1", "r2"] and side["params"] == {"run_ids": ["r1", "r2"]}
    assert side["files"] == {"png": "Similarity-vs-size.png", "svg": "Similarity-vs-size.svg",
                             "pdf": "Similarity-vs-size.pdf"}
    assert side["style"]["template"] == style.TEMPLATE_NAME
    assert all(p.parent == tmp_path / "out" for p in paths.values())


def _plot_region(im: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the topmost block of non-white pixels (the overlay; the colour bar sits
    below it, after white rows)."""
    rows = (im < 245).any(axis=2).any(axis=1)
    top = int(np.argmax(rows))
    bottom = top + int(np.argmin(rows[top:]))  # first white row after the block
    cols = (im[top:bottom] < 245).any(axis=2).any(axis=0)
    left = int(np.argmax(cols))
    right = len(cols) - int(np.argmax(cols[::-1]))
    return slice(top, bottom), slice(left, right)


@needs_chromium
def test_export_overlay_with_embedded_image(tmp_path):
    """The embedded photo is in the exported PNG, where the map and the box are: a photo red in
    its left half and blue in its right half under a map whose two halves are equal, so every
    column of the left half is redder than its twin column of the right half by the photo's share
    ((1 - opacity) * 255 in R - B, ~230 at opacity 0.55) and by nothing else."""
    import io

    from PIL import Image

    photo = np.zeros((64, 64, 3), np.uint8)
    photo[:, :32, 0] = 255
    photo[:, 32:, 2] = 255
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, format="PNG")
    half = np.random.default_rng(0).random((8, 4))
    fig = attention_charts.attention_overlay(buf.getvalue(), np.concatenate([half, half], axis=1), opacity=0.55,
                                             box=(18, 14, 46, 50), image_size=(64, 64))
    paths = export.export_figure(fig, tmp_path, "overlay", {}, formats=("png",))
    assert paths["json"].exists()
    im = np.asarray(Image.open(paths["png"]).convert("RGB")).astype(np.int32)
    rows, cols = _plot_region(im)
    region = im[rows, cols]
    h, w = region.shape[:2]
    assert abs(h - w) <= 2 and w > 300, (h, w)  # the square image, scaled up
    y = (np.arange(h) + 0.5) * 64 / h  # image row of each screen row
    outside_box = (y < 13) | (y > 51)  # the box (y 14-50) draws opaque lines over the photo
    rb = np.median((region[..., 0] - region[..., 2])[outside_box], axis=0)  # per column
    mid, edge = w // 2, 3  # leave out a few screen pixels at the borders (anti-aliasing)
    diff = rb[edge:mid - edge] - rb[mid + edge:w - edge]
    expected = 2 * 0.45 * 255  # red on the left, blue on the right, each at 1 - opacity
    assert np.all(np.abs(diff - expected) < 40), (diff.min(), diff.max(), expected)


def test_export_without_chromium_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-browser"))
    assert export.browser_path() is None
    with pytest.raises(export.ExportUnavailable, match="apt-get install -y chromium"):
        export.export_figure(_fig(), tmp_path, "x", {})
    assert not (tmp_path / "x.png").exists()
