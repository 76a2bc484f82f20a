"""The real thing: the workbench served by workbench.launch, driven with Debian's chromium
through playwright (marked `browser`; skipped when /usr/bin/chromium is missing)."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                       reason=f"{CHROMIUM} missing: apt-get install -y chromium to run the browser test"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(fixture_store, tmp_path_factory):
    from workbench import launch

    port = free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with open(log, "wb") as out:
        proc = launch.start(fixture_store["path"], port=port, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"workbench did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1440, "height": 1000})
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.set_default_timeout(30_000)
        yield pg
        ctx.close()


def shot(page, path: Path) -> bytes:
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    return data


def wait_idle(page):
    """Wait until streamlit has finished the current script run."""
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_timeout(400)  # a rerun shows the status widget after a short delay
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=30_000)


def test_browser_pages_slider_and_screenshots(server, page, tmp_path):
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.goto(server)
    page.get_by_role("heading", name="Runs").first.wait_for()
    page.get_by_text("r-ffam2-06 (ff-am2): 3 / 6 samples").first.wait_for()
    wait_idle(page)
    shot(page, out / "runs.png")

    page.get_by_role("link", name="Samples").first.click()
    page.get_by_role("heading", name="Samples").first.wait_for()
    page.get_by_role("tab", name="Variants and attention").click()
    slider = page.get_by_role("slider").first
    slider.wait_for()
    wait_idle(page)
    before = int(slider.get_attribute("aria-valuetext"))
    for _ in range(2):  # keyboard arrows on the step slider, one rerun each
        slider.focus()
        page.keyboard.press("ArrowRight")
        wait_idle(page)
    expect = pytest.importorskip("playwright.sync_api").expect
    expect(slider).to_have_attribute("aria-valuetext", str(before + 2))
    page.get_by_text(f"step {before + 2} ·").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    shot(page, out / "samples.png")

    page.get_by_role("link", name="Attention statistics").first.click()
    page.get_by_role("heading", name="Attention statistics").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    wait_idle(page)
    shot(page, out / "attention.png")

    page.get_by_role("link", name="Faces").first.click()
    page.get_by_role("heading", name="Faces").first.wait_for()
    page.get_by_text("Face fail count").first.wait_for()
    page.locator(".js-plotly-plot").nth(2).wait_for()
    wait_idle(page)
    shot(page, out / "faces.png")

    # clicking a point of the similarity-vs-size scatter opens that sample
    scatter = page.locator(".js-plotly-plot").nth(2)
    scatter.scroll_into_view_if_needed()
    point = scatter.locator("g.points path.point").first
    point.wait_for()
    page.wait_for_timeout(500)
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.wait_for_timeout(200)
    page.mouse.click(x, y)
    page.get_by_role("heading", name="Samples").first.wait_for()
    wait_idle(page)
    assert page.get_by_role("tab", name="Variants and attention").is_visible()

    page.get_by_role("link", name="Compare").first.click()
    page.get_by_role("heading", name="Compare").first.wait_for()
    page.get_by_text("Fronts over IP-Adapter scales").first.wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    wait_idle(page)
    shot(page, out / "compare.png")

    page.get_by_role("link", name="SQL").first.click()
    page.get_by_role("heading", name="SQL").first.wait_for()
    page.get_by_role("button", name="Run query").click()
    wait_idle(page)
    page.get_by_text("rows ·").first.wait_for()
    shot(page, out / "sql.png")
    body = page.inner_text("body")
    assert "Traceback" not in body
