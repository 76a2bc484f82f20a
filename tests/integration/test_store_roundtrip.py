"""Writer -> Parquet -> SQL views, in one process: encodings, summaries, analyses, run life cycle."""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store import encode  # noqa: E402
from store.db import connect_read_only  # noqa: E402
from store.layout import StoreError  # noqa: E402
from store.queries import run_query  # noqa: E402
from store.records import FaceRecord, MapRecord, MetricRecord, SampleRecord, SiteRecord  # noqa: E402
from store.writer import RunConfigMismatch, StoreWriter  # noqa: E402
from tests.store_helpers import SITE_KEYS, make_run, make_sample, tiny_png, write_samples  # noqa: E402

SITE = SITE_KEYS[2]


@pytest.fixture
def writer(tmp_path):
    w = StoreWriter(tmp_path / "store", worker_id="w0", durable=False)
    w.begin_run(make_run("r1"))
    yield w
    w.close()


def ok_sample(key="s1", w=64, h=64):
    return SampleRecord(sample_key=key, identity="alice", prompt="a photo", category="realistic", seed=1,
                        image_png=tiny_png(), width=w, height=h)


def test_f16_u8_none_maps_decode_in_sql_and_summaries_match(writer, tmp_path):
    rng = np.random.default_rng(7)
    signed = rng.standard_normal((6, 10)) * 3            # pre-softmax-like, negative values
    probs = rng.random((12, 8)) ** 5
    probs /= probs.sum()
    records = [MapRecord.from_map(signed, site=SITE, step=0, branch="id", stage="pre", encoding="f16"),
               MapRecord.from_map(probs, site=SITE, step=0, branch="id", stage="post", encoding="u8"),
               MapRecord.from_map(probs, site=SITE, step=1, branch="id", stage="post", encoding="f16"),
               MapRecord.from_map(probs, site=SITE, step=2, branch="id", stage="post", encoding="none")]
    originals = {(0, "pre"): signed, (0, "post"): probs, (1, "post"): probs, (2, "post"): probs}
    assert writer.write_sample("r1", ok_sample(), maps=records,
                               sites=[SiteRecord.from_key(SITE, 20, 12, 8)])
    con = connect_read_only(tmp_path / "store")
    df = run_query(con, "maps_for_sample", run_id="r1", sample_key="s1")
    assert len(df) == 4
    for row in df.itertuples():
        orig = originals[(row.step, row.stage)]
        s = encode.summarise(orig)
        for k in ("min", "mean", "std", "max", "q50", "q90", "q99"):
            assert getattr(row, k) == s[k], k                        # float64 stored exactly
        if s["entropy"] is None:
            assert pd.isna(row.entropy)
        else:
            assert row.entropy == s["entropy"]
        np.testing.assert_array_equal(np.asarray(row.hist), s["hist"])
        assert row.n_values == orig.size
        if row.encoding == "none":
            assert row.values is None or row.values is pd.NA
            continue
        data, scale = encode.encode_map(orig, row.encoding)
        values = np.asarray(row.values, dtype=np.float32).reshape(row.height, row.width)
        np.testing.assert_array_equal(values, encode.decode_map(data, row.encoding, scale, row.height, row.width))
        assert np.abs(values - orig).max() <= encode.max_abs_error(orig, row.encoding)
    con.close()


def test_f16_to_float_macro_is_exact_for_all_65536_patterns(writer, tmp_path):
    con = connect_read_only(tmp_path / "store")
    got = np.array(con.execute("select list(f16_to_float(h::usmallint) order by h) from range(65536) t(h)")
                   .fetchall()[0][0], dtype=np.float32)
    want = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(got, want)     # NaN == NaN, subnormals and infinities included
    con.close()


def test_map_face_mass_on_a_hand_built_map(writer, tmp_path):
    # 64x64 image, 4x4 map: cell centres at 8, 24, 40, 56 px
    m = np.array([[0.5, 0.25, 0.0, 0.5],
                  [0.25, 0.125, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 0.0],
                  [0.125, 0.0, 0.0, 0.0]])
    face = FaceRecord(role="generated", detected=True, backend="hand", bbox=(0, 0, 32, 32),
                      # keypoints span x 8..24, y 8..40 -> ellipse centre (16, 24), a = 16, b = 40
                      kps=[8, 8, 24, 8, 16, 20, 8, 40, 24, 40], similarity=0.5)
    assert writer.write_sample("r1", ok_sample(), maps=[MapRecord.from_map(m, site=SITE, step=0, branch="id")],
                               faces=[face], sites=[SiteRecord.from_key(SITE, 20, 4, 4)])
    undetected = FaceRecord(role="generated", detected=False, backend="hand")
    assert writer.write_sample("r1", ok_sample("s2"), maps=[MapRecord.from_map(m, site=SITE, step=0, branch="id")],
                               faces=[undetected])
    con = connect_read_only(tmp_path / "store")
    rows = con.execute("select * from map_face_mass").df()
    assert list(rows.sample_key) == ["s1"]      # the undetected face has no geometry
    r = rows.iloc[0]
    # box: the top-left 2x2 cells (centres 8 and 24 <= 32) hold 0.5 + 0.25 + 0.25 + 0.125 of 1.75
    assert r.n_box_cells == 4 and r.mass_in_box == pytest.approx(1.125 / 1.75)
    # ellipse: columns 0-1 of every row (((8-16)/16)^2 + ((56-24)/40)^2 = 0.89 <= 1): 8 cells, mass 1.25
    assert r.n_ellipse_cells == 8 and r.mass_in_ellipse == pytest.approx(1.25 / 1.75)
    # threshold 0.5 * max = 0.25: cells (0,0) (0,1) (1,0) (0,3); 3 inside the box -> 3 / (4 + 4 - 3)
    assert r.n_thr_cells == 4 and r.iou_box == pytest.approx(0.6)
    assert r.iou_ellipse == pytest.approx(3 / (4 + 8 - 3))
    assert r.iou_threshold == 0.5
    lower = run_query(con, "face_mass_for_run", run_id="r1", thr=0.1)   # 0.05 -> also (1,1) and (3,0)
    assert lower.iloc[0].n_thr_cells == 6 and lower.iloc[0].iou_box == pytest.approx(4 / 6)
    con.close()


def test_run_life_cycle_and_idempotence(writer, tmp_path):
    again = writer.begin_run(make_run("r1", notes="resumed"))           # notes/host do not define a run
    assert again["config_json"] == make_run("r1").row()["config_json"]
    with pytest.raises(RunConfigMismatch, match="ip_scale"):
        writer.begin_run(make_run("r1", ip_scale=0.5))
    with pytest.raises(StoreError, match="begin_run"):
        writer.write_sample("nope", ok_sample())
    with pytest.raises(StoreError, match="invalid sample_key"):
        writer.write_sample("r1", ok_sample("../escape"))
    assert write_samples(writer, "r1", range(3)) == 3
    assert write_samples(writer, "r1", range(3)) == 0                   # already committed: no-op
    failed = make_sample(9, fail=True)[0]
    assert writer.write_sample("r1", failed)
    assert len(writer.done_sample_keys("r1")) == 4
    writer.set_status("r1", "interrupted", n_done=4, message="SIGTERM")
    con = connect_read_only(tmp_path / "store")
    assert con.execute("select status, n_done, status_message from runs").fetchall() == [("interrupted", 4, "SIGTERM")]
    assert con.execute("select count(*) from run_events").fetchall() == [(3,)]  # running, running, interrupted
    time.sleep(0.002)
    writer.set_status("r1", "completed", n_done=4)
    assert con.execute("select status from runs").fetchall() == [("completed",)]
    fs = con.execute("select n_samples, n_ok, n_failed, n_evaluated, ffc, n_faces_detected from face_summary").fetchall()
    assert fs == [(4, 3, 1, 3, 0, 3)]
    prog = run_query(con, "run_progress", run_id="r1")
    assert prog.n_committed[0] == 4 and prog.n_failed_committed[0] == 1
    with pytest.raises(StoreError):
        writer.set_status("r1", "paused")
    con.close()


def test_constraint_violations_are_refused_before_commit(writer, tmp_path):
    bad = SampleRecord(sample_key="s1", identity="a", prompt="p", category="realistic", seed=1,
                       status="ok", image_png=None, width=64, height=64)           # ok without image
    with pytest.raises(StoreError, match="CHECK"):
        writer.write_sample("r1", bad)
    m = MapRecord.from_map(np.ones((2, 2)), site=SITE, step=0, branch="id")
    with pytest.raises(StoreError, match="PRIMARY KEY|Duplicate key"):
        writer.write_sample("r1", ok_sample(), maps=[m, m])                        # duplicate map key
    assert writer.done_sample_keys("r1") == set()
    assert not list((tmp_path / "store" / "tmp").iterdir())                        # nothing left behind


def test_late_metrics_latest_wins(writer, tmp_path):
    write_samples(writer, "r1", range(2))
    sample, _, _, fixture_metrics, _ = make_sample(0)
    key = sample.sample_key
    (written,) = [m for m in fixture_metrics if m.name == "clip_t"]  # the value the fixture committed with the sample
    writer.add_metrics("r1", key, [MetricRecord("clip_t", 0.5, "clip@1"), MetricRecord("aesthetic", 6.0, "aes@2")])
    time.sleep(0.002)
    writer.add_metrics("r1", key, [MetricRecord("clip_t", 0.75, "clip@1")])
    with pytest.raises(StoreError, match="not committed"):
        writer.add_metrics("r1", "nope", [MetricRecord("clip_t", 1.0)])
    con = connect_read_only(tmp_path / "store")
    try:
        got = dict(con.execute("select name || '/' || model, value from metrics where sample_key = ?", [key]).fetchall())
    finally:
        con.close()
    assert written.model == "clip-vit-l-14@1" and 0.2 <= written.value <= 0.3
    assert got == {"clip_t/clip-vit-l-14@1": written.value, "clip_t/clip@1": 0.75, "aesthetic/aes@2": 6.0}


def test_reader_sees_new_commits_without_reconnecting(writer, tmp_path):
    con = connect_read_only(tmp_path / "store")
    counts = []
    for i in range(3):
        write_samples(writer, "r1", [i])
        counts.append(con.execute("select count(*) from samples").fetchall()[0][0])
    assert counts == [1, 2, 3]
    assert con.execute("select count(distinct site) from sites").fetchall() == [(3,)]
    con.close()
