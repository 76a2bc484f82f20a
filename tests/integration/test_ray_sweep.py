"""``fastface capture --ray``: the same store content as the plain sweep, an actor killed mid-sweep
(nothing lost, nothing twice), resume, two writers racing for one sample, the generic actor
pool's retries, and the plain path without Ray.

One local Ray cluster (2 CPUs, no dashboard) for the module; the capture runs on the tiny world.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from fastface.cli import main as cli

ray = pytest.importorskip("ray")

LIMIT = 3  # (identity, prompt) pairs; x 2 presets = 6 samples


@pytest.fixture(scope="module")
def ray_cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_root):
    from fastface.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("ds")
    write_demo_dataset(root)
    Image.fromarray(np.full((128, 128, 3), 200, np.uint8)).save(root / "id_photos" / "aa_blank.png")  # fails
    return root


def _args(dataset, store, *extra):
    return ["capture", "--dataset", str(dataset), "--store", str(store), "--tiny", "--presets", "baseline,ff-am2",
            "--capture", "head_mean", "--limit", str(LIMIT), *extra]


def _q(store, sql):
    from store.db import connect_read_only

    con = connect_read_only(store)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def content(store) -> dict:
    """The store's content without timings, worker ids, created_at: comparable across sweeps."""
    samples = _q(store, "select run_id, sample_key, identity, prompt, category, seed, sample_index, status, "
                        "error, width, height, md5(image_png) as png from samples order by run_id, sample_key")
    maps = _q(store, "select run_id, sample_key, site, step, branch, token, head, stage, height, width, "
                     "mean, std, min, max, q50, q90, q99, entropy, md5(cast(data as varchar)) as data "
                     "from maps order by all")
    faces = _q(store, "select run_id, sample_key, role, detected, n_faces, score, similarity from faces order by all")
    metrics = _q(store, "select run_id, sample_key, name, value, model from metrics order by all")
    sites = _q(store, "select run_id, site, heads, height, width from sites order by all")
    runs = _q(store, "select run_id, status, n_done, n_total from runs order by run_id")
    return {"samples": samples, "maps": maps, "faces": faces, "metrics": metrics, "sites": sites, "runs": runs}


def assert_same(a: dict, b: dict) -> None:
    for name in a:
        x, y = a[name].reset_index(drop=True), b[name].reset_index(drop=True)
        assert len(x) == len(y), f"{name}: {len(x)} rows vs {len(y)}"
        assert x.equals(y), f"{name} differ:\n{x.compare(y) if x.shape == y.shape else (x, y)}"


@pytest.fixture(scope="module")
def plain_store(dataset, tmp_path_factory):
    """The single-process sweep, with the Ray actors' thread count (1): CPU results depend on it."""
    import torch

    store = tmp_path_factory.mktemp("plain") / "store"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert cli(_args(dataset, store)) == 0
    finally:
        torch.set_num_threads(threads)
    return store


def test_two_actor_sweep_equals_the_plain_sweep_and_resumes(ray_cluster, dataset, plain_store, tmp_path):
    store = tmp_path / "store"
    # a first part of the sweep (2 of the 3 pairs), then the whole sweep: it resumes from the store
    assert cli(_args(dataset, store, "--limit", "2", "--ray", "--ray-actors", "2")) == 0
    assert len(_q(store, "select * from samples")) == 4
    assert cli(_args(dataset, store, "--ray", "--ray-actors", "2")) == 0
    got, want = content(store), content(plain_store)
    assert len(want["samples"]) == 2 * LIMIT and (want["samples"].status == "failed").sum() == 2
    assert len(want["maps"]) > 0 and want["samples"].png.notna().sum() == 2 * LIMIT - 2
    assert_same(got, want)
    workers = _q(store, "select distinct worker_id from samples").worker_id.tolist()
    assert set(workers) <= {"ray0", "ray1"} and len(workers) == 2, workers  # both actors wrote


def test_actor_killed_mid_sweep_loses_nothing_and_writes_nothing_twice(ray_cluster, dataset, plain_store, tmp_path):
    from fastface.dataset import load_dataset
    from fastface.pipeline import load_pipeline
    from fastface.sweep import SweepSpec
    from fastface.sweep_ray import run_sweep_ray

    store = tmp_path / "store"
    spec = SweepSpec(presets=("baseline", "ff-am2"), tiny=True, face_backend="dlib", limit=LIMIT)
    killed = {}

    def hook(pool, stats):
        # after the first result: SIGKILL (like the OOM killer) an actor that has samples in flight
        if killed or stats.done < 1:
            return
        slot = max(pool.live(), key=lambda s: len(s.inflight))
        assert slot.inflight
        killed["pid"], killed["inflight"] = pool.pid(slot), len(slot.inflight)
        os.kill(killed["pid"], signal.SIGKILL)

    load = lambda checkpoint: load_pipeline(checkpoint, tiny=True, face_backend="dlib")  # noqa: E731
    counts = run_sweep_ray(spec, load_dataset(dataset), str(store), load=load, actors=2, hook=hook)
    assert killed and counts["actor_deaths"] == 1, counts
    assert counts["resubmitted"] == killed["inflight"] >= 1
    assert counts["written"] == 2 * LIMIT and counts["failed"] == 2
    everything = _q(store, "select run_id, sample_key from samples")
    assert len(everything) == 2 * LIMIT and not everything.duplicated().any()
    got, want = content(store), content(plain_store)
    assert_same(got, want)
    assert set(got["runs"].status) == {"completed"}


def test_two_writers_racing_for_one_sample_commit_it_once(ray_cluster, tmp_path):
    """Two actors build the same sample and rename it in at the same moment: one wins."""
    from store.records import RunRecord, SampleRecord
    from store.writer import StoreWriter

    store = tmp_path / "store"
    w = StoreWriter(store, worker_id="driver")
    w.begin_run(RunRecord(run_id="r1", config={"a": 1}))
    w.close()
    barrier = tmp_path / "barrier"
    barrier.mkdir()

    @ray.remote(num_cpus=0)
    def write(worker: str) -> bool:
        writer = StoreWriter(store, worker_id=worker)

        def wait_for_the_other(tmp):  # both tmp dirs are complete: rename together
            (barrier / worker).touch()
            deadline = time.time() + 60
            while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
                time.sleep(0.001)

        writer._before_publish = wait_for_the_other
        return writer.write_sample("r1", SampleRecord(sample_key="k1", identity=worker, prompt="p",
                                                      category="realistic", seed=1))

    results = ray.get([write.remote("a"), write.remote("b")])
    assert sorted(results) == [False, True]
    rows = _q(store, "select identity from samples")
    assert len(rows) == 1 and rows.identity[0] == ["a", "b"][results.index(True)]
    assert list((store / "tmp").iterdir()) == []


def _square_setup(info):
    import os as _os

    def fn(item):
        if item == "boom":
            raise KeyError("boom item")
        if item == "poison":
            _os.kill(_os.getpid(), 9)  # kills every actor that tries it
        time.sleep(0.05)
        return item * item

    return fn


def test_pool_retries_gives_up_and_raises(ray_cluster):
    from fastface.distributed import PoolError, PoolOptions, run_pool

    results, seen = {}, []
    killed = []

    def hook(pool, stats):
        if not killed and stats.done == 2:
            slot = pool.live()[0]
            killed.append(slot.index)
            ray.kill(slot.handle, no_restart=True)

    opts = PoolOptions(actors=2, num_cpus=0.5, max_attempts=2, max_restarts=3)
    stats = run_pool(list(range(12)) + ["poison"], _square_setup, opts,
                     on_result=lambda i, r: results.__setitem__(i, r),
                     on_give_up=lambda i, e: seen.append(i), progress=None, hook=hook)
    assert results == {i: i * i for i in range(12)}
    assert seen == ["poison"] and stats.given_up == 1 and stats.done == 13
    assert stats.actor_deaths >= 3 and stats.replacements >= 3  # ray.kill + poison twice
    # an exception raised by the per-item function stops the pool (no retry), with its type
    with pytest.raises(KeyError, match="boom item"):
        run_pool([1, "boom", 2], _square_setup, PoolOptions(actors=1, num_cpus=0.5))
    # without on_give_up, a poison item is an error
    with pytest.raises(PoolError, match="died"):
        run_pool(["poison"], _square_setup, PoolOptions(actors=1, num_cpus=0.5, max_attempts=1))


def test_plain_capture_does_not_import_ray_and_missing_ray_is_a_clear_error(dataset, tmp_path):
    code = textwrap.dedent("""
        import sys
        from fastface.cli import main
        rc = main(sys.argv[1:])
        assert rc == 0, rc
        assert "ray" not in sys.modules, "the plain capture imported ray"
        print("NO-RAY-OK")
    """)
    store = tmp_path / "store"
    args = ["capture", "--dataset", str(dataset), "--store", str(store), "--tiny", "--presets", "baseline",
            "--limit", "1"]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "NO-RAY-OK" in out.stdout, out.stderr[-3000:]
    assert len(_q(store, "select * from samples")) == 1
    # Ray not installed: --ray fails before anything runs, with the install line
    blocked = "import sys; sys.modules['ray'] = None; from fastface.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", blocked, *args, "--store", str(tmp_path / "s2"), "--ray"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "pip install 'ray==" in out.stderr, out.stderr[-3000:]
