"""The real thing: the workbench served by workbench.launch, driven with Debian's chromium
through playwright (marked `browser`; skipped when /usr/bin/chromium is missing)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
#: ms a page may take to show something: generous, as a 2-core machine shared with other work
#: renders these pages in tens of seconds
TIMEOUT = 90_000
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


@contextlib.contextmanager
def serve(store_path: str, log: Path):
    """The workbench on a free port (workbench.launch.start), stopped at exit; yields its URL."""
    from workbench import launch

    port = free_port()
    with open(log, "wb") as out:
        proc = launch.start(store_path, port=port, stdout=out, stderr=out)
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
def server(fixture_store, tmp_path_factory):
    with serve(fixture_store["path"], tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A store of two capture commands (tests/app/fixture_store.build_sweeps) served by its own
    workbench; this module's last test writes into it."""
    from tests.app.fixture_store import build_sweeps

    base = tmp_path_factory.mktemp("browser-sweeps")
    info = build_sweeps(base / "store", id_image_dir=base / "ids", tokens=(-1, 0, 1, 2, 3))  # tokens as the demo's
    with serve(info["path"], base / "streamlit.log") as url:
        yield info | {"url": url}


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1400, "height": 1000})
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.set_default_timeout(TIMEOUT)
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
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT)


VIEWPORTS = [(1400, 1000), (1920, 1080)]

#: every visible plotly chart: its title, axis titles and tick labels lie inside the chart's
#: svg (not clipped), and no two tick labels of one axis overlap
LAYOUT_PROBLEMS = """() => {
  const out = [];
  const inside = (r, s) => r.left >= s.left - 1 && r.right <= s.right + 1 && r.top >= s.top - 1 && r.bottom <= s.bottom + 1;
  const overlap = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  document.querySelectorAll('.js-plotly-plot').forEach((plot, i) => {
    const svg = plot.querySelector('svg.main-svg');
    if (!svg) return;
    const s = svg.getBoundingClientRect();
    if (s.width === 0) return;  // in a hidden tab
    const title = (plot.querySelector('.gtitle') || {}).textContent || `chart ${i}`;
    plot.querySelectorAll('.gtitle, .g-xtitle text, .g-ytitle text, .xtick text, .ytick text').forEach(t => {
      const r = t.getBoundingClientRect();
      if (r.width > 0 && !inside(r, s)) out.push(`${title}: '${t.textContent}' outside the chart`);
    });
    for (const sel of ['.xtick text', '.ytick text']) {
      const boxes = [...plot.querySelectorAll(sel)].map(t => [t.textContent, t.getBoundingClientRect()])
        .filter(b => b[1].width > 0);
      for (let a = 0; a < boxes.length; a++) for (let b = a + 1; b < boxes.length; b++)
        if (overlap(boxes[a][1], boxes[b][1])) out.push(`${title}: '${boxes[a][0]}' overlaps '${boxes[b][0]}'`);
    }
  });
  return out;
}"""


def charts_drawn(page, n: int = 1):
    """Wait until n plotly charts have drawn (and re-laid out for their automargins)."""
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n}",
                           timeout=TIMEOUT)
    page.wait_for_timeout(1000)


def assert_layout_ok(page, where: str):
    problems = page.evaluate(LAYOUT_PROBLEMS)
    assert not problems, f"{where}: {problems}"


#: the Samples variants: page width, and per overlay panel its position and whether its colour bar
#: (ticks and title included) lies inside the panel's svg
OVERLAY_PANELS = """() => {
  const panels = [];
  document.querySelectorAll('.js-plotly-plot').forEach(p => {
    const svg = p.querySelector('svg.main-svg'), cb = p.querySelector('.colorbar');
    if (!svg || !cb) return;
    const s = svg.getBoundingClientRect(), c = cb.getBoundingClientRect();
    if (s.width === 0) return;
    panels.push({top: Math.round(s.top), width: s.width, ticks: [...cb.querySelectorAll('text')].map(t => t.textContent),
                 inside: c.left >= s.left - 1 && c.right <= s.right + 1 && c.top >= s.top - 1 && c.bottom <= s.bottom + 1});
  });
  return {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, panels};
}"""


def tick_texts(plot, axis: str = "y") -> list[str]:
    return [t.text_content() for t in plot.locator(f".{axis}tick text").all()]


@contextlib.contextmanager
def outside_requests(page):
    """Collects the URLs of requests that leave 127.0.0.1 (a page icon from a font host...)."""
    seen: list[str] = []

    def note(request):
        if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            seen.append(request.url)

    page.on("request", note)
    try:
        yield seen
    finally:
        page.remove_listener("request", note)


def test_browser_pages_slider_and_screenshots(server, page, tmp_path):
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    with outside_requests(page) as outside:
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
        charts_drawn(page)
        assert_layout_ok(page, "Attention statistics")  # log axis: no overlapping digit labels
        shot(page, out / "attention.png")

        page.get_by_role("link", name="Faces").first.click()
        page.get_by_role("heading", name="Faces").first.wait_for()
        page.get_by_text("Face fail count").first.wait_for()
        page.locator(".js-plotly-plot").nth(2).wait_for()
        wait_idle(page)
        charts_drawn(page, 4)
        assert_layout_ok(page, "Faces")  # two-line run labels do not overlap
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
        charts_drawn(page, 2)
        assert_layout_ok(page, "Compare")
        shot(page, out / "compare.png")

        page.get_by_role("link", name="SQL").first.click()
        page.get_by_role("heading", name="SQL").first.wait_for()
        page.get_by_role("button", name="Run query").click()
        wait_idle(page)
        page.get_by_text("rows ·").first.wait_for()
        shot(page, out / "sql.png")
        body = page.inner_text("body")
        assert "Traceback" not in body
    # the page icon ships with the app: nothing is fetched from outside (fonts, icons)
    assert outside == []


@pytest.mark.parametrize("width,height", VIEWPORTS, ids=[f"{w}x{h}" for w, h in VIEWPORTS])
def test_defaults_and_labels(sweeps, page, tmp_path, width, height):
    """A new user's first look at a store of two sweeps: the runs to compare are the newest
    sweep with its baselines (the sidebar says so), Compare pairs every run with the baseline
    at its scales and never a run with itself, and no chart clips or overlaps its labels."""
    out = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    newest, old = sweeps["newest"], sweeps["old"]
    baselines = [r for r in newest if "-baseline-" in r]
    page.set_viewport_size({"width": width, "height": height})
    with outside_requests(page) as outside:
        page.goto(sweeps["url"])
        page.get_by_role("heading", name="Runs to compare").first.wait_for()
        # (no wait_idle here: a run is in progress, so the Runs page re-reads itself every 5 s)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Runs chosen: 12, the newest sweep with 2 baseline runs").wait_for()
        tags = page.locator('[data-testid="stMultiSelect"] [data-tag]')  # 'preset λ=0.5 (run id)'
        pytest.importorskip("playwright.sync_api").expect(tags).to_have_count(len(newest))
        chosen = [t.get_attribute("aria-label").split("(")[-1].rstrip(")") for t in tags.all()]
        assert sorted(chosen) == sorted(newest) and chosen[:2] == baselines  # baselines included, first
        assert not set(old) & set(chosen)
        shot(page, out / f"sweeps-runs-{width}.png")

        page.get_by_role("link", name="Compare").first.click()
        page.get_by_role("heading", name="Compare").first.wait_for()
        page.get_by_text("Fronts over IP-Adapter scales").first.wait_for()
        wait_idle(page)
        charts_drawn(page, 2)
        assert page.get_by_role("combobox", name="Baseline").input_value() == \
            "each run against the baseline-preset run at its checkpoint and scales"
        forest = page.locator(".js-plotly-plot").first
        compared = set(tick_texts(forest))  # runs labelled by what differs: 'dcg · λ=0.5'
        assert compared == {f"{p} · λ={s:g}" for p in ("dcg", "am1", "am2", "ff-am1", "ff-am2") for s in (0.5, 0.8)}
        assert not any("baseline" in t for t in compared)  # the baselines are not compared (with themselves)
        assert_layout_ok(page, f"Compare at {width}x{height}")  # the x-axis title is not clipped
        shot(page, out / f"sweeps-compare-{width}.png")

        for name, tabs in (("Faces", ()), ("Samples", ("Variants and attention",)),
                           ("Attention statistics", ("Face mass per site and step", "Value histograms", "Entropy and peaks"))):
            page.get_by_role("link", name=name).first.click()
            page.get_by_role("heading", name=name).first.wait_for()
            wait_idle(page)
            charts_drawn(page)
            assert_layout_ok(page, f"{name} at {width}x{height}")
            for tab in tabs:
                page.get_by_role("tab", name=tab).click()
                wait_idle(page)
                charts_drawn(page)
                assert_layout_ok(page, f"{name} / {tab} at {width}x{height}")
                if tab == "Variants and attention":
                    assert_variants_defaults(page, f"{width}x{height}")
            shot(page, out / f"sweeps-{name.split()[0].lower()}-{width}.png")
        assert "Traceback" not in page.inner_text("body")
    assert outside == []


def assert_variants_defaults(page, where: str):
    """Samples > Variants and attention as it opens: the runs at one IP scale labelled by preset
    (no run id), ID tokens 1-3 summed over a UNet part, at most 6 panels per row, nothing wider
    than the window, and every colour bar (ticks, title) inside its panel."""
    charts_drawn(page, 6)
    info = page.evaluate(OVERLAY_PANELS)
    assert info["scrollWidth"] <= info["innerWidth"], where
    rows: dict[int, int] = {}
    for p in info["panels"]:
        rows[p["top"]] = rows.get(p["top"], 0) + 1
    assert len(info["panels"]) == 6 and max(rows.values()) <= 6, (where, rows)
    assert all(p["inside"] for p in info["panels"]), (where, info["panels"])
    assert all(p["width"] >= 150 for p in info["panels"]), where  # readable, not 40 px strips
    ticks = info["panels"][0]["ticks"]
    assert "attention" in ticks and len(ticks) >= 3 and not any(t.endswith(".") for t in ticks), ticks  # no '0.'
    assert page.get_by_role("combobox", name="ID token").input_value() == "ID tokens 1-3 (sum)"
    assert page.get_by_role("combobox", name="Part").input_value() == "up"
    heads = page.locator('[data-testid="stMarkdownContainer"] strong').all_inner_texts()
    assert {"baseline", "ff-am2"} <= set(heads) and not any("hyper-" in h for h in heads), heads
    page.get_by_text("in every panel (the largest value shown)").first.wait_for()


def test_runs_page_refreshes_itself_while_a_run_is_in_progress(sweeps, page):
    """A sweep writes a sample while the Runs page is open: the progress moves on with no click."""
    from store.records import SampleRecord, sample_key
    from store.writer import StoreWriter
    from tests.app.fixture_store import UNITS, _png, base_image

    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(sweeps["url"])
    page.get_by_text("hyper-ff-am2-ip0.8 (ff-am2): 3 / 4 samples").first.wait_for()
    page.get_by_text("Updates every 5 s while a run is in progress").first.wait_for()
    identity, prompt, category, seed = UNITS[3]
    with StoreWriter(sweeps["path"], worker_id="browser-test", durable=False) as w:
        w.write_sample("hyper-ff-am2-ip0.8", SampleRecord(
            sample_key=sample_key(identity, prompt, seed), identity=identity, prompt=prompt, category=category,
            seed=seed, image_png=_png(base_image()), width=64, height=64))
        w.set_status("hyper-ff-am2-ip0.8", "running", n_done=4, n_failed=0, n_total=4)
    page.get_by_text("hyper-ff-am2-ip0.8 (ff-am2): 4 / 4 samples").first.wait_for(timeout=TIMEOUT)


def test_a_page_url_opened_first_on_a_fresh_server_gets_the_app(fixture_store, page, tmp_path):
    """Streamlit runs a page file on its own (its file-name sidebar, no app.py: no wide layout,
    no store caption) when the first request of a server process is a page URL and the app
    folder has a `pages/` directory (multipage v1). The pages live in `views/`, so /faces opened
    first gets app.py's navigation titles, its sidebar and the wide layout."""
    with serve(fixture_store["path"], tmp_path / "streamlit.log") as url:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(url + "/faces")
        wait_idle(page)
        page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=TIMEOUT)
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Attention statistics" in nav and "Studio" in nav, nav  # app.py's titles, not file names
        assert "balance" not in nav.lower() and "app" not in nav.split(), nav
        assert "Store:" in page.locator('[data-testid="stSidebar"]').inner_text()
        main = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()
        assert main["width"] > 900, main  # layout="wide" (centred is at most 736 px + padding)
