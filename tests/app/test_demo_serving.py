"""``fastface demo`` serves the workbench while its capture fills the store, and a signal stops
both; the Figures page shows every standard figure in a fresh session; the capture's thread
choice; the "capture in progress" line."""

import argparse
import os
import signal
import socket
import time
import urllib.request

import pandas as pd
import pytest

from fastface.cli import capture as capture_cli
from fastface.sweeps import cpu_threads
from workbench import launch
from workbench.data.progress import capture_progress, progress_line

PLANNED = 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def _committed(store) -> int:
    from store.writer import done_sample_keys

    return len(done_sample_keys(store, "r-demo"))


def test_demo_serves_before_the_capture_is_done_and_sigterm_stops_both(tmp_path, monkeypatch):
    """The capture is a stub that commits one of PLANNED samples, then waits for the server: the
    server's health endpoint answers while the store holds fewer samples than planned; SIGTERM
    during the capture stops it (the stub sees StopRequested) and the server (port closed)."""
    from tests.app import fixture_store as fs
    from store.writer import StoreWriter

    store, port = tmp_path / "store", _free_port()
    seen: dict = {}
    started: list = []
    real_start = launch.start
    monkeypatch.setattr(launch, "start", lambda *a, **k: started.append(real_start(*a, **k)) or started[-1])

    def fake_sweep(ns, dataset):
        assert store.is_dir()  # the demo made the store before serving it
        img, _, ids = fs._id_images(store, tmp_path / "ids")
        with StoreWriter(store, worker_id="stub", durable=False) as w:
            fs._write_run(w, 0, ("r-demo", "ff-am2", 0.8, 1, "running", 3), img, ids, {},
                          n_total_running=PLANNED)
        deadline = time.monotonic() + 60
        while not _health(port):
            assert time.monotonic() < deadline, "the workbench never answered during the capture"
            time.sleep(0.25)
        seen["committed"] = _committed(store)
        seen["server_alive"] = started[0].poll() is None
        try:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` of the fastface process
            time.sleep(30)
        except launch.StopRequested:
            seen["interrupted"] = True
            raise
        raise AssertionError("SIGTERM did not reach the capture")

    monkeypatch.setattr(capture_cli, "_sweep", fake_sweep)
    monkeypatch.setattr(capture_cli, "_demo_evaluation", lambda store: pytest.fail("evaluation after SIGTERM"))
    args = argparse.Namespace(store=str(store), no_open=False, port=port, world="random", limit=1)
    try:
        rc = capture_cli.cmd_demo(args)
        assert rc == 128 + signal.SIGTERM
        assert seen == {"committed": 1, "server_alive": True, "interrupted": True}
        assert 1 < PLANNED
        assert started and started[0].poll() is not None  # the server was stopped, not left serving
        assert not _health(port)
    finally:
        for proc in started:
            launch.stop(proc, grace_s=5)


def test_demo_no_open_captures_without_a_server(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(launch, "start", lambda *a, **k: pytest.fail("--no-open started a server"))
    monkeypatch.setattr(capture_cli, "_sweep", lambda ns, ds: calls.append("sweep"))
    monkeypatch.setattr(capture_cli, "_demo_evaluation", lambda store: calls.append("evaluate"))
    args = argparse.Namespace(store=str(tmp_path / "s"), no_open=True, port=9, world="random", limit=1)
    assert capture_cli.cmd_demo(args) == 0 and calls == ["sweep", "evaluate"]


# --- the capture's threads -----------------------------------------------------------------------

@pytest.mark.parametrize("allowed, busy, want", [
    (2, 0.0, 2), (2, 0.2, 2), (2, 1.0, 1), (2, 1.9, 1), (2, 5.0, 1), (8, 2.6, 5), (8, None, 8), (1, 0.0, 1)])
def test_choose_threads_leaves_the_cores_others_use(allowed, busy, want):
    assert cpu_threads.choose_threads(allowed, busy) == want


@pytest.fixture
def torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # other tests run with the count they started with


def test_thread_policy_respects_the_environment(monkeypatch, torch_threads):
    monkeypatch.setenv(cpu_threads.ENV, "1")
    import torch

    torch.set_num_threads(2)
    policy = cpu_threads.ThreadPolicy(verbose=False, settle_s=0)
    assert policy.update() == 1 and torch.get_num_threads() == 1
    policy.restore()
    assert torch.get_num_threads() == 2  # the capture's end gives the process its count back
    monkeypatch.setenv(cpu_threads.ENV, "zero")
    with pytest.raises(ValueError, match="FASTFACE_THREADS"):
        cpu_threads.ThreadPolicy(verbose=False)
    monkeypatch.delenv(cpu_threads.ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads.ThreadPolicy(verbose=False, settle_s=0).update() is None  # the user's choice stands


def test_load_meter_sees_a_busy_process():
    """Another process spinning on one core shows as ~1 busy core (what it measures is
    /proc/stat minus this process's own CPU time; other processes on the machine add to it,
    so only a lower bound is asserted)."""
    import subprocess
    import sys

    meter = cpu_threads.LoadMeter()
    spin = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    try:
        time.sleep(0.5)
        meter.others()
        time.sleep(1.5)
        busy = meter.others()
    finally:
        spin.kill()
        spin.wait()
    assert busy is not None and busy >= 0.7, busy


# --- the "capture in progress" line --------------------------------------------------------------

def test_capture_progress_counts_the_running_sweep():
    notes = '{"sweep": {"presets": ["a", "b"]}, "dataset": "d"}'
    runs = pd.DataFrame({
        "run_id": ["a", "b", "old"], "status": ["completed", "running", "completed"],
        "n_samples": [4, 1, 9], "n_done": [4, None, 9], "n_total": [4, 4, 9], "n_failed_samples": [1, 0, 0],
        "notes": [notes, notes, '{"sweep": {"presets": ["x"]}, "dataset": "d"}'],
        "seed": [1, 1, 1], "capture_spec_json": ["{}"] * 3, "host": ["h"] * 3, "package_versions_json": ["{}"] * 3})
    p = capture_progress(runs)
    assert p == {"done": 5, "total": 8, "runs": 2, "runs_done": 1, "failed": 1}
    assert progress_line(p).startswith("Capture in progress: 5 of 8 samples (1 of 2 runs complete, 1 failed)")
    assert capture_progress(runs.assign(status="completed")) is None
    assert capture_progress(runs.assign(n_total=[4, None, 9]))["total"] is None
