"""Every page of the workbench through streamlit's AppTest (entry script + st.navigation),
with widgets driven and values asserted."""

import json
import time

import numpy as np
import pytest

from workbench.data import queries, selection

PAGES = ["views/runs.py", "views/samples.py", "views/attention.py", "views/faces.py",
         "views/compare.py", "views/sql.py", "views/figures.py"]


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def figure(at, key):
    """The plotly figure a page registered under key (for the Figures page)."""
    return at.session_state[queries.STATE_FIGURES][key]["figure"]


def frame(at, column):
    """The first dataframe shown with a given column (AppTest exposes no dataframe keys)."""
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    raise AssertionError(f"no dataframe with column {column!r}")


def goto(at, page):
    at.switch_page(page)
    return ok(at.run())


def test_every_page_renders(app):
    ok(app.run())
    titles = []
    for page in PAGES[1:]:
        goto(app, page)
        titles.append(app.title[0].value)
    assert titles == ["Samples", "Attention statistics", "Faces", "Compare", "SQL", "Figures"]


def sidebar_text(at) -> str:
    return " ".join(c.value for c in at.sidebar.caption)


def test_runs_page_lists_runs_progress_and_selection(app, fixture_store):
    ok(app.run())
    assert app.title[0].value == "Runs"
    # default: the newest sweep (the fixture's three runs share seed, capture spec, host and
    # package versions: one command) with its baseline run first; the sidebar says so
    assert app.multiselect(key="runs_pick").value == ["r-baseline", "r-ffam2", "r-ffam2-06"]
    assert "Runs chosen: 3, the newest sweep with 1 baseline run" in sidebar_text(app)
    assert queries.STATE_RUNS not in app.session_state
    table = frame(app, "progress")
    assert sorted(table["run"]) == sorted(fixture_store["runs"])
    running = table.set_index("run").loc["r-ffam2-06"]
    assert running["status"] == "running" and running["progress"] == pytest.approx(0.5)
    assert running["samples"] == 3 and running["planned"] == 6
    assert any("3 / 6 samples" in p.proto.text for p in app.get("progress"))
    assert any("Updates every 5 s" in c.value for c in app.caption)  # a run is in progress
    app.multiselect(key="runs_pick").set_value(["r-baseline", "r-ffam2"])
    ok(app.run())
    assert app.session_state[queries.STATE_RUNS] == ["r-baseline", "r-ffam2"]
    app.toggle(key="runs_auto").set_value(False)
    ok(app.run())
    assert not any("Updates every" in c.value for c in app.caption)
    # the selection is used by the other pages
    goto(app, "views/faces.py")
    assert set(frame(app, "ffc")["run"]) == {"baseline", "ff-am2"}  # both at λ=0.8: labelled by preset


def test_sidebar_tells_picked_runs(fixture_store, monkeypatch):
    """(AppTest keeps the sidebar of an st.navigation app on the first run only, so a fresh
    session that has picked runs: the browser test checks the sidebar after a pick.)"""
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    monkeypatch.setenv("FASTFACE_STORE", fixture_store["path"])
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state[queries.STATE_RUNS] = ["r-ffam2", "gone-run"]
    ok(at.run())
    assert "Runs chosen: 1 (picked on Runs)" in sidebar_text(at)
    assert at.multiselect(key="runs_pick").value == ["r-ffam2"]


def test_samples_page_overlay_step_stage_token(app, fixture_store):
    ok(app.run())
    goto(app, "views/samples.py")
    assert len(app.image) >= 11  # grid of all samples of the 3 runs (+ reference photo)
    app.selectbox(key="smp_category").set_value("realistic")
    ok(app.run())
    app.selectbox(key="smp_unit").set_value(("id0", "a photo of a person in a park", 1))
    ok(app.run())
    key = "overlay_r-ffam2"
    fig = figure(app, key)
    kinds = [t.type for t in fig.data]
    assert kinds == ["image", "heatmap"]
    assert fig.layout.shapes[0].x0 == 18.0  # generated face box drawn
    z_step0 = np.array(fig.data[1].z, dtype=float)
    app.select_slider(key="ov_step").set_value(3)
    ok(app.run())
    z_step3 = np.array(figure(app, key).data[1].z, dtype=float)
    assert z_step0.shape == z_step3.shape == (16, 16)  # default: the mean over the up part (16x16)
    assert np.nanmax(z_step3) > np.nanmax(z_step0)  # sharper maps at later steps
    app.radio(key="ov_stage").set_value("pre")
    app.selectbox(key="ov_token").set_value((0,))
    app.slider(key="ov_threshold").set_value(0.5)
    ok(app.run())
    z_pre = np.array(figure(app, key).data[1].z, dtype=float)
    assert np.isnan(z_pre).any() and not np.allclose(np.nan_to_num(z_pre), np.nan_to_num(z_step3))
    app.radio(key="ov_scope").set_value("one site")
    ok(app.run())
    app.selectbox(key="ov_site").set_value("down_blocks.2.attentions.1.transformer_blocks.3.attn2")
    ok(app.run())
    assert np.array(figure(app, key).data[1].z).shape == (8, 8)
    captions = " ".join(c.value for c in app.caption)
    assert "Reference image not readable" not in captions  # id0's reference photo is shown
    app.selectbox(key="smp_unit").set_value(("id1", "a photo of a person in a park", 2))
    ok(app.run())
    captions = " ".join(c.value for c in app.caption)
    assert "Reference image not readable" in captions
    assert "No face detected" in captions  # r-ffam2 failed on this unit


def test_attention_page_histograms_mass_and_entropy(app):
    ok(app.run())
    goto(app, "views/attention.py")
    across = figure(app, "attn_mass_runs")  # the fixture has tokens -1 (sum) and 0: the default is the sum
    assert app.session_state["mr_tokens"] == [-1]
    assert sorted({t.xaxis for t in across.data if t.type == "bar"}) == ["x", "x2", "x3"]  # down, mid, up
    assert all(len(t.y) == 3 for t in across.data if t.type == "bar")  # 3 runs, labelled by preset and scale
    assert "ff-am2 · λ=0.6" in across.data[0].y and not any("r-" in y for y in across.data[0].y)
    captions = " ".join(c.value for c in app.caption)
    assert "Covers" in captions and "of samples without a detected face" in captions
    fig = figure(app, "attn_hist")
    curves = [t for t in fig.data if t.x[0] is not None]
    assert len(curves) == 6  # 3 runs (one panel each) x (pre, post)
    assert [t.name for t in fig.data if t.x[0] is None] == ["pre", "post"]  # the legend: stages only
    for t in curves:
        assert np.nansum(np.asarray(t.y, dtype=float)) == pytest.approx(1.0)
    app.selectbox(key="hist_part").set_value("up")
    app.selectbox(key="hist_step").set_value(2)
    app.toggle(key="hist_log").set_value(False)
    ok(app.run())
    assert "up" in figure(app, "attn_hist").layout.title.text
    app.selectbox(key="mass_run").set_value("r-ffam2-06")  # an AM run (the baseline's pre = post)
    ok(app.run())
    mass = figure(app, "attn_mass")
    assert np.array(mass.data[0].z, dtype=float).shape == (3, 4)  # 3 sites x 4 steps
    share = float(app.metric[0].value)
    assert 0.3 < share < 1.0
    app.radio(key="mass_stage").set_value("pre")
    ok(app.run())
    assert float(app.metric[0].value) < share  # AM sharpens the maps on the face
    entropy = figure(app, "attn_entropy")
    assert len(entropy.data) == 3 * 3  # parts x runs (post)
    app.radio(key="steps_stage").set_value("both")
    ok(app.run())
    assert len(figure(app, "attn_entropy").data) == 3 * 2 * 3  # parts x (run, stage)
    assert "attn_peak" in app.session_state[queries.STATE_FIGURES]


def test_faces_page_ffc_and_open_sample(app, fixture_store):
    ok(app.run())
    goto(app, "views/faces.py")
    table = frame(app, "ffc")
    assert table["ffc"].tolist() == [1, 1, 1]
    assert len(figure(app, "faces_scatter").data) == 3
    assert tuple(figure(app, "faces_ffc").data[0].text) == ("1 / 4",)
    key = fixture_store["keys"][("r-ffam2", 1)]  # unit 1: id0, watercolor, seed 1
    app.selectbox(key="faces_open").set_value(("r-ffam2", key))
    app.button(key="faces_open_btn").click()
    ok(app.run())
    assert app.title[0].value == "Samples"  # jumped to the sample
    assert app.selectbox(key="smp_unit").value == ("id0", "a watercolor portrait", 1)
    assert "overlay_r-ffam2" in app.session_state[queries.STATE_FIGURES]


def test_compare_page_paired_deltas(app):
    ok(app.run())
    goto(app, "views/compare.py")
    # default: each run against the baseline-preset run at its own checkpoint and scales
    assert app.selectbox(key="cmp_baseline").value == selection.MATCHED
    table = frame(app, "Δ")
    assert "baseline · λ=0.8" not in set(table["run"])  # never compared with itself
    row = table[(table["run"] == "ff-am2 · λ=0.8") & (table["metric"] == "face_similarity")].iloc[0]
    assert row["vs"] == "baseline · λ=0.8"
    # fixture: similarity = 0.4 + 0.1 * run + 0.02 * unit -> paired delta exactly 0.1 on 2 pairs; the
    # sign-flip p of two equal positive differences is 2/4 (by hand), no mark below 6 pairs
    assert row["Δ"] == pytest.approx(0.1) and row["95% interval"] == "[+0.1000, +0.1000]"
    assert row["pairs"] == 2 and row["p"] == pytest.approx(0.5) and row["mark"] == ""
    lone = table[table["run"] == "ff-am2 · λ=0.6"]  # λ=0.6: no baseline run at that scale
    assert (lone["vs"] == "none at these scales").all() and lone["Δ"].isna().all()
    assert any("ff-am2 · λ=0.6" in c.value for c in app.caption)
    assert [t.y[0] for t in figure(app, "cmp_forest").data] == ["ff-am2 · λ=0.8"]
    fronts = figure(app, "cmp_fronts")
    assert {t.name for t in fronts.data} == {"baseline", "ff-am2", "λ=0.6", "λ=0.8"}
    # one baseline run for all: every other run against it, never the baseline itself
    app.selectbox(key="cmp_baseline").set_value("r-baseline")
    ok(app.run())
    assert set(frame(app, "Δ")["run"]) == {"ff-am2 · λ=0.8", "ff-am2 · λ=0.6"}
    assert len(figure(app, "cmp_forest").data) == 2
    app.selectbox(key="cmp_front_x").set_value("ffc_rate")
    app.selectbox(key="cmp_baseline").set_value("r-ffam2")
    ok(app.run())
    assert set(frame(app, "Δ")["run"]) == {"baseline · λ=0.8", "ff-am2 · λ=0.6"}
    assert figure(app, "cmp_fronts").layout.xaxis.title.text == "ffc_rate"


def test_sql_page_runs_queries_and_refuses_writes(app, fixture_store):
    from tests.app.conftest import store_snapshot

    before = store_snapshot(fixture_store["path"])
    ok(app.run())
    goto(app, "views/sql.py")
    app.text_area(key="sql_text").set_value("select preset, count(*) as n from samples join runs using (run_id) "
                                            "group by preset order by preset")
    app.button(key="sql_run").click()
    ok(app.run())
    df = frame(app, "preset")
    assert df.to_dict("list") == {"preset": ["baseline", "ff-am2"], "n": [4, 7]}
    assert figure(app, "sql_chart").data[0].type == "scatter"
    assert len(app.get("download_button")) == 2
    for bad in ("delete from samples", "copy runs to '/tmp/x.csv'", "select * from read_csv('/etc/passwd')",
                "select 1; select 2"):
        app.text_area(key="sql_text").set_value(bad)
        app.button(key="sql_run").click()
        app.run()
        assert not app.exception
        assert len(app.error) == 1, bad
    app.selectbox(key="sql_example").set_value(
        "Face fail count (FFC) and mean similarity per run")
    ok(app.run())
    app.button(key="sql_run").click()
    ok(app.run())
    assert len(frame(app, "ffc_rate")) == 3
    assert store_snapshot(fixture_store["path"]) == before


def test_figures_page_lists_charts(app):
    ok(app.run())
    goto(app, "views/figures.py")  # a fresh session: the standard figures are made on the page
    assert any("Face fail count" in t.label for t in app.tabs)
    assert not [s for s in app.selectbox if s.key == "fig_pick"]  # no other page visited yet
    goto(app, "views/faces.py")
    goto(app, "views/figures.py")
    options = app.selectbox(key="fig_pick").options
    assert len(options) == 4 and any("Face fail count" in o for o in options)


def test_figures_page_exports_from_the_app(app, tmp_path):
    from workbench.data import export as wbfigures

    if wbfigures.browser_path() is None:
        pytest.skip("Chromium not found (apt-get install -y chromium): static export unavailable")
    ok(app.run())
    goto(app, "views/faces.py")
    goto(app, "views/figures.py")
    app.selectbox(key="fig_pick").set_value("faces_ffc")
    app.text_input(key="fig_dir").set_value(str(tmp_path / "figs"))
    app.multiselect(key="fig_formats").set_value(["png", "svg"])
    ok(app.run())
    app.button(key="fig_export").click()
    ok(app.run())
    assert "Written" in app.success[0].value
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["Face-fail-count-FFC-per-run.json", "Face-fail-count-FFC-per-run.png",
                     "Face-fail-count-FFC-per-run.svg"]
    side = json.loads((tmp_path / "figs" / "Face-fail-count-FFC-per-run.json").read_text())
    assert side["query"] == "workbench:face_counts" and "face_summary" in side["sql"]
    assert sorted(side["run_ids"]) == ["r-baseline", "r-ffam2", "r-ffam2-06"]
    wbfigures.shutdown()


def test_empty_and_missing_store(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from store.db import open_store
    from tests.app.conftest import APP

    open_store(tmp_path / "empty")
    monkeypatch.setenv("FASTFACE_STORE", str(tmp_path / "empty"))
    at = AppTest.from_file(APP, default_timeout=60)
    ok(at.run())
    assert "No runs yet" in at.info[0].value
    for page in PAGES[1:5]:
        at.switch_page(page)
        ok(at.run())
        assert "No runs yet" in at.info[0].value
    monkeypatch.setenv("FASTFACE_STORE", str(tmp_path / "nowhere"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception and "does not exist" in at.error[0].value
    monkeypatch.delenv("FASTFACE_STORE")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception and "No store selected" in at.info[0].value


def test_page_render_times(app, capsys):
    """Render time of every page on the fixture (cold caches excluded: second visit), printed, not
    asserted (time depends on the machine's load; tests/benchmarks/bench_workbench.py measures it):
    what is asserted is that every page renders again, warm, without an exception and with the
    content of its cold render (title, tables, charts, text blocks: served from the caches, the
    same page)."""
    def content(at):
        return (at.title[0].value if at.title else None, len(at.dataframe), len(at.get("plotly_chart")),
                len(at.markdown), len(at.metric))

    ok(app.run())
    cold = {}
    for page in PAGES:
        cold[page] = content(goto(app, page))
    assert [t for t, *_ in cold.values()][1:] == ["Samples", "Attention statistics", "Faces", "Compare", "SQL",
                                                  "Figures"]
    times, warm = {}, {}
    for page in PAGES:
        app.switch_page(page)
        t0 = time.perf_counter()
        ok(app.run())
        times[page] = time.perf_counter() - t0
        warm[page] = content(app)
    with capsys.disabled():
        print("\npage render times (s, warm):", {p.split("/")[1]: round(t, 3) for p, t in times.items()})
    assert warm == cold
    assert sum(n for _, n, *_ in cold.values()) > 0 and sum(c for _, _, c, *_ in cold.values()) > 0


def test_live_run_progress_and_refresh(tmp_path, monkeypatch):
    """A run being written: the Runs page shows its progress and Refresh re-reads the store."""
    from streamlit.testing.v1 import AppTest

    from store.records import RunRecord, SampleRecord
    from store.writer import StoreWriter
    from tests.app.conftest import APP
    from tests.app.fixture_store import _png, base_image

    png = _png(base_image())
    path = tmp_path / "live"
    writer = StoreWriter(path, worker_id="live-test", durable=False)
    writer.begin_run(RunRecord(run_id="live", config={"preset": "ff-am2"}, preset="ff-am2", ip_scale=0.8))

    def add(i):
        writer.write_sample("live", SampleRecord(sample_key=f"s{i}", identity="a", prompt="p",
                                                 category="realistic", seed=i, image_png=png, width=64,
                                                 height=64))
        writer.set_status("live", "running", n_done=i + 1, n_failed=0, n_total=4)

    add(0)
    monkeypatch.setenv("FASTFACE_STORE", str(path))
    at = AppTest.from_file(APP, default_timeout=60)
    ok(at.run())
    assert any("1 / 4 samples" in p.proto.text for p in at.get("progress"))
    add(1)
    at.button(key="runs_refresh").click()
    ok(at.run())
    assert any("2 / 4 samples" in p.proto.text for p in at.get("progress"))
    assert frame(at, "progress")["progress"].tolist() == [0.5]
    writer.set_status("live", "completed", n_done=2, n_total=2)
    at.button(key="runs_refresh").click()
    ok(at.run())
    assert not at.get("progress") and frame(at, "progress")["status"].tolist() == ["completed"]
    writer.close()


def test_defaults_newest_sweep_with_its_baselines(sweep_store, monkeypatch):
    """Two sweeps: the pages start on the newest one (6 presets x 2 scales, baselines first),
    the sidebar tells so on first load, and Compare pairs each run with the baseline run at its
    scales -- also one that is not among the chosen runs -- and never a run with itself."""
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    monkeypatch.setenv("FASTFACE_STORE", sweep_store["path"])
    at = AppTest.from_file(APP, default_timeout=60)
    ok(at.run())
    newest = sweep_store["newest"]
    chosen = at.multiselect(key="runs_pick").value
    assert sorted(chosen) == sorted(newest) and chosen[:2] == ["hyper-baseline-ip0.5", "hyper-baseline-ip0.8"]
    assert not set(sweep_store["old"]) & set(chosen)
    assert "Runs chosen: 12, the newest sweep with 2 baseline runs (6 presets × 2 IP scales)" in sidebar_text(at)
    goto(at, "views/compare.py")
    assert at.selectbox(key="cmp_baseline").value == selection.MATCHED
    table = frame(at, "Δ")
    runs, bases = table["run"], table["vs"]
    assert set(runs) == {f"{p} · λ={s:g}" for p in ("dcg", "am1", "am2", "ff-am1", "ff-am2") for s in (0.5, 0.8)}
    assert (runs != bases).all()
    assert (bases == "baseline · " + runs.str.split(" · ").str[1]).all()  # the baseline at the run's scale
    # only ff-am2 at 0.8 chosen: its baseline (not chosen) is still the one at 0.8 of its sweep
    goto(at, "views/runs.py")
    at.multiselect(key="runs_pick").set_value(["hyper-ff-am2-ip0.8"])
    ok(at.run())
    goto(at, "views/compare.py")
    table = frame(at, "Δ")
    assert set(table["vs"]) == {"baseline"} and set(table["run"]) == {"ff-am2"}  # one scale: presets only
    assert any("λ=0.8" in c.value for c in at.caption)  # the shared scale is stated once
