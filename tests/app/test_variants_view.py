"""The first look at Samples, Faces and Compare on a demo-like store (two sweeps, maps of ID
tokens 0-3 on the text_id branch): the variants open on one IP scale with at most 6 panels per
row, labelled by what differs (never the run id), overlay = ID tokens 1-3 summed over the up
part, one colour scale shared by the panels; Faces draws every value (no violins) labelled by
preset and scale; Compare's metric names are short and unique."""

import numpy as np
import pytest

from tests.app.test_app_pages import figure, frame, goto, ok

UP_SITE = "up_blocks.0.attentions.2.transformer_blocks.6.attn2"


@pytest.fixture(scope="module")
def token_store(tmp_path_factory):
    from tests.app.fixture_store import build_sweeps

    base = tmp_path_factory.mktemp("wbtokens")
    return build_sweeps(base / "store", id_image_dir=base / "ids", tokens=(0, 1, 2, 3), branches=("text_id",))


@pytest.fixture
def at(token_store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    monkeypatch.setenv("FASTFACE_STORE", token_store["path"])
    return AppTest.from_file(APP, default_timeout=90)


def stored_map(path, run_id, token, step=0, stage="post"):
    """One map read with plain DuckDB and decoded by the store's decoder (not the page's code)."""
    import duckdb

    from store.encode import decode_map

    con = duckdb.connect(f"{path}/catalog.duckdb", read_only=True)
    try:
        data, enc, scale, h, w = con.execute(
            "select m.data, m.encoding, m.scale, m.height, m.width from maps m join samples s using (run_id, sample_key) "
            "where m.run_id = ? and s.identity = 'id0' and s.prompt = 'a photo of a person in a park' and s.seed = 1 "
            "and m.site = ? and m.step = ? and m.token = ? and m.stage = ? and m.branch = 'text_id'",
            [run_id, UP_SITE, step, token, stage]).fetchone()
    finally:
        con.close()
    return decode_map(np.asarray(data, dtype=np.uint16), enc, scale, h, w)


def panels(at):
    figs = at.session_state["wb_figures"]
    return {k[len("overlay_"):]: v["figure"] for k, v in figs.items() if k.startswith("overlay_")}


def test_samples_variants_open_on_a_readable_default(at, token_store):
    ok(at.run())
    goto(at, "views/samples.py")
    at.selectbox(key="smp_unit").set_value(("id0", "a photo of a person in a park", 1))
    ok(at.run())
    assert at.radio(key="ov_scope").value == "mean over a part / block" and at.selectbox(key="ov_part").value == "up"
    assert at.selectbox(key="ov_token").value == (1, 2, 3)  # the ID tokens that attend to the face, summed
    assert at.selectbox(key="smp_per_row").value <= 6
    shown = at.multiselect(key="smp_runs").value
    assert sorted(shown) == sorted(r for r in token_store["newest"] if r.endswith("ip0.8"))  # one scale: 6 panels
    heads = [m.value for m in at.markdown if m.value.startswith("**")]
    assert heads == ["**Reference photo**"] + [f"**{p}**" for p in ("baseline", "dcg", "am1", "am2", "ff-am1", "ff-am2")]
    assert not any("hyper-" in h for h in heads)  # labelled by preset, never by run id
    assert any("All panels: λ=0.8" in c.value for c in at.caption)
    figs = {r: f for r, f in panels(at).items() if r in shown}
    assert len(figs) == 6
    # the overlay is the sum of the stored maps of tokens 1-3 (one up site: the part mean is that site)
    run = "hyper-ff-am1-ip0.8"
    expect = sum(stored_map(token_store["path"], run, t) for t in (1, 2, 3))
    np.testing.assert_allclose(np.asarray(figs[run].data[1].z, dtype=float), expect, rtol=1e-6, atol=1e-9)
    # one colour scale: every panel's zmax is the largest value of any shown panel
    tops = {r: float(np.nanmax(np.asarray(f.data[1].z, dtype=float))) for r, f in figs.items()}
    assert [f.data[1].zmax for f in figs.values()] == pytest.approx([max(tops.values())] * 6)
    assert len({round(v, 9) for v in tops.values()}) > 1  # (the panels do differ)
    assert any("in every panel" in c.value for c in at.caption)
    at.radio(key="ov_scale").set_value("one scale per panel (its own max)")
    ok(at.run())
    for r, f in panels(at).items():
        if r in shown:
            assert f.data[1].zmax == pytest.approx(tops[r])
    # the colour bar sits below the image inside the figure: room for it in the bottom margin
    f = figs[run]
    assert f.data[1].colorbar.yanchor == "top" and f.data[1].colorbar.y == 0 and f.layout.margin.b >= 50


def test_faces_shows_every_value_labelled_by_preset_and_scale(at):
    ok(at.run())
    goto(at, "views/faces.py")
    size = figure(at, "faces_size")
    assert {t.type for t in size.data} == {"box"} and all(t.boxpoints == "all" for t in size.data)
    ticks = [t.y[0] for t in size.data]
    assert ticks[:2] == ["baseline · λ=0.5", "baseline · λ=0.8"] and len(set(ticks)) == 12
    assert "run" in frame(at, "ffc").columns and "dcg · λ=0.5" in set(frame(at, "ffc")["run"])


def test_compare_metric_names_short_and_unique(at):
    ok(at.run())
    goto(at, "views/compare.py")
    table = frame(at, "Δ")
    assert set(table["metric"]) == {"aesthetic", "clip_t", "face_similarity", "id_sim"}
    assert not table.duplicated(["run", "metric"]).any()
    models = frame(at, "metric series")
    assert dict(zip(models["metric series"], models["model"]))["id_sim"] == "arcface@1"
