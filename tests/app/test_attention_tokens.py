"""The Attention page's defaults on a store with the four ID tokens of the real capture (0-3): the
face tokens 1-3 pooled per UNet part, the face-mass figure across runs with its counts (maps
covered, excluded and why, maps with negative values), against numbers of the constructed store.

The store: runs baseline and ff-am2 (λ 0.8), 3 samples each (the third without a detected face),
3 sites (down, mid, up; 4 x 4 maps), 2 steps, branch text_id, tokens 0-3, stages pre and post.
Token 0 puts its mass on the background cells, tokens 1-3 on the face box (the 2 x 2 centre
cells); ff-am2's post maps of token 1 have a negative cell.  Beside them (issue 27): word maps of
two prompt words (stream 'text', pre), which no ID average may count, and the balance of every
site and step: text term 1 everywhere; ID term 1 everywhere in baseline, 3 on the face cells and 1
elsewhere in ff-am2 (mean 1.5)."""

import numpy as np
import pytest

from store.records import BalanceRecord, FaceRecord, MapRecord, SampleRecord, SiteRecord, sample_key
from store.writer import StoreWriter
from tests.store_helpers import make_run, tiny_png
from workbench.data import queries

SITES = ["down_blocks.1.attentions.0.transformer_blocks.0.attn2",
         "mid_block.attentions.0.transformer_blocks.0.attn2",
         "up_blocks.0.attentions.0.transformer_blocks.0.attn2"]
BOX = (16.0, 16.0, 48.0, 48.0)  # on a 64 x 64 image: the centre 2 x 2 cells of a 4 x 4 map (share 0.25)
FACE = np.zeros((4, 4), bool)
FACE[1:3, 1:3] = True


def _map(token: int, negative: bool) -> np.ndarray:
    m = np.where(FACE, 1.0 if token else 0.25, 0.25 if token else 1.0)  # f16-exact values
    if negative:
        m[0, 0] = -0.5
    return m


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens") / "store"
    w = StoreWriter(root, durable=False)
    sites = [SiteRecord.from_key(s, heads=10, height=4, width=4) for s in SITES]
    for run, preset in (("r-base", "baseline"), ("r-ffam2", "ff-am2")):
        w.begin_run(make_run(run, preset=preset, ip_scale=0.8))
        for i in range(3):
            key = sample_key("id0", f"p{i}", i)
            s = SampleRecord(sample_key=key, identity="id0", prompt=f"p{i}", category="realistic", seed=i,
                             status="ok", image_png=tiny_png(2, 2, i), width=64, height=64, sample_index=i)
            maps = [MapRecord.from_map(_map(t, preset == "ff-am2" and stage == "post" and t == 1), site=site,
                                       step=step, branch="text_id", token=t, stage=stage)
                    for site in SITES for step in (0, 1) for t in (0, 1, 2, 3) for stage in ("pre", "post")]
            maps += [MapRecord.from_map(np.full((4, 4), 0.5), site=site, step=step, branch="text_id", stage="pre",
                                        stream="text", word=word)
                     for site in SITES for step in (0, 1) for word in ("person", "<start>")]
            id_map = np.where(FACE, 3.0, 1.0) if preset == "ff-am2" else np.ones((4, 4))
            balance = [BalanceRecord(site=site, step=step, branch="text_id", text_norm=1.0,
                                     id_norm=float(id_map.mean()), height=4, width=4,
                                     text_norm_map=np.ones((4, 4), np.float32), id_norm_map=id_map.astype(np.float32))
                       for site in SITES for step in (0, 1)]
            detected = i != 2
            faces = [FaceRecord(role="generated", detected=detected, backend="synthetic-1", n_faces=int(detected),
                                bbox=BOX if detected else None, score=0.9 if detected else None)]
            w.write_sample(run, s, maps=maps, faces=faces, sites=sites, balance=balance)
    w.close()
    return str(root)


def test_defaults_are_the_face_tokens_and_the_across_runs_figure_counts(store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP
    from tests.app.test_app_pages import figure, goto, ok

    monkeypatch.setenv("FASTFACE_STORE", store)
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state[queries.STATE_RUNS] = ["r-base", "r-ffam2"]
    ok(app.run())
    goto(app, "views/attention.py")
    assert app.session_state["mr_tokens"] == [1, 2, 3] and app.session_state["mr_pool"] is True
    assert app.session_state["mass_tokens"] == [1, 2, 3] and app.session_state["steps_tokens"] == [1, 2, 3]
    fig = figure(app, "attn_mass_runs")
    bars = [t for t in fig.data if t.type == "bar"]
    assert [t.name for t in bars] == ["tokens 1-3 (mean)"] * 3           # one pooled bar per part
    assert all(list(t.y) == ["baseline", "ff-am2"] for t in bars)  # by what differs: the scale is shared
    # tokens 1-3: face cells 1.0, others 0.25 -> mass 4 / (4 + 12 x 0.25) = 4/7, share 4/16, ratio 16/7;
    # ff-am2 post token 1 has -0.5 in a background cell: its positive part is the same map with 0 there,
    # mass 4 / 6.75, so the pooled mean is (4/6.75 + 2 x 4/7) / 3
    base, ff = 4 / 7 / 0.25, (4 / 6.75 + 2 * 4 / 7) / 3 / 0.25
    for t in bars:
        assert list(t.x) == pytest.approx([base, ff], rel=1e-6)
    captions = " ".join(c.value for c in app.caption)
    # 2 runs x 3 samples x 3 sites x 2 steps x 3 tokens post maps; the sample without a face is left out
    assert "Covers 72 of 108 maps; 36 excluded: 36 of samples without a detected face." in captions
    assert "Maps with negative values: 18, counted on their positive part" in captions
    app.multiselect(key="mr_tokens").set_value([0])
    ok(app.run())
    token0 = [t for t in figure(app, "attn_mass_runs").data if t.type == "bar"]
    assert token0[0].name == "token 0"
    assert list(token0[0].x) == pytest.approx([0.25 / 3.25 / 0.25] * 2, rel=1e-6)   # background token: < 1


def test_word_maps_stay_out_of_the_id_averages_and_the_balance_tab(store, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP
    from tests.app.test_app_pages import figure, goto, ok

    monkeypatch.setenv("FASTFACE_STORE", store)
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state[queries.STATE_RUNS] = ["r-base", "r-ffam2"]
    ok(app.run())
    goto(app, "views/attention.py")
    app.multiselect(key="mr_tokens").set_value([])   # every ID token
    app.radio(key="mr_stage").set_value("pre")      # the stage of the word maps
    ok(app.run())
    assert app.multiselect(key="mr_tokens").options == ["0", "1", "2", "3"]  # no word map's token -1
    captions = " ".join(c.value for c in app.caption)
    # 2 runs x 3 samples x 3 sites x 2 steps x 4 ID tokens pre; the 72 word maps are not among them
    assert "Covers 96 of 144 maps; 48 excluded: 48 of samples without a detected face." in captions
    # the balance: ID share 1.5 / 2.5 = 0.6 against 0.5 (whole image); 3 / 4 against 1 / 2 in the face
    # box; 1 / 2 outside in both; the box split over the 2 samples with a face
    change = figure(app, "bal_change")
    bars = {(t.name, t.xaxis): list(t.y) for t in change.data}
    assert set(bars) == {("ff-am2", "x"), ("ff-am2", "x2"), ("ff-am2", "x3")}  # one run against baseline
    assert [a.text for a in change.layout.annotations] == ["whole image", "in face box", "outside face box"]
    assert bars[("ff-am2", "x")] == pytest.approx([0.1] * 3, abs=1e-6)
    assert bars[("ff-am2", "x2")] == pytest.approx([0.25] * 3, abs=1e-6)
    assert bars[("ff-am2", "x3")] == pytest.approx([0.0] * 3, abs=1e-6)
    assert "baseline 2, ff-am2 2" in captions

