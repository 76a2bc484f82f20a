"""Entropy and face mass of maps with negative values (the positive part, store/VIEWS.md "Maps with
negative values") against hand-computed numbers, in numpy (store.encode, store.summaries), torch
(probes.reduce) and SQL (map_face_mass_at); the counts of what the averages leave out; a store of
the old definition brought up to date by backfill and by compaction.

The hand map (values exact in float16), on a 64 x 64 image, the face box = its right column:

    0.5  -0.25        positive part  0.5  0     sum 1.0
    0.25  0.25                       0.25 0.25

    entropy     = -(0.5 ln 0.5 + 2 x 0.25 ln 0.25) = 1.5 ln 2
    mass_in_box = (0 + 0.25) / 1.0 = 0.25   (raw values: 0 / 0.75 = 0; shifted by the min: 0.5 / 1.75)
"""

import math
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from probes import reduce as R  # noqa: E402
from store import encode  # noqa: E402
from store.backfill import backfill, missing_summaries  # noqa: E402
from store.compact import compact  # noqa: E402
from store.db import connect_read_only  # noqa: E402
from store.records import FaceRecord, MapRecord, SampleRecord, SiteRecord, sample_key  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.store_helpers import IMAGE, SITE_KEYS, make_run, tiny_png  # noqa: E402

HAND = np.array([[0.5, -0.25], [0.25, 0.25]])
ENTROPY = 1.5 * math.log(2)
MASS = 0.25
BOX = (32.0, 0.0, 64.0, 64.0)           # cells 1 and 3 (centres at x = 48)
POSITIVE = np.array([[0.125, 0.25], [0.375, 0.25]])   # box mass (0.25 + 0.25) / 1.0 = 0.5
ZERO = np.zeros((2, 2))                 # no value > 0: entropy and mass undefined
SITE = SITE_KEYS[0]
NEW_COLUMNS = ("n_negative", "n_zero_sum", "n_no_data", "n_no_face")


def test_numpy_entropy_is_that_of_the_positive_part():
    assert encode.entropy(HAND) == pytest.approx(ENTROPY, rel=1e-12)
    assert encode.summarise(HAND)["entropy"] == pytest.approx(1.0397207708399179, rel=1e-12)
    assert encode.entropy(ZERO) is None
    assert encode.entropy(np.array([[-1.0, 0.0]])) is None   # nothing positive


def test_torch_entropy_is_that_of_the_positive_part():
    maps = torch.tensor(np.stack([HAND, ZERO, -np.ones((2, 2)), POSITIVE]), dtype=torch.float32)
    stats, hist = R.summarise(maps)
    ent = stats[:, R.SUMMARY_FIELDS.index("entropy")]
    assert float(ent[0]) == pytest.approx(ENTROPY, rel=1e-6)
    assert math.isnan(float(ent[1])) and math.isnan(float(ent[2]))
    p = POSITIVE.reshape(-1) / POSITIVE.sum()
    assert float(ent[3]) == pytest.approx(-(p * np.log(p)).sum(), rel=1e-6)
    assert float(stats[0, R.SUMMARY_FIELDS.index("min")]) == -0.25 and int(hist[0, 0]) == 1  # still described


def _sample(i: int, *, detected: bool = True, encoding: str = "f16"):
    key = sample_key("id0", f"hand map {i}", i)
    s = SampleRecord(sample_key=key, identity="id0", prompt=f"hand map {i}", category="realistic", seed=i,
                     status="ok", image_png=tiny_png(2, 2, i), width=IMAGE, height=IMAGE, sample_index=i)
    maps = [MapRecord.from_map(m, site=SITE, step=0, branch="text_id", token=t, encoding=encoding)
            for t, m in ((1, HAND), (2, ZERO), (3, POSITIVE))]
    faces = [FaceRecord(role="generated", detected=detected, backend="synthetic-1", n_faces=int(detected),
                        bbox=BOX if detected else None, score=0.9 if detected else None)]
    return s, maps, faces


def _store(root: Path) -> Path:
    """One run: a sample with a detected face, one without, one that stored no values."""
    w = StoreWriter(root, durable=False)
    w.begin_run(make_run("r1"))
    site = SiteRecord.from_key(SITE, heads=10, height=2, width=2)
    for i, kw in enumerate([{}, {"detected": False}, {"encoding": "none"}]):
        s, maps, faces = _sample(i, **kw)
        w.write_sample("r1", s, maps=maps, faces=faces, sites=[site])
    w.close()
    return root


def assert_hand_values(root: Path, lost: int = 0) -> None:
    """``lost``: signed maps without stored values whose entropy an old store left null (backfill
    cannot recompute them: counted as excluded)."""
    with connect_read_only(root) as con:
        for view in ("map_face_mass", "map_face_mass_at(0.5)"):  # numpy (precomputed) and SQL (decoding)
            rows = dict((t, (m, neg)) for t, m, neg in con.execute(
                f"select token, mass_in_box, has_negative from {view} order by token").fetchall())
            assert set(rows) == {1, 2, 3}, view               # one detected face with values: one row per token
            assert rows[1][0] == pytest.approx(MASS, abs=1e-12) and rows[1][1] is True, view
            assert rows[2][0] is None, view                   # no value > 0
            assert rows[3][0] == pytest.approx(0.5, abs=1e-12) and rows[3][1] is False, view
        ent = con.execute("select entropy from maps where token = 1 and encoding = 'f16'").fetchall()
        assert len(ent) == 2 and all(e == pytest.approx(ENTROPY, rel=1e-6) for (e,) in ent)
        n1 = 3 - lost
        got = {r[0]: r[1:] for r in con.execute(
            "select token, n_maps, n_negative, n_zero_sum, n_no_data, n_no_face, n_face_maps, n_mass_in_box, "
            "n_face_mass_excluded, n_entropy, n_entropy_excluded, avg_entropy, avg_mass_in_box "
            "from map_stats order by token").fetchall()}
        # token 1 (hand map x 3): all counted; face mass from the one detected face with values
        assert got[1][:10] == (3, 3, 0, 1, 1, 1, 1, 2, n1, lost)
        assert got[1][10] == pytest.approx(ENTROPY, rel=1e-6) and got[1][11] == pytest.approx(MASS)
        # token 2 (all zero x 3): nothing averaged, every exclusion counted with its reason
        assert got[2][:10] == (3, 0, 3, 1, 1, 1, 0, 3, 0, 3) and got[2][10] is None and got[2][11] is None
        site = con.execute("select token, n_maps, n_entropy, n_negative, n_zero_sum, n_entropy_excluded, avg_entropy "
                           "from site_summary order by token").fetchall()
        assert [r[:6] for r in site] == [(1, 3, n1, 3, 0, lost), (2, 3, 0, 0, 3, 3), (3, 3, 3, 0, 0, 0)]
        assert site[0][6] == pytest.approx(ENTROPY, rel=1e-6)
        step = con.execute("select n_maps, n_entropy, n_negative, n_zero_sum, n_entropy_excluded "
                           "from step_summary").fetchall()
        assert step == [(9, 6 - lost, 3, 3, 3 + lost)]


def test_hand_map_in_sql_numpy_and_the_counts(tmp_path):
    assert_hand_values(_store(tmp_path / "store"))


#: the key columns of word maps (migration 0005), absent from files written before it
WORD_COLUMNS = ["stream", "word"]


def _make_old(d: Path, before_words: bool = False) -> None:
    """Rewrite a folder's files as code before migration 0003 wrote them: null entropy and face
    mass for any negative value, no count columns (``before_words``: and, as before migration
    0005, no stream / word columns)."""
    drop = (lambda t: t.drop_columns(WORD_COLUMNS)) if before_words else (lambda t: t)
    maps = drop(pq.read_table(d / "maps.parquet"))
    signed = pc.less(maps.column("min"), 0)
    maps = maps.set_column(maps.schema.get_field_index("entropy"), "entropy",
                           pc.if_else(signed, pa.scalar(None, pa.float64()), maps.column("entropy")))
    pq.write_table(maps, d / "maps.parquet")
    stats = drop(pq.read_table(d / "map_stats.parquet").drop_columns(list(NEW_COLUMNS)))
    pq.write_table(stats, d / "map_stats.parquet")
    if (d / "face_mass.parquet").exists():
        fm = pq.read_table(d / "face_mass.parquet")
        fm = fm.set_column(fm.schema.get_field_index("mass_in_box"), "mass_in_box",
                           pc.if_else(fm.column("has_negative"), pa.scalar(None, pa.float64()),
                                      fm.column("mass_in_box"))).drop_columns(["has_negative"])
        fm = drop(fm)
        pq.write_table(fm, d / "face_mass.parquet")


def _old_store(root: Path, before_words: bool = False) -> Path:
    _store(root)
    for d in sorted((root / "data" / "run=r1").glob("sample=*")):
        _make_old(d, before_words)
    with connect_read_only(root) as con:  # the old definition: the signed maps left out, uncounted
        assert con.execute("select count(entropy) from maps where token = 1").fetchone()[0] == 0
        assert con.execute("select mass_in_box from map_face_mass where token = 1").fetchone()[0] is None
        assert con.execute("select sum(n_negative) from map_stats").fetchone()[0] is None
    assert missing_summaries(root) == 3
    return root


@pytest.mark.parametrize("before_words", [False, True], ids=["with-stream", "before-0005"])
def test_backfill_brings_an_old_store_to_the_new_definition(tmp_path, before_words):
    root = _old_store(tmp_path / "store", before_words)
    r = backfill(root)
    assert (r.n_sample_dirs, r.n_maps, r.n_entropy_fixed) == (3, 9, 2)  # the 'none' map has no values
    assert missing_summaries(root) == 0 and backfill(root).n_maps == 0
    assert_hand_values(root, lost=1)   # the map stored without values keeps its null, counted
    rewritten = 0
    for d in sorted((root / "data" / "run=r1").glob("sample=*")):  # rewritten files say 'id'
        for name in ("maps", "map_stats"):
            if "stream" not in pq.read_schema(d / f"{name}.parquet").names:
                assert before_words and name == "maps"  # a maps.parquet without entropy to fix stays as it was
                continue
            rewritten += name == "maps"
            t = pq.read_table(d / f"{name}.parquet", columns=WORD_COLUMNS)
            assert set(t.column("stream").to_pylist()) == {"id"} and set(t.column("word").to_pylist()) == {None}
    assert rewritten == (2 if before_words else 3)  # the two folders with a signed map with values
    with connect_read_only(root) as con:
        assert con.execute("select distinct stream from map_stats").fetchall() == [("id",)]
        assert con.execute("select count(*) from site_summary").fetchone()[0] == 3


@pytest.mark.parametrize("before_words", [False, True], ids=["with-stream", "before-0005"])
def test_compaction_merges_old_folders_with_the_new_definition(tmp_path, before_words):
    root = _old_store(tmp_path / "store", before_words)
    compact(root, "r1", activation_delay_s=0, retention_s=0)
    assert missing_summaries(root) == 0
    with connect_read_only(root) as con:
        assert con.execute("select sum(n_negative), sum(n_zero_sum), sum(n_no_face), sum(n_no_data), "
                           "sum(n_mass_in_box) from map_stats").fetchone() == (3, 3, 3, 3, 2)
        assert con.execute("select mass_in_box from map_face_mass where token = 1").fetchone()[0] == \
            pytest.approx(MASS)
        assert con.execute("select count(entropy) from maps where token = 1").fetchone()[0] == 2
