"""``fastface capture --ray``: the same store content as the plain sweep, an actor killed mid-sweep
(nothing lost, nothing twice), resume, two writers racing for one sample, the generic actor
pool's retries, and the plain path without Ray.

One local Ray cluster (2 CPUs, no dashboard; tests/integration/conftest.py) for the module; the capture runs on the tiny world.
"""
from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from fastface.cli import main as cli
from fastface.models.pipeline import load_pipeline
from tests.ray_helpers import sigkill_busiest_actor

ray = pytest.importorskip("ray")

LIMIT = 3  # (identity, prompt) pairs; x 2 presets = 6 samples


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_root):
    from fastface.sweeps.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("ds")
    write_demo_dataset(root)
    Image.fromarray(np.full((128, 128, 3), 200, np.uint8)).save(root / "id_photos" / "b_blank.png")  # fails: no face
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


SPEC = dict(presets=("baseline", "ff-am2"), tiny=True, face_backend="dlib", capture="head_mean")  # = the CLI's


# pickled into the actors: a library function (this test module is not importable there)
_load = functools.partial(load_pipeline, tiny=True, face_backend="dlib")


@pytest.fixture(scope="module")
def plain(dataset, tmp_path_factory):
    """The single-process sweep (in this process, with the Ray actors' thread count, 1: CPU
    results depend on it); returns (store, run_sweep with the loaded pipeline)."""
    import torch

    from fastface.sweeps.dataset import load_dataset
    from fastface.sweeps.sweep import SweepSpec, run_sweep

    pipes = {}

    def sweep(store, limit):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            load = lambda c: pipes[c] if c in pipes else pipes.setdefault(c, _load(c))  # noqa: E731
            return run_sweep(SweepSpec(**SPEC, limit=limit), load_dataset(dataset), str(store), load=load)
        finally:
            torch.set_num_threads(threads)

    store = tmp_path_factory.mktemp("plain") / "store"
    counts = sweep(store, LIMIT)
    assert counts["written"] == 2 * LIMIT and counts["failed"] == 2
    return store, sweep


def test_two_actor_sweep_equals_the_plain_sweep_and_resumes_a_partial_store(ray_cluster, dataset, plain, tmp_path,
                                                                             capsys):
    plain_store, plain_sweep = plain
    store = tmp_path / "store"
    plain_sweep(store, 1)  # a partial store (2 samples) for the Ray sweep to resume
    assert cli(_args(dataset, store, "--ray", "--ray-actors", "2")) == 0
    assert "4 samples written (2 failed), 2 already there; ray: 2 actors" in capsys.readouterr().out
    got, want = content(store), content(plain_store)
    assert len(want["samples"]) == 2 * LIMIT and (want["samples"].status == "failed").sum() == 2
    assert len(want["maps"]) > 0 and want["samples"].png.notna().sum() == 2 * LIMIT - 2
    assert_same(got, want)
    workers = _q(store, "select worker_id, count(*) n from samples group by all")
    assert set(workers.worker_id) == {"w0of1", "ray0", "ray1"}, workers  # both actors wrote
    # nothing left: no actor starts, the runs stay completed
    assert cli(_args(dataset, store, "--ray", "--ray-actors", "2")) == 0
    assert "0 samples written (0 failed), 6 already there; ray: 0 actors" in capsys.readouterr().out
    assert set(_q(store, "select status from runs").status) == {"completed"}


def test_actor_killed_then_sweep_interrupted_then_resumed_loses_nothing_and_duplicates_nothing(
        ray_cluster, dataset, plain, tmp_path):
    from fastface.sweeps.dataset import load_dataset
    from fastface.sweeps.sweep import SweepSpec
    from fastface.sweeps.sweep_ray import run_sweep_ray

    store = tmp_path / "store"
    spec, ds = SweepSpec(**SPEC, limit=LIMIT), load_dataset(dataset)
    events = {}

    def hook(pool, stats):
        if "pid" not in events:  # first result: kill an actor with work in flight
            sigkill_busiest_actor(pool, events)
        elif stats.done >= 3 and stats.resubmitted:
            events["done"] = stats.done
            raise KeyboardInterrupt  # Ctrl-C on the driver: the sweep as a whole stops

    with pytest.raises(KeyboardInterrupt):  # no replacement actor: the other one takes the lost samples
        run_sweep_ray(spec, ds, str(store), load=_load, actors=2, max_restarts=0, hook=hook)
    assert events["done"] == 3 and events["inflight"] >= 1
    first = _q(store, "select run_id, sample_key, md5(image_png) h from samples")
    assert len(first) >= 3 and not first.duplicated(["run_id", "sample_key"]).any()
    runs = _q(store, "select status from runs")
    assert "interrupted" in set(runs.status), runs
    # the sweep again resumes from the store (here in this process: test A resumes with Ray)
    counts = plain[1](store, LIMIT)
    assert counts["skipped"] == len(first) and counts["written"] == 2 * LIMIT - len(first), counts
    everything = _q(store, "select run_id, sample_key from samples")
    assert len(everything) == 2 * LIMIT and not everything.duplicated().any()
    got, want = content(store), content(plain[0])
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
                                                      category="realistic", seed=1, status="failed",
                                                      error=f"written by {worker}"))

    results = ray.get([write.remote("a"), write.remote("b")])
    assert sorted(results) == [False, True]
    rows = _q(store, "select identity from samples")
    assert len(rows) == 1 and rows.identity[0] == ["a", "b"][results.index(True)]
    assert list((store / "tmp").iterdir()) == []


def _squares(delay: float):
    """A pool ``setup`` (nested, so cloudpickle sends it by value): squares, "boom" raises, "poison" kills."""
    def setup(info):
        import os as _os
        import time as _time

        def fn(item):
            if item == "boom":
                raise KeyError("boom item")
            if item == "poison":
                _os.kill(_os.getpid(), 9)  # kills every actor that tries it
            _time.sleep(delay)
            return item * item

        return fn

    return setup


def test_pool_retries_gives_up_and_raises(ray_cluster):
    from fastface.sweeps.distributed import PoolError, PoolOptions, run_pool

    _square_setup = _squares(0.05)
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


def test_pool_never_gives_up_an_item_that_only_shared_a_dead_actor(ray_cluster):
    """An actor killed with two items in flight: which one it was running is unknown, so neither
    is charged; even with max_attempts=1 both are retried (alone) and delivered. A poison item
    queued behind an innocent one on the same actor is still found and given up, the innocent
    one is delivered (CI once lost an innocent item here when its reply died with the actor)."""
    from fastface.sweeps.distributed import PoolOptions, run_pool

    results, seen, killed = {}, [], []

    def hook(pool, stats):
        if not killed and stats.done == 2:
            slot = max(pool.live(), key=lambda s: len(s.inflight))
            killed.append(len(slot.inflight))
            ray.kill(slot.handle, no_restart=True)

    opts = PoolOptions(actors=2, num_cpus=0.5, max_attempts=1, max_restarts=1)
    stats = run_pool(list(range(8)), _squares(1.0), opts, on_result=lambda i, r: results.__setitem__(i, r),
                     on_give_up=lambda i, e: seen.append(i), progress=None, hook=hook)
    assert killed == [2]  # it was killed with two items in flight
    assert results == {i: i * i for i in range(8)} and seen == [] and stats.given_up == 0
    assert stats.actor_deaths == 1 and stats.resubmitted == 2, stats
    results.clear()
    stats = run_pool([3, "poison", 4], _squares(0.05), PoolOptions(actors=1, num_cpus=0.5, max_attempts=1),
                     on_result=lambda i, r: results.__setitem__(i, r), on_give_up=lambda i, e: seen.append(i),
                     progress=None)
    assert results == {3: 9, 4: 16} and seen == ["poison"] and stats.given_up == 1, stats


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
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and "NO-RAY-OK" in out.stdout, out.stderr[-3000:]
    assert len(_q(store, "select * from samples")) == 1
    # Ray not installed: --ray fails before anything runs, with the install line
    blocked = "import sys; sys.modules['ray'] = None; from fastface.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", blocked, *args, "--store", str(tmp_path / "s2"), "--ray"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "pip install 'ray==" in out.stderr, out.stderr[-3000:]


def test_an_actor_without_the_drivers_store_or_code_refuses_to_start(tmp_path):
    from fastface.sweeps.sweep import SweepSpec
    from fastface.sweeps.sweep_ray import CaptureWorker

    def never(checkpoint):
        raise AssertionError("must not load anything")

    with pytest.raises(FileNotFoundError, match="shared filesystem mounted at the same path"):
        CaptureWorker(SweepSpec(**SPEC), str(tmp_path / "store"), never, "ray0", marker=str(tmp_path / "x.driver"))
    assert not (tmp_path / "store").exists()  # nothing created on the wrong filesystem
    with pytest.raises(RuntimeError, match="other fastface/probes/store code"):
        CaptureWorker(SweepSpec(**SPEC), str(tmp_path / "store"), never, "ray0", code="0" * 40)
    assert not (tmp_path / "store").exists()
