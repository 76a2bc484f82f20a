"""``fastface evaluate --ray``: the same metrics as the single-process evaluation with 2 actors,
an actor killed mid-evaluation (nothing lost, nothing written twice), a retried batch committed
once, resume, and the plain path without Ray.

Runs on the evaluation store of test_eval_store (4 ok samples: the ID photo itself, a blank
image, ...; one failed sample) with the tiny evaluation world, on a local 2-CPU Ray cluster.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from fastface.cli import main as cli
from tests.ray_helpers import sigkill_busiest_actor
from tests.integration.test_eval_store import _metrics, _raw_metric_rows, build_store

pytest.importorskip("ray")


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(pristine store, the same store evaluated by the single-process path, its metric rows)."""
    from fastface.evaluation.runner import evaluate_store

    root = tmp_path_factory.mktemp("evalray")
    build_store(root / "pristine")
    shutil.copytree(root / "pristine", root / "plain")
    summary = evaluate_store(root / "plain", _cfg(), progress=False)
    assert summary.n_evaluated == 4 and summary.problems  # the 'ghost' sample's ID photo is missing
    return root, root / "plain", _metrics(root / "plain")


def _cfg():
    from fastface.evaluation.evaluate import EvalConfig

    return EvalConfig(tiny=True, device="cpu", batch_size=1)


def _copy(stores, tmp_path):
    dst = tmp_path / "store"
    shutil.copytree(stores[0] / "pristine", dst)
    return dst


def assert_same_metrics(got: list[dict], want: list[dict]) -> None:
    assert [(r["sample_key"], r["name"], r["model"]) for r in got] == \
           [(r["sample_key"], r["name"], r["model"]) for r in want]
    for a, b in zip(got, want):  # same code, device and thread count: equal up to float noise
        if b["value"] is None or (isinstance(b["value"], float) and math.isnan(b["value"])):
            assert a["value"] is None or math.isnan(a["value"]), (a, b)
        else:
            assert a["value"] == pytest.approx(b["value"], rel=1e-5, abs=1e-6), (a, b)


def test_two_actor_evaluation_equals_the_plain_one_and_a_second_run_writes_nothing(ray_cluster, stores, tmp_path,
                                                                                   capsys):
    store = _copy(stores, tmp_path)
    args = ["evaluate", "--store", str(store), "--tiny", "--device", "cpu", "--batch-size", "1", "--no-progress",
            "--ray", "--ray-actors", "2"]
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "ok samples: 4; already complete: 0; evaluated now: 4" in out, out
    assert "ray: 2 actors, 0 died, 0 batches resubmitted" in out and "not computed" in out, out
    got = _metrics(store)
    assert_same_metrics(got, stores[2])
    raw = _raw_metric_rows(store)
    assert len(raw) == len(set(raw)) == len(got)
    names = {p.name for p in (store / "data" / "run=r1").glob("metrics=*")}
    assert len(names) == 4 and all(n.startswith("metrics=eval-") for n in names)
    # the same command again: everything is there, nothing is written
    assert cli(args) == 0
    out = capsys.readouterr().out
    assert "already complete: 3; evaluated now: 0; metric rows written: 0" in out, out  # 'ghost' lacks id_sim
    assert len(_raw_metric_rows(store)) == len(raw)


def test_an_actor_killed_mid_evaluation_loses_nothing_and_writes_nothing_twice(ray_cluster, stores, tmp_path):
    from fastface.evaluation.evaluate_ray import evaluate_store_ray

    store = _copy(stores, tmp_path)
    events = {}

    def hook(pool, stats):
        if "pid" not in events:  # first result: kill an actor with work in flight
            sigkill_busiest_actor(pool, events)

    summary = evaluate_store_ray(store, _cfg(), progress=False, actors=2, max_restarts=0, hook=hook)
    assert events["inflight"] >= 1
    assert summary.ray["actor_deaths"] == 1 and summary.ray["resubmitted"] >= 1, summary.ray
    assert summary.n_evaluated + summary.duplicates == 4 and summary.n_complete == 0
    got = _metrics(store)
    assert_same_metrics(got, stores[2])
    raw = _raw_metric_rows(store)
    assert len(raw) == len(set(raw)) == len(got)


def test_a_batch_evaluated_twice_is_committed_once(stores, tmp_path):
    """An actor that dies after committing a batch: the actor that retries it (its view of the
    store taken before the commit) computes the batch again; its commit is discarded."""
    from fastface.evaluation.evaluate_ray import EvalWorker, batches_of
    from store.db import connect_read_only
    from store.queries import run_query

    store = _copy(stores, tmp_path)
    con = connect_read_only(store)
    rows = run_query(con, "report_eval_samples", runs="").to_dict("records")
    con.close()
    batch = batches_of(rows, 2)[0]
    first, second = EvalWorker(_cfg(), str(store), "a"), EvalWorker(_cfg(), str(store), "b")
    try:
        second._have("r1")  # b read the store's keys before a committed
        a = first(batch)
        assert a["evaluated"] == 2 and a["duplicates"] == 0 and a["complete"] == 0
        n = len(_raw_metric_rows(store))
        b = second(batch)
        assert b["evaluated"] == 0 and b["duplicates"] == 2 and b["rows"] == 0
        assert len(_raw_metric_rows(store)) == n
        # compacted, the commit is still known: a retry after compaction is discarded as well
        from store.compact import compact

        compact(store, "r1")
        third = EvalWorker(_cfg(), str(store), "c")
        third._existing["r1"] = set()  # as if it had read the store before a's commit
        c = third(batch)
        third.close()
        assert c["duplicates"] == 2 and len(_raw_metric_rows(store)) == n
    finally:
        first.close()
        second.close()
    assert [len(b) for b in batches_of([{"run_id": r} for r in "aaabba"], 2)] == [2, 1, 2, 1]


def test_plain_evaluate_does_not_import_ray_and_missing_ray_is_a_clear_error(stores, tmp_path):
    store = _copy(stores, tmp_path)
    code = textwrap.dedent("""
        import sys
        from fastface.cli import main
        rc = main(sys.argv[1:])
        assert rc == 0, rc
        assert "ray" not in sys.modules, "the plain evaluation imported ray"
        print("NO-RAY-OK")
    """)
    args = ["evaluate", "--store", str(store), "--tiny", "--device", "cpu", "--metrics", "ffc", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and "NO-RAY-OK" in out.stdout, out.stderr[-3000:]
    assert len(_metrics(store)) == 4
    blocked = "import sys; sys.modules['ray'] = None; from fastface.cli import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run([sys.executable, "-c", blocked, *args, "--ray"], capture_output=True, text=True,
                         timeout=300, env=env)
    assert out.returncode == 2 and "pip install 'ray==" in out.stderr, out.stderr[-3000:]


def test_an_actor_without_the_drivers_store_or_code_refuses_to_start(stores, tmp_path):
    from fastface.evaluation.evaluate_ray import EvalWorker

    with pytest.raises(FileNotFoundError, match="shared filesystem mounted at the same path"):
        EvalWorker(_cfg(), str(tmp_path / "store"), "ray-eval0", marker=str(tmp_path / "x.driver"))
    with pytest.raises(RuntimeError, match="other fastface/fastface.evaluation/store code"):
        EvalWorker(_cfg(), str(tmp_path / "store"), "ray-eval0", code="0" * 40)
    assert not (tmp_path / "store").exists()


def test_a_numbered_cuda_device_with_ray_is_refused_before_anything_runs(stores, tmp_path, capsys):
    from fastface.sweeps.dataset import write_demo_dataset

    store = _copy(stores, tmp_path)
    write_demo_dataset(tmp_path / "ds")
    for command in (["evaluate", "--store", str(store), "--tiny"],
                    ["capture", "--dataset", str(tmp_path / "ds"), "--store", str(tmp_path / "s2"), "--tiny"]):
        rc = cli([*command, "--device", "cuda:1", "--ray"])
        assert rc == 2, command
        assert "leave --device unset" in capsys.readouterr().err
    assert _metrics(store) == [] and not (tmp_path / "s2").exists()
