"""The Studio in a real browser (marked `browser`, skipped without /usr/bin/chromium): upload an ID
photo (its face is found and shown), Generate, and both images and their overlays are drawn."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.app.test_browser import ARGS, CHROMIUM, TIMEOUT, charts_drawn, serve, wait_idle

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason=f"{CHROMIUM} missing: apt-get install -y chromium to run the browser test"),
]


def test_studio_upload_generate_overlays(tmp_path, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    from PIL import Image
    from skimage.data import astronaut

    from tests.app.fixture_store import build

    monkeypatch.setenv("FASTFACE_CACHE", str(tmp_path / "cache"))  # the server inherits it
    info = build(tmp_path / "store", id_image_dir=tmp_path / "ids")
    photo = tmp_path / "my photo.png"
    Image.fromarray(astronaut()).save(photo)
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    with serve(info["path"], tmp_path / "streamlit.log") as url, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT * 2)  # the first Studio run loads the face world
        page.goto(url)
        page.get_by_role("link", name="Studio").first.click()
        page.get_by_role("heading", name="Studio").first.wait_for()
        page.get_by_text("Edit and generate").first.wait_for()
        wait_idle(page)
        page.get_by_role("combobox", name="Identity").first.click()  # pick "Upload a photo…"
        page.get_by_role("option", name="Upload a photo…").click()
        wait_idle(page)
        page.locator('input[type="file"]').set_input_files(str(photo))
        page.get_by_text("face found (dlib)").first.wait_for()
        wait_idle(page)
        box = page.get_by_role("textbox", name="scale up").first
        box.fill("3")
        box.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Generate").first.click()
        page.get_by_text("edited − base").first.wait_for()
        wait_idle(page)
        charts_drawn(page, 4)
        # base and edited overlays: each an image under an attention heatmap, plus the difference map
        plots = page.locator(".js-plotly-plot")
        images = page.locator(".js-plotly-plot image")
        assert images.count() >= 2
        heatmaps = page.locator(".js-plotly-plot .hm, .js-plotly-plot .heatmaplayer image")
        assert heatmaps.count() >= 3 or plots.count() >= 4
        assert page.get_by_text("ID similarity").count() >= 1
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(out / "studio.png"), full_page=True)
        browser.close()
