"""Start the workbench: ``streamlit run workbench/app.py -- --store PATH`` in a subprocess.

``fastface workbench --store PATH [--port N]`` (and ``fastface demo``) call
``main(store_path, port)``. The server runs in its own session (process group): Ctrl-C
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


def environment(store_path: str | os.PathLike) -> dict[str, str]:
    root = str(APP.parents[1])
    env = dict(os.environ)
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
