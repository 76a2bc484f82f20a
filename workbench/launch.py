"""Start the workbench: ``streamlit run workbench/app.py -- --store PATH`` in a subprocess.

``fastface workbench --store PATH [--port N]`` (and ``fastface demo``) call
``main(store_path, port)``; ``fastface demo`` calls ``serve_during(store_path, capture, port)``:
the server starts first and the capture fills the store under it. The server runs in its own session (process group): Ctrl-C
(SIGINT), ``kill PID`` (SIGTERM) and a closed terminal (SIGHUP) of the ``fastface`` process
stop it and everything it started (the group is terminated, then killed after 10 s), so
nothing is left serving on the port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 10.0


def command(store_path: str | os.PathLike, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> list[str]:
    """The streamlit command line that serves the workbench for a store."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.address", str(host), "--server.port", str(int(port)),
            "--server.headless", "true",
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
            "--client.toolbarMode", "minimal",
            "--", "--store", os.path.abspath(os.fspath(store_path))]


#: the server's CPU threads: pages decode maps with numpy and query DuckDB (2 threads, see
#: workbench/data/sql_console.py); one BLAS/OpenMP thread each keeps it from competing with a
#: capture beside it (an environment that sets them wins)
SERVER_THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def environment(store_path: str | os.PathLike) -> dict[str, str]:
    root = str(APP.parents[1])
    env = {**SERVER_THREADS, **os.environ}
    env["FASTFACE_STORE"] = os.path.abspath(os.fspath(store_path))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start(store_path: str | os.PathLike, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
          **popen_kwargs) -> subprocess.Popen:
    """Start the server and return at once (the caller owns the process; it leads its own
    process group unless ``start_new_session=False`` is passed: see :func:`stop`)."""
    popen_kwargs.setdefault("start_new_session", True)
    return subprocess.Popen(command(store_path, port, host), env=environment(store_path),
                            cwd=str(APP.parents[1]), **popen_kwargs)


def stop(proc: subprocess.Popen, grace_s: float = GRACE_S) -> int:
    """Terminate the server's process group (SIGTERM), SIGKILL it after ``grace_s``; returns
    the server's exit status. The group is only signalled while the server is not yet reaped
    (its pid, hence the group id, is still ours)."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            return proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
    return proc.wait()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        if os.getpgid(proc.pid) == proc.pid:  # leads its own group (start_new_session)
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass  # already gone


@contextmanager
def stop_signals():
    """Within the block, SIGINT, SIGTERM and SIGHUP are recorded instead of killing this
    process (yields the list they are appended to), so that the caller can stop its server
    first; the previous handlers are restored on exit. Outside the main thread (where
    handlers cannot be set) the list stays empty."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {}

    def record(signum, _frame):
        received.append(signum)

    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, record)
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class StopRequested(BaseException):
    """SIGINT, SIGTERM or SIGHUP arrived while work ran beside the server (raise_on_stop_signals)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def raise_on_stop_signals():
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`StopRequested` in the main
    thread (so work in progress unwinds through its ``finally`` blocks, and the caller stops its
    server); the previous handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def stop(signum, _frame):
        raise StopRequested(signum)

    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, stop)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def url(host: str, port: int) -> str:
    return f"http://{host}:{int(port)}"


def serve_during(store_path: str | os.PathLike, work, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
                 *, keep_serving: bool = True) -> int:
    """Start the server for an existing store, then run ``work()`` (a capture filling the
    store: the pages show what has landed) and serve on until the server exits or a signal
    arrives. SIGINT, SIGTERM and SIGHUP stop both, during the work or after it; an error of the
    work stops the server and is raised. Returns the server's status, 0 when ``keep_serving``
    is False (stop once the work is done), or 128 + the signal number."""
    with raise_on_stop_signals():  # before the server starts: no signal can leave it orphaned
        proc = None
        try:
            proc = start(store_path, port, host)
            print(f"FastFace Workbench for {os.path.abspath(store_path)}: open {url(host, port)} in a browser; "
                  "it fills in as samples land (Ctrl-C or `kill PID` stops the capture and the server)", flush=True)
            work()
            if proc.poll() is not None:
                print(f"fastface: the workbench server exited ({proc.returncode}) while the capture ran; "
                      f"serve the store with `fastface workbench --store {store_path}`", file=sys.stderr, flush=True)
                return proc.returncode
            if not keep_serving:
                return 0
            print(f"Capture done: the workbench keeps serving on {url(host, port)} (Ctrl-C stops it)", flush=True)
            while True:
                try:
                    return proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
        except StopRequested as e:
            print(f"fastface: {signal.Signals(e.signum).name} received, stopping the server on port {port}",
                  file=sys.stderr, flush=True)
            return 128 + e.signum
        finally:
            if proc is not None:
                with stop_signals():  # a second Ctrl-C must not interrupt the stopping
                    stop(proc)


def main(store_path: str | os.PathLike | None = None, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> int:
    """Serve the workbench until the server exits (its status) or this process gets SIGINT,
    SIGTERM or SIGHUP (128 + the signal number, after the server's group has stopped)."""
    store_path = store_path or os.environ.get("FASTFACE_STORE")
    if not store_path:
        print("fastface workbench: give --store PATH (or set FASTFACE_STORE)", file=sys.stderr)
        return 2
    if not Path(store_path).is_dir():
        print(f"fastface workbench: store folder {store_path} does not exist; "
              "run `fastface demo` or `fastface capture ...` first", file=sys.stderr)
        return 2
    print(f"FastFace Workbench for {os.path.abspath(store_path)}: open http://{host}:{port} in a browser "
          "(Ctrl-C or `kill PID` stops it)", flush=True)
    with stop_signals() as received:
        proc = start(store_path, port, host)
        try:
            while not received:
                try:
                    return proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    continue
            name = signal.Signals(received[0]).name
            print(f"fastface workbench: {name} received, stopping the server on port {port}", file=sys.stderr, flush=True)
            return 128 + received[0]
        finally:
            stop(proc)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="FastFace Workbench")
    ap.add_argument("--store", default=os.environ.get("FASTFACE_STORE"))
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    raise SystemExit(main(a.store, a.port, a.host))
