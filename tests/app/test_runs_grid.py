"""The Runs page shows a parameter grid's runs with their coordinates (issue 26, item 4): a
'varied' column ('path=value, ...', 'base' for the grid's unchanged preset, empty for other
runs) and run labels that say what a cell varies."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from store.records import RunRecord, SampleRecord
from store.writer import StoreWriter
from tests.app.conftest import APP
from tests.app.fixture_store import _png, base_image
from workbench.charts.style import run_label


def _store(path):
    png = _png(base_image())
    cells = {"plain": None, "cell-base": {}, "cell-12": {"am.am1.scale_up": 1.2, "guidance.beta[3]": 3.0}}
    with StoreWriter(path, durable=False) as w:
        for run_id, coords in cells.items():
            variation = None if coords is None else {"base": "ff-am1", "grid": "ff-am1-g1", "coords": coords}
            w.begin_run(RunRecord(run_id=run_id, config={"x": run_id}, preset="ff-am1", ip_scale=0.8,
                                  variation=variation))
            w.write_sample(run_id, SampleRecord(sample_key="s0", identity="a", prompt="p", category="realistic",
                                                seed=50, image_png=png, width=64, height=64))
            w.set_status(run_id, "completed", n_done=1, n_total=1)


def test_runs_page_shows_the_grid_coordinates(tmp_path, monkeypatch):
    _store(tmp_path / "store")
    monkeypatch.setenv("FASTFACE_STORE", str(tmp_path / "store"))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception and not at.error
    table = next(d.value for d in at.dataframe if "varied" in d.value.columns)
    varied = dict(zip(table["run"], table["varied"]))
    assert varied["cell-12"] == "am.am1.scale_up=1.2, guidance.beta[3]=3.0"
    assert varied["cell-base"] == "base" and varied["plain"] == ""
    assert dict(zip(table["run"], table["grid"]))["cell-12"] == "ff-am1-g1"
    labels = at.multiselect(key="runs_pick").options
    assert "ff-am1 [am.am1.scale_up=1.2, guidance.beta[3]=3.0] λ=0.8 (cell-12)" in labels
    assert "ff-am1 [base] λ=0.8 (cell-base)" in labels and "ff-am1 λ=0.8 (plain)" in labels


def test_run_label_with_and_without_coordinates():
    assert run_label("r", "ff-am1", 0.8) == "ff-am1 λ=0.8 (r)"
    assert run_label("r", "ff-am1", 0.5, "ip_scale=0.5") == "ff-am1 [ip_scale=0.5] λ=0.5 (r)"
    assert run_label("r", "ff-am1", None, "") == "ff-am1 [base] (r)"
