"""Compaction: same rows before and after, no duplicates even when interrupted."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store import compact as compaction  # noqa: E402
from store.db import connect_read_only  # noqa: E402
from store.layout import Layout, StoreError  # noqa: E402
from store.queries import run_contracts  # noqa: E402
from store.records import MetricRecord  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.store_helpers import make_run, make_sample, write_samples  # noqa: E402

TABLES = ["samples", "maps", "faces", "metrics", "sites", "map_values", "map_face_mass"]


def counts(root) -> dict:
    with connect_read_only(root) as con:
        out = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0] for t in TABLES}
        out["distinct_samples"] = con.execute(
            "select count(distinct (run_id, sample_key)) from samples").fetchall()[0][0]
        out["metric_values"] = sorted(con.execute("select sample_key, name, value from metrics").fetchall())
    return out


def assert_contracts(root):
    with connect_read_only(root) as con:
        for name, df in run_contracts(con, ["unique_keys", "relationships"]).items():
            assert len(df) == 0, f"{name}:\n{df}"


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    w = StoreWriter(root, durable=False)
    w.begin_run(make_run("r1"))
    write_samples(w, "r1", range(12))
    w.write_sample("r1", make_sample(12, fail=True)[0])
    key = make_sample(3)[0].sample_key
    w.add_metrics("r1", key, [MetricRecord("clip_t", 0.111, "clip-vit-l-14@1")])   # overrides the sample's
    w.add_metrics("r1", key, [MetricRecord("aesthetic", 5.0, "aes@1")])
    yield root, w
    w.close()


def test_compaction_keeps_rows_and_merges_files(store):
    root, w = store
    before, done = counts(root), w.done_sample_keys("r1")
    res = compaction.compact(root, "r1", activation_delay_s=0, retention_s=0)   # nothing reads: remove now
    layout = Layout(root)
    assert res.n_samples == 13 and res.n_metrics_dirs == 2 and len(res.segments) == 1 and res.n_cleaned == 15
    assert layout.sample_dirs("r1") == [] and layout.metrics_dirs("r1") == []
    assert len(layout.segment_dirs("r1")) == 1
    assert counts(root) == before
    assert w.done_sample_keys("r1") == done
    assert write_samples(w, "r1", range(13)) == 0          # resume skips / refuses compacted samples
    assert write_samples(w, "r1", range(13, 15)) == 2      # new samples after compaction
    assert compaction.compact(root, "r1", activation_delay_s=0).n_samples == 2   # a second segment
    after = counts(root)
    assert after["samples"] == before["samples"] + 2 and after["distinct_samples"] == after["samples"]
    assert_contracts(root)


def test_merged_directories_stay_hidden_for_the_retention_period(store):
    """Default compaction: the segment is used from compacted_at on; the merged directories stay
    on disk (a reader that listed them can still read them), are not merged again, and go when
    they are older than the retention period (compact, StoreWriter, vacuum)."""
    root, w = store
    layout = Layout(root)
    before = counts(root)
    res = compaction.compact(root, "r1", activation_delay_s=60)   # active in a minute
    assert res.n_samples == 13 and res.n_cleaned == 0
    assert len(layout.sample_dirs("r1")) == 13 and len(layout.metrics_dirs("r1")) == 2
    with connect_read_only(root) as con:                     # not active yet: rows from the directories
        at = con.execute("select min(epoch_ms(compacted_at)) > epoch_ms(now()), count(*) from store_manifest").fetchall()
        assert at == [(True, 15)]
    assert counts(root) == before
    assert compaction.compact(root, "r1").segments == []    # merged directories are not merged again
    assert compaction.vacuum(root, older_than_s=3600).n_removed == 0
    # a second compaction whose segment is already active: rows from both segments, none twice
    write_samples(w, "r1", range(13, 15))
    assert compaction.compact(root, "r1", activation_delay_s=0).n_samples == 2
    after = counts(root)
    assert after["samples"] == before["samples"] + 2 == after["distinct_samples"]
    # vacuum removes only what is older than --older-than: the 2 directories of the active segment
    v = compaction.vacuum(root, older_than_s=0)
    assert (v.n_removed, v.runs) == (2, ["r1"]) and v.bytes_freed > 0
    assert len(layout.sample_dirs("r1")) == 13 and counts(root) == after
    assert_contracts(root)


@pytest.mark.parametrize("delay_s", [600.0, -1.0])
def test_segment_is_used_from_its_compacted_at_and_never_alongside_its_directories(store, delay_s):
    """A published segment whose compacted_at is in the future is ignored (its directories
    answer); once compacted_at has passed it answers and its directories are hidden (not gone)."""
    root, w = store
    before = counts(root)
    layout = Layout(root)
    dirs = compaction._plan(layout, "r1")
    tmp, seg = compaction._build_segment(layout, "r1", dirs, activation_delay_s=delay_s, durable=False)
    assert counts(root) == before                           # built, not visible yet
    compaction._publish_segment(layout, "r1", tmp, seg)
    assert len(layout.sample_dirs("r1")) == 13 and len(layout.segment_dirs("r1")) == 1
    with connect_read_only(root) as con:
        n_active = con.execute("select count(*) from store_manifest "
                               "where epoch_ms(compacted_at) <= epoch_ms(now())").fetchall()[0][0]
    assert n_active == (0 if delay_s > 0 else 15)
    assert counts(root) == before                           # each sample once, from one place
    assert_contracts(root)
    assert w.done_sample_keys("r1") == {make_sample(i)[0].sample_key for i in range(13)}
    res = compaction.compact(root, "r1", retention_s=0)     # a later compaction removes what is due
    assert res.n_samples == 0 and res.n_cleaned == (0 if delay_s > 0 else 15)
    assert len(layout.sample_dirs("r1")) == (13 if delay_s > 0 else 0)
    assert counts(root) == before


def test_writer_open_removes_merged_directories_older_than_the_retention(store):
    root, w = store
    before = counts(root)
    layout = Layout(root)
    dirs = compaction._plan(layout, "r1")
    old = -compaction.RETENTION_S - 1                      # became active more than the retention ago
    compaction._publish_segment(layout, "r1", *compaction._build_segment(layout, "r1", dirs[:5],
                                                                          activation_delay_s=old))
    compaction._publish_segment(layout, "r1", *compaction._build_segment(layout, "r1", dirs[5:]))
    StoreWriter(root, durable=False).close()
    assert {d.name for d in layout.sample_dirs("r1") + layout.metrics_dirs("r1")} == {d.name for d in dirs[5:]}
    assert counts(root) == before


def test_f16_attention_maps_take_at_most_2_bytes_per_value_and_pandas_reads_the_files(tmp_path):
    """The issue's storage target, on attention-like float16 maps (store.bench's generator):
    compacted maps files <= 2 B/value (format v1 Parquet took 1.97-2.27); u8 well below."""
    import pyarrow.parquet as pq

    from store.bench import bytes_per_value

    f16 = bytes_per_value(tmp_path / "f16", "f16", n=10, n_maps=20, side=32)
    u8 = bytes_per_value(tmp_path / "u8", "u8", n=10, n_maps=20, side=32)
    assert f16["bytes_per_value_compacted"] <= 1.9, f16
    assert u8["bytes_per_value_compacted"] <= 1.3, u8
    seg = next((tmp_path / "f16" / "data" / "run=bench").glob("segment=*/maps.parquet"))
    meta = pq.ParquetFile(seg).metadata
    assert meta.format_version == "2.6"
    encodings = {e for rg in range(meta.num_row_groups) for i in range(meta.num_columns)
                 for e in meta.row_group(rg).column(i).encodings}
    assert "DELTA_BINARY_PACKED" in encodings, encodings
    df = pq.read_table(seg).to_pandas()  # a plain reader (pandas) reads the v2 file
    assert len(df) == 10 * 20 and df["data"].map(len).eq(32 * 32).all()


def test_a_run_is_split_into_segments_of_bounded_size(store):
    """CompactLimits bound the directories (and bytes) per segment; rows and keys stay the same."""
    from store.segment import CompactLimits

    root, w = store
    before, done = counts(root), w.done_sample_keys("r1")
    res = compaction.compact(root, "r1", activation_delay_s=0, retention_s=0,
                             limits=CompactLimits(max_segment_samples=4, memory_limit="64MB"))
    assert (res.n_samples, res.n_metrics_dirs, len(res.segments)) == (13, 2, 4)   # 15 dirs, 4 per segment
    assert counts(root) == before and w.done_sample_keys("r1") == done
    assert_contracts(root)
    write_samples(w, "r1", range(13, 16))
    one = (Layout(root).sample_dirs("r1")[0] / "maps.parquet").stat().st_size
    res = compaction.compact(root, "r1", activation_delay_s=0, limits=CompactLimits(max_segment_bytes=one))
    assert len(res.segments) == 3                                       # a directory over the bound: alone
    with pytest.raises(StoreError, match="memory_limit"):
        CompactLimits(memory_limit="lots")


def test_a_key_twice_refuses_the_compaction_and_publishes_nothing(store):
    """A sample directory holding another sample's rows (a copy under another name): refused,
    with the key and the directories named; the store is unchanged."""
    import shutil

    root, _ = store
    layout = Layout(root)
    before = counts(root)
    src = layout.sample_dirs("r1")[0]
    shutil.copytree(src, layout.sample_dir("r1", "zz-copy"))
    with pytest.raises(StoreError, match=r"refused.*samples.*occur twice.*sample=zz-copy"):
        compaction.compact(root, "r1", activation_delay_s=0, retention_s=0)
    assert layout.segment_dirs("r1") == [] and len(layout.sample_dirs("r1")) == 14
    assert list(layout.tmp.iterdir()) == []                             # no tmp or spill left
    shutil.rmtree(layout.sample_dir("r1", "zz-copy"))
    assert counts(root) == before
