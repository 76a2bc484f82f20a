"""Start the workbench: ``streamlit run workbench/app.py -- --store PATH`` in a subprocess.

``fastface workbench --store PATH [--port N]`` calls ``main(store_path, port)``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_PORT = 8501


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
    """Start the server and return at once (the caller owns the process)."""
    return subprocess.Popen(command(store_path, port, host), env=environment(store_path),
                            cwd=str(APP.parents[1]), **popen_kwargs)


def main(store_path: str | os.PathLike | None = None, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> int:
    """Serve the workbench until interrupted; returns streamlit's exit status."""
    store_path = store_path or os.environ.get("FASTFACE_STORE")
    if not store_path:
        print("fastface workbench: give --store PATH (or set FASTFACE_STORE)", file=sys.stderr)
        return 2
    if not Path(store_path).is_dir():
        print(f"fastface workbench: store folder {store_path} does not exist; "
              "run `fastface demo` or `fastface capture ...` first", file=sys.stderr)
        return 2
    print(f"FastFace Workbench for {os.path.abspath(store_path)} on http://{host}:{port}", flush=True)
    proc = start(store_path, port, host)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="FastFace Workbench")
    ap.add_argument("--store", default=os.environ.get("FASTFACE_STORE"))
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    ap.add_argument("--host", default="127.0.0.1")
    a = ap.parse_args()
    raise SystemExit(main(a.store, a.port, a.host))
