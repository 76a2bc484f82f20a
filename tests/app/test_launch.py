"""workbench.launch and the store path resolution."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import launch
from workbench.data import queries

ROOT = Path(__file__).resolve().parents[2]


def test_command_runs_streamlit_headless_on_host_and_port(tmp_path):
    cmd = launch.command(tmp_path, port=9123, host="127.0.0.1")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4].endswith(os.path.join("workbench", "app.py"))
    flags = dict(zip(cmd[5:cmd.index("--")][::2], cmd[5:cmd.index("--")][1::2]))
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "9123"
    assert flags["--server.headless"] == "true"
    assert cmd[cmd.index("--") + 1:] == ["--store", str(tmp_path)]
    env = launch.environment(tmp_path)
    assert env["FASTFACE_STORE"] == str(tmp_path)


def test_main_refuses_a_missing_store(tmp_path, capsys):
    assert launch.main(tmp_path / "nope", port=9) == 2
    assert "does not exist" in capsys.readouterr().err


def test_store_path_from_argv_then_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FASTFACE_STORE", str(tmp_path / "env"))
    assert queries.store_path(["--store", str(tmp_path / "argv")]) == str(tmp_path / "argv")
    assert queries.store_path([]) == str(tmp_path / "env")
    monkeypatch.delenv("FASTFACE_STORE")
    assert queries.store_path([]) is None


# --- the server goes with the fastface process --------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _descendants(pid: int) -> set[int]:
    """pids of every process below pid (Linux /proc)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo.extend(kids - out)
            out |= kids
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie serves nothing


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    from store.writer import StoreWriter
    from tests.store_helpers import make_run, write_samples

    path = tmp_path_factory.mktemp("launch") / "store"
    w = StoreWriter(path, worker_id="w0", durable=False)
    try:
        w.begin_run(make_run("r1"))
        write_samples(w, "r1", range(2))
    finally:
        w.close()
    return path


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the server process")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_fastface_workbench_stops_its_server_on_a_signal(small_store, tmp_path, sig):
    port = _free_port()
    log = tmp_path / "workbench.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "wb") as out:  # its own session, like a shell job: the signal reaches fastface only
        proc = subprocess.Popen([sys.executable, "-m", "fastface.cli", "workbench", "--store", str(small_store),
                                 "--port", str(port)], cwd=str(ROOT), env=env, stdout=out, stderr=out,
                                start_new_session=True)
    server: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while not _listening(port):
            assert proc.poll() is None, f"fastface workbench exited early: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"nothing listens on {port}: {log.read_text()[-2000:]}"
            time.sleep(0.3)
        server = _descendants(proc.pid)
        assert server, "the server is not a child of the fastface process"
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 128 + sig
        deadline = time.monotonic() + 15
        while (_listening(port) or any(_alive(p) for p in server)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening(port), f"port {port} still serves after {sig.name} to fastface"
        assert not [p for p in server if _alive(p)], f"server processes {server} outlived fastface"
        assert f"{sig.name} received" in log.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for p in server:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
