"""Issue 14, part 3: engines other than DuckDB read the store's live Parquet files
(store.cluster) and get the answers of the views.

A small store: run r1 with two active segments (the second one merged a late-metrics
directory), loose samples, a failed sample and late metrics on compacted and loose samples;
run r2 with a segment published but not active for an hour (its directories are still
used) and a loose sample; run r3 with no sample.  The VIEWS.md example queries run with plain
DuckDB; the same aggregations run with ray.data over ``store.cluster`` listings (counts equal,
floats within FLOAT_REL / MASS_ABS).
"""

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from store import cluster  # noqa: E402
from store.compact import compact  # noqa: E402
from store.records import MetricRecord  # noqa: E402
from store.views_doc import example_queries  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.store_helpers import make_run, make_sample, write_samples  # noqa: E402

pytestmark = [pytest.mark.timeout(600)]

FLOAT_REL = 1e-9   # averages: the engines sum in other orders
MASS_ABS = 1e-6    # map_face_mass: DuckDB sums FLOAT lists, numpy sums in float64


def key(i: int) -> str:
    return make_sample(i)[0].sample_key


@pytest.fixture(scope="module", autouse=True)
def _functions_by_value():
    """Ray workers cannot import this test module: send its functions by value."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("ray") / "store")


def build_store(root: Path) -> Path:
    w = StoreWriter(root, durable=False)
    for run in ("r1", "r2", "r3"):
        w.begin_run(make_run(run))
    write_samples(w, "r1", range(6))
    w.write_sample("r1", make_sample(20, fail=True)[0])
    compact(root, "r1", activation_delay_s=0, durable=False)              # segment 1: active
    w.add_metrics("r1", key(1), [MetricRecord("clip_t", 0.99, "clip-vit-l-14@1"),   # overrides
                                 MetricRecord("aesthetic", 6.0, "aes@2")])
    write_samples(w, "r1", range(6, 8))
    compact(root, "r1", activation_delay_s=0, durable=False)              # segment 2: active
    write_samples(w, "r1", range(8, 10))                                  # loose
    w.add_metrics("r1", key(8), [MetricRecord("clip_t", 0.11, "clip-vit-l-14@1")])  # late, loose sample
    w.add_metrics("r1", key(0), [MetricRecord("aesthetic", 5.0, "aes@2")])          # late, compacted sample
    write_samples(w, "r2", range(30, 34))
    compact(root, "r2", activation_delay_s=3600, durable=False)           # published, active in 1 h
    write_samples(w, "r2", range(34, 35))
    w.set_status("r1", "completed", n_done=11, n_total=11)
    w.set_status("r2", "running", n_done=5, n_total=10)
    w.close()
    return root


def duck(root, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / "catalog.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def assert_rows_equal(got: list, want: list, *, rel: float = FLOAT_REL, abs_: float = 0.0) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert len(g) == len(w), (g, w)
        for a, b in zip(g, w):
            if isinstance(b, float) or isinstance(a, float):
                assert a is not None and b is not None and (a == b or (math.isnan(a) and math.isnan(b))
                                                            or math.isclose(a, b, rel_tol=rel, abs_tol=abs_)), (g, w)
            elif isinstance(b, (list, tuple)):
                assert_rows_equal([tuple(a)], [tuple(b)], rel=rel, abs_=abs_)
            else:
                assert a == b, (g, w)


# ---------------------------------------------------------------- the listing alone (no Ray)

def test_listing_follows_the_views_rules(store):
    listing = cluster.list_files(store)
    r1 = store / "data" / "run=r1"
    segs = {s.run_id: [] for s in listing.segments}
    for s in listing.segments:
        segs[s.run_id].append(s)
    assert len(segs["r1"]) == 2 and all(s.active(listing.at) for s in segs["r1"])
    assert len(segs["r2"]) == 1 and not segs["r2"][0].active(listing.at)          # published, not active
    samples = listing.paths("samples")
    assert sorted(samples) == sorted([str(s.path / "samples.parquet") for s in segs["r1"]]
                                     + [str(r1 / f"sample={key(i)}" / "samples.parquet") for i in (8, 9)]
                                     + [str(store / "data" / "run=r2" / f"sample={key(i)}" / "samples.parquet")
                                        for i in range(30, 35)])
    hidden = {Path(d).name for d in listing.hidden_dirs}
    assert {f"sample={key(i)}" for i in [*range(8), 20]} <= hidden and len(hidden) == 10   # + 1 metrics dir
    assert all(Path(d).exists() for d in listing.hidden_dirs)                           # kept (retention)
    metrics_dirs = [p for p in listing.paths("metrics") if "/metrics=" in p]
    assert len(metrics_dirs) == 2                                                       # not merged yet
    assert len(listing.paths("manifest")) == 3 and len(listing.paths("runs")) == 3
    assert listing.store_id == duck(store, "select store_id from store_identity")[0][0]
    assert cluster.list_files(store, run_ids=["r2"]).paths("samples") == [p for p in samples if "run=r2" in p]


def _counts_pyarrow(listing) -> tuple[int, int, int]:
    samples = pads.dataset(listing.paths("samples"), format="parquet").to_table(columns=["run_id", "sample_key"])
    maps = pads.dataset(listing.paths("maps"), format="parquet").count_rows()
    distinct = len(set(zip(*(samples.column(c).to_pylist() for c in ("run_id", "sample_key")))))
    return samples.num_rows, distinct, maps


def test_pyarrow_dataset_counts_equal_the_views_at_every_moment(store):
    want = duck(store, "select count(*), count(distinct (run_id, sample_key)) from samples")[0] + \
        duck(store, "select count(*) from maps")[0]
    assert want[0] == want[1] == 16
    now = cluster.list_files(store)
    assert _counts_pyarrow(now) == want
    # after r2's segment became active: it is used, its 4 directories hidden; the same answers
    later = cluster.list_files(store, at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    assert len(later.active_segments()) == 3 and len(later.hidden_dirs) == len(now.hidden_dirs) + 4
    assert _counts_pyarrow(later) == want
    # before any compaction was active: every directory, no segment
    before = cluster.list_files(store, at=dt.datetime(2000, 1, 1))
    assert before.active_segments() == [] and before.hidden_dirs == []
    assert _counts_pyarrow(before) == want
    assert len(before.paths("samples")) == 16


def test_metrics_key_rule_gives_the_metrics_view(store):
    listing = cluster.list_files(store)
    raw = pads.dataset(listing.paths("metrics"), format="parquet").to_table()
    keys, order = cluster.DEDUP["metrics"]
    latest = cluster.keep_latest(raw, keys, order)
    got = sorted(zip(*(latest.column(c).to_pylist() for c in ("run_id", "sample_key", "name", "model", "value"))))
    assert got == sorted(duck(store, "select run_id, sample_key, name, model, value from metrics"))
    assert (("r1", key(1), "clip_t", "clip-vit-l-14@1", 0.99)) in got                    # the late value wins


def test_hold_keeps_the_catalog_open_for_other_processes(store):
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from store.layout import Layout, catalog_reader_pid; "
            "print(catalog_reader_pid(Layout(sys.argv[2])))")

    def reader():
        return subprocess.run([sys.executable, "-c", code, str(ROOT), str(store)], capture_output=True, text=True,
                              check=True, timeout=120).stdout.strip()
    with cluster.list_files(store, tables=["samples"]).hold():
        assert reader() == str(os.getpid())
    assert reader() == "None"


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(cluster.StoreError, match="not a store"):
        cluster.list_files(tmp_path)
    (tmp_path / "data").mkdir()
    with pytest.raises(cluster.StoreError, match="unknown tables"):
        cluster.list_files(tmp_path, tables=["nope"])
    assert cluster.list_files(tmp_path).paths("samples") == []


# ---------------------------------------------------------------- ray.data: the VIEWS.md examples
# Few Ray executions (each costs tens of seconds on a loaded 2-core machine): every table is read
# once; per-sample tables are small and come back whole, the maps come back as partial
# aggregates per block (map_batches), combined on the driver, as one would on a cluster.

SITE_KEYS = ["run_id", "site", "stage", "branch", "token", "head_reduction"]
MAP_KEYS = ["run_id", "sample_key", "site", "step", "branch"]
PER_SAMPLE = pa.schema([("run_id", pa.string()), ("sample_key", pa.string()), ("status", pa.string()),
                        ("width", pa.int32()), ("height", pa.int32()), ("detected", pa.bool_()),
                        ("similarity", pa.float64()), ("box", pa.list_(pa.float64()))])
PARTIAL = pa.schema([("kind", pa.string()), ("run_id", pa.string()), ("sample_key", pa.string()),
                     ("site", pa.string()), ("step", pa.int32()), ("branch", pa.string()), ("stage", pa.string()),
                     ("token", pa.int32()), ("head_reduction", pa.string()), ("mean", pa.float64()),
                     ("entropy", pa.float64()), ("first_values", pa.list_(pa.float32())), ("n", pa.int64()),
                     ("sum_entropy", pa.float64()), ("n_entropy", pa.int64()), ("mass_in_box", pa.float64()),
                     ("iou_box", pa.float64())])


def per_sample(listing) -> dict:
    """{(run_id, sample_key): samples row + its generated face}: one Ray execution (samples and
    generated faces in one schema, unioned)."""
    def from_samples(b):
        n = b.num_rows
        return pa.table([b["run_id"], b["sample_key"], b["status"], b["width"], b["height"], pa.nulls(n, pa.bool_()),
                         pa.nulls(n, pa.float64()), pa.nulls(n, pa.list_(pa.float64()))], schema=PER_SAMPLE)

    def from_faces(b):
        b = b.filter(pa.compute.equal(b["role"], "generated"))
        n = b.num_rows
        box = [None if x0 is None else [x0, y0, x1, y1]
               for x0, y0, x1, y1 in zip(*(b[c].to_pylist() for c in ("x0", "y0", "x1", "y1")))]
        return pa.table([b["run_id"], b["sample_key"], pa.nulls(n, pa.string()), pa.nulls(n, pa.int32()),
                         pa.nulls(n, pa.int32()), b["detected"], b["similarity"], pa.array(box, pa.list_(pa.float64()))],
                        schema=PER_SAMPLE)

    s = cluster.read_ray(listing, "samples", columns=["run_id", "sample_key", "status", "width", "height"])
    f = cluster.read_ray(listing, "faces", columns=["run_id", "sample_key", "role", "detected", "similarity",
                                                     "x0", "y0", "x1", "y1"])
    both = s.map_batches(from_samples, batch_format="pyarrow").union(f.map_batches(from_faces, batch_format="pyarrow"))
    out: dict = {}
    for r in both.take_all():
        g = out.setdefault((r["run_id"], r["sample_key"]), {"face": None})
        if r["status"] is not None:
            assert "status" not in g, ("sample twice", r)
            g.update(status=r["status"], width=r["width"], height=r["height"])
        else:
            g["face"] = r
    return {k: g for k, g in out.items() if "status" in g}   # faces without a sample: not in the views


def latest_runs(listing) -> list[tuple]:
    """runs + latest event per run (greatest at, then event_id), ordered by created_at: the
    latest event per block (map_batches), then over the blocks on the driver."""
    runs = cluster.read_ray(listing, "runs", columns=["run_id", "created_at"]).take_all()
    cols = ["run_id", "at", "event_id", "status", "n_done", "n_failed", "n_total"]
    latest = cluster.read_ray(listing, "run_events", columns=cols).map_batches(
        lambda b: cluster.keep_latest(b, ["run_id"], ["at", "event_id"]), batch_format="pyarrow").take_all()
    latest = cluster.keep_latest(pa.Table.from_pylist(latest), ["run_id"], ["at", "event_id"]) if latest else None
    status = {r["run_id"]: r for r in (latest.to_pylist() if latest is not None else [])}
    return [(r["run_id"], *(status.get(r["run_id"], {}).get(c) for c in cols[3:]))
            for r in sorted(runs, key=lambda r: r["created_at"])]


def _values(data, enc, scale) -> np.ndarray | None:
    if data is None or enc == "none":
        return None
    d = np.asarray(data, dtype=np.uint16)
    return d.view(np.float16).astype(np.float32) if enc == "f16" else (d * float(scale)).astype(np.float32)


def map_partials(batch: pa.Table, geometry: dict, thr: float = 0.5) -> pa.Table:
    """Per block of maps: partial sums per site key ('site'), the block's first 10 maps by key
    ('first'), and one map_face_mass row per map on a detected face ('mass')."""
    rows = []
    grouped = batch.group_by(SITE_KEYS, use_threads=False).aggregate(
        [([], "count_all"), ("entropy", "sum"), ("entropy", "count")])
    for r in grouped.to_pylist():
        rows.append({"kind": "site", **{k: r[k] for k in SITE_KEYS}, "n": r["count_all"],
                     "sum_entropy": r["entropy_sum"], "n_entropy": r["entropy_count"]})
    first = batch.sort_by([(c, "ascending") for c in MAP_KEYS]).slice(0, 10)
    for r in first.to_pylist():
        v = _values(r["data"], r["encoding"], r["scale"])
        rows.append({"kind": "first", **{k: r[k] for k in MAP_KEYS}, "mean": r["mean"], "entropy": r["entropy"],
                     "first_values": None if v is None else v[:4].tolist()})
    for r in batch.to_pylist():
        g = geometry.get((r["run_id"], r["sample_key"]))
        v = _values(r["data"], r["encoding"], r["scale"])
        if g is None or v is None:
            continue
        x0, y0, x1, y1, iw, ih = g
        h, w, v = r["height"], r["width"], v.astype(np.float64)
        k = np.arange(h * w)
        cx, cy = (k % w + 0.5) * iw / w, (k // w + 0.5) * ih / h
        box = (cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)
        pos = np.maximum(v, 0.0)  # face mass of the positive part (store/VIEWS.md)
        vmax, vsum = v.max(), pos.sum()
        hot = (v >= thr * vmax) if vmax > 0 else np.zeros_like(box)
        union = int((hot | box).sum())
        rows.append({"kind": "mass", **{k: r[k] for k in ("run_id", "sample_key", "site", "step")},
                     "mass_in_box": float(pos[box].sum() / vsum) if vsum > 0 else None,
                     "iou_box": int((hot & box).sum()) / union if vmax > 0 and union else None})
    return pa.Table.from_pylist(rows, schema=PARTIAL)


def maps_answers(listing, geometry: dict) -> dict:
    """site_summary, the first maps / map_values and map_face_mass rows: one execution."""
    parts = pa.Table.from_pylist(cluster.read_ray(listing, "maps").map_batches(
        lambda b: map_partials(b, geometry), batch_format="pyarrow").take_all(), schema=PARTIAL)
    site = parts.filter(pa.compute.equal(parts["kind"], "site")).group_by(SITE_KEYS).aggregate(
        [("n", "sum"), ("sum_entropy", "sum"), ("n_entropy", "sum")]).sort_by([(c, "ascending") for c in SITE_KEYS])
    first = parts.filter(pa.compute.equal(parts["kind"], "first")).sort_by([(c, "ascending") for c in MAP_KEYS])
    mass = sorted(tuple(r.values()) for r in parts.filter(pa.compute.equal(parts["kind"], "mass")).select(
        ["run_id", "sample_key", "site", "step", "mass_in_box", "iou_box"]).to_pylist())
    return {
        "site": [(r["run_id"], r["site"], r["stage"], r["branch"], r["n_sum"],
                  r["sum_entropy_sum"] / r["n_entropy_sum"] if r["n_entropy_sum"] else None) for r in site.to_pylist()],
        "first": [tuple(r[c] for c in MAP_KEYS + ["mean", "entropy"]) for r in first.slice(0, 10).to_pylist()],
        "values": [tuple(r[c] for c in MAP_KEYS + ["first_values"]) for r in first.slice(0, 5).to_pylist()],
        "mass": mass[:5],
    }


def metrics_answers(listing) -> list[tuple]:
    """The metrics view (latest row per key: per block, then over the blocks) aggregated per
    run, name, model."""
    keys, order = cluster.DEDUP["metrics"]
    rows = cluster.read_ray(listing, "metrics", dedup=False).map_batches(
        lambda b: cluster.keep_latest(b, keys, order), batch_format="pyarrow").take_all()
    latest = cluster.keep_latest(pa.Table.from_pylist(rows), keys, order)
    agg = latest.group_by(["run_id", "name", "model"]).aggregate([([], "count_all"), ("value", "mean")])
    return sorted(tuple(r.values()) for r in agg.select(["run_id", "name", "model", "count_all", "value_mean"]).to_pylist())


def ray_answers(listing) -> list[list[tuple]]:
    """The VIEWS.md examples (same order), computed with ray.data over the listing: 5 executions,
    no shuffle (partial results per block, combined on the driver)."""
    runs = latest_runs(listing)
    samples = per_sample(listing)
    per_run: dict = {r[0]: [] for r in runs}
    for (run_id, _), g in samples.items():
        per_run.setdefault(run_id, []).append(g)
    counts = [(run, len(gs), sum(g["status"] == "failed" for g in gs)) for run, gs in sorted(per_run.items()) if gs]
    faces = []
    for run, gs in sorted(per_run.items()):
        ev = [g["face"] for g in gs if g["status"] == "ok" and g["face"] is not None]
        sims = [f["similarity"] for f in ev if f["detected"] and f["similarity"] is not None]
        ffc = sum(not f["detected"] for f in ev)
        faces.append((run, len(gs), ffc, ffc / len(ev) if ev else None, sum(sims) / len(sims) if sims else None))
    geometry = {k: (*g["face"]["box"], g["width"], g["height"]) for k, g in samples.items()
                if g["status"] == "ok" and g["face"] is not None and g["face"]["detected"]}
    maps = maps_answers(listing, geometry)
    return [[(listing.store_id,)], runs, counts, maps["first"], maps["values"], maps["site"], faces,
            metrics_answers(listing), maps["mass"]]


def test_ray_data_answers_equal_the_views_md_examples(ray_cluster, store):
    queries = example_queries()  # the first nine (to map_face_mass) are recomputed with ray.data
    queries = queries[:next(i for i, q in enumerate(queries) if "from map_face_mass" in q) + 1]
    assert len(queries) == 9
    want = [duck(store, q) for q in queries]
    want[0] = [(want[0][0][0],)]                                   # store_identity: root is the folder
    assert want[2] == [("r1", 11, 1), ("r2", 5, 0)] and len(want[8]) == 5
    got = ray_answers(cluster.list_files(store))
    for i, (g, w) in enumerate(zip(got, want)):
        assert_rows_equal(g, w, abs_=MASS_ABS if i == 8 else 0.0)


def test_ray_answers_do_not_change_when_the_pending_segment_becomes_active(ray_cluster, store):
    """r2's segment is published but not active: at a moment after its compacted_at it is read
    instead of its directories, and the maps aggregate to the same answers."""
    later = cluster.list_files(store, at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    assert any(s.run_id == "r2" for s in later.active_segments())
    now = cluster.list_files(store)
    assert set(later.paths("maps")) != set(now.paths("maps"))
    a, b = maps_answers(later, {}), maps_answers(now, {})
    assert_rows_equal(a["site"], b["site"])
    assert_rows_equal(a["site"], duck(store, "select run_id, site, stage, branch, n_maps, avg_entropy "
                                             "from site_summary order by all"))
