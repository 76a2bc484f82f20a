"""The Studio page through AppTest on the face world (one sample per action): an edit changes the
image and is reproducible, Keep writes two runs with the edit in their stored configs, a 2x2 grid
writes four runs and draws them, a photo without a face is refused with nothing written, invalid
values are refused with the ConfigError line. References: the preset file's values, a generation
without the Studio (plain ``pipe.generate``), the store's own SQL."""

from __future__ import annotations

import io
import json

import duckdb
import numpy as np
import pytest

from tests.app.conftest import APP, store_snapshot

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

EDIT = "studio_p_am__am1__scale_up"
TIMEOUT = 240  # the first run loads the face world (~10-20 s on 2 busy cores)


@pytest.fixture(scope="module")
def studio_store(tmp_path_factory):
    """A fixture store of its own (the Studio writes into it)."""
    from tests.app.fixture_store import build

    base = tmp_path_factory.mktemp("studio")
    return build(base / "store", id_image_dir=base / "ids")


@pytest.fixture
def studio(studio_store, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FASTFACE_STORE", studio_store["path"])
    monkeypatch.setenv("FASTFACE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/studio.py")
    return ok(at.run())


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def runs_of(path: str) -> dict[str, dict]:
    with duckdb.connect(f"{path}/catalog.duckdb", read_only=True) as con:
        return {r[0]: {"config": json.loads(r[1]), "variation": r[2] and json.loads(r[2])}
                for r in con.execute("select run_id, config_json, variation_json from runs").fetchall()}


def generate(at):
    at.button(key="studio_generate").click()
    return ok(at.run())


def test_edit_changes_the_image_reproducibly_and_keep_writes_two_runs(studio, studio_store):
    at = studio
    assert at.text_input(key=EDIT).value == "1.45"  # ff-am1.json: am1 scale_up 1.45 (METHOD.md section 5)
    at.text_input(key=EDIT).set_value("3")
    generate(at)
    first = at.session_state["studio_result"]
    base, edited = first["base"], first["edited"]
    assert base.ok and edited.ok and base.config.am.am1.scale_up == 1.45 and edited.config.am.am1.scale_up == 3.0
    assert first["coords"] == {"am.am1.scale_up": 3.0}
    assert edited.png != base.png
    # AM1 (METHOD.md Eq. 8): post = min(s * A^p, max) per head; at the first up site of step 0 the
    # pre maps of both images are the same (nothing before it differs), so the head-mean post maps
    # differ by the factor of the scales, 3 / 1.45, cell by cell
    from probes.sites import parse_site

    first_up = min((s for s in base.maps.sites if parse_site(s).part == "up"),
                   key=lambda s: (parse_site(s).block, parse_site(s).attention, parse_site(s).layer))
    one = dict(step=0, site=first_up, tokens=(0, 1, 2, 3))
    np.testing.assert_allclose(edited.maps.map(stage="pre", **one), base.maps.map(stage="pre", **one), rtol=2e-3)
    np.testing.assert_allclose(edited.maps.map(stage="post", **one), base.maps.map(stage="post", **one) * 3 / 1.45,
                               rtol=4e-3, atol=1e-4)
    # the edited image is the image a plain generation (no Studio, no probe) of that config gives
    from workbench.studio.setup import engine_for

    engine = engine_for("hyper", "face")
    subject = first["subject"]
    identity = engine.pipe.encode_identity(subject.photo, name=subject.identity, on_multiple="first")
    plain = engine.pipe.generate(subject.prompt, identity, edited.config, seed=subject.seed)
    assert np.array_equal(np.asarray(plain.image.convert("RGB")), edited.image())
    # a second Generate on the same seed gives the very same images
    generate(at)
    second = at.session_state["studio_result"]
    assert second["edited"].png == edited.png and second["base"].png == base.png
    assert len(at.get("plotly_chart")) >= 4  # two overlays, the difference, the histograms

    before = runs_of(studio_store["path"])
    at.button(key="studio_keep").click()
    ok(at.run())
    after = runs_of(studio_store["path"])
    new = {k: v for k, v in after.items() if k not in before}
    assert len(new) == 2
    kept = sorted(new.values(), key=lambda r: len(r["variation"]["coords"]))
    assert kept[0]["config"]["am"]["am1"]["scale_up"] == 1.45 and kept[0]["variation"]["coords"] == {}
    assert kept[1]["config"]["am"]["am1"]["scale_up"] == 3.0
    assert kept[1]["variation"]["coords"] == {"am.am1.scale_up": 3.0}
    with duckdb.connect(f"{studio_store['path']}/catalog.duckdb", read_only=True) as con:
        png = con.execute("select image_png from samples where run_id = ?",
                          [next(k for k, v in new.items() if v["variation"]["coords"])]).fetchone()[0]
    assert bytes(png) == edited.png  # Keep stores the image that was shown

    # the prompt words' row: every word of the prompt offered, 'person' first; the edited map of a
    # word is the mean over the up sites (each upsampled to the finest grid) of the stored text
    # maps of that word at the overlay's step, read back from the kept run with plain DuckDB
    prompt = first["subject"].prompt
    word_box = at.selectbox(key="studio_word")
    assert word_box.value == "person"
    assert list(word_box.options) == ["<start>", *dict.fromkeys(prompt.split()), "<end>"]
    word = prompt.split()[-1]
    word_box.set_value(word)
    ok(at.run())
    assert any(f"Word “{word}”: the text attention" in c.value for c in at.caption), [c.value for c in at.caption]
    step = at.select_slider(key="studio_ov_step").value
    shown = np.asarray(at.session_state["wb_figures"]["studio_word_edited"]["figure"].data[-1].z, dtype=float)
    edited_run = next(k for k, v in new.items() if v["variation"]["coords"])
    with duckdb.connect(f"{studio_store['path']}/catalog.duckdb", read_only=True) as con:
        rows = con.execute("select site, data, height, width from maps where run_id = ? and stream = 'text' "
                           "and word = ? and step = ? and branch = 'text_id' and stage = 'pre' and token = -1 "
                           "and site like 'up_blocks%'", [edited_run, word, step]).fetchall()
    assert rows
    grids = [np.asarray(d, dtype=np.uint16).view(np.float16).astype(float).reshape(h, w) for _, d, h, w in rows]
    H = max(g.shape[0] for g in grids)
    expected = np.mean([np.kron(g, np.ones((H // g.shape[0], H // g.shape[1]))) for g in grids], axis=0)
    np.testing.assert_allclose(shown, expected, rtol=1e-6, atol=1e-7)
    assert 0 < expected.max() <= 1  # a share of the softmax over the prompt's tokens


def test_a_2x2_grid_adds_four_runs_and_draws_them(studio, studio_store):
    at = studio
    at.tabs  # noqa: B018 both tabs render in AppTest
    at.text_input(key="studio_g_path0").set_value("am.am1.scale_up")
    at.text_input(key="studio_g_vals0").set_value("1.0,2.5")
    at.text_input(key="studio_g_path1").set_value("guidance.beta[3]")
    at.text_input(key="studio_g_vals1").set_value("1,3")
    ok(at.run())
    before = runs_of(studio_store["path"])
    at.button(key="studio_g_generate").click()
    ok(at.run())
    after = runs_of(studio_store["path"])
    new = {k: v for k, v in after.items() if k not in before}
    assert len(new) == 4
    got = sorted((v["config"]["am"]["am1"]["scale_up"], v["config"]["guidance"]["beta"][3]) for v in new.values())
    assert got == [(1.0, 1.0), (1.0, 3.0), (2.5, 1.0), (2.5, 3.0)]
    assert {v["variation"]["grid"] for v in new.values()} == {at.session_state["studio_grid_id"]}
    fig = at.session_state["wb_figures"]["studio_grid_figure"]["figure"]
    assert sum(t.type == "image" for t in fig.data) == 4
    labels = [a.text for a in fig.layout.annotations]
    # the paper's layout: each row headed with its value, each column with its, each image with its metrics
    assert {"<b>am.am1.scale_up = 1.0</b>", "<b>am.am1.scale_up = 2.5</b>"} <= set(labels), labels
    assert {"<b>guidance.beta[3] = 1.0</b>", "<b>guidance.beta[3] = 3.0</b>"} <= set(labels), labels
    assert sum(t.startswith(("ID ", "no face")) for t in labels) == 4, labels


def test_an_upload_without_a_face_is_refused_and_writes_nothing(studio, studio_store, tmp_path):
    from PIL import Image

    at = studio
    at.selectbox(key="studio_identity").set_value("Upload a photo…")
    ok(at.run())
    snapshot = store_snapshot(studio_store["path"])
    buf = io.BytesIO()
    Image.fromarray(np.full((96, 96, 3), 180, np.uint8)).save(buf, format="PNG")
    at.file_uploader(key="studio_upload").set_value(("wall.png", buf.getvalue(), "image/png"))
    at.run()
    assert not at.exception
    assert any("cannot be used" in e.value and "no face found" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert at.button(key="studio_generate").disabled
    assert store_snapshot(studio_store["path"]) == snapshot
    assert not (tmp_path / "cache" / "studio-photos").exists() or \
        not list((tmp_path / "cache" / "studio-photos").glob("upload-*"))


@pytest.mark.parametrize("field, value, message", [
    ("studio_p_am__am2__steepness", "-1/5/5/5", "below the minimum 0"),
    ("studio_path_lines", "am.am2.steepness[7]=1", "step 7 is past the schedule's 4 steps"),
])
def test_invalid_values_are_refused(studio, field, value, message):
    at = studio
    at.selectbox(key="studio_preset").set_value("ff-am2")
    ok(at.run())
    (at.text_area if field == "studio_path_lines" else at.text_input)(key=field).set_value(value)
    at.run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="studio_generate").disabled
