"""Benchmark: the demo's capture alone and beside one busy process, with torch's default thread
count ("old": one intra-op thread per core, what the capture used before fastface/sweeps/
cpu_threads.py) and with the thread choice of cpu_threads ("new": the cores other processes
leave free, re-chosen between samples).

    python tests/benchmarks/bench_demo_threads.py                 # face world, --limit 2
    python tests/benchmarks/bench_demo_threads.py --world random --limit 1 --cases old-busy,new-busy

Each case runs ``fastface demo --no-open`` (capture and evaluation, no server) into a fresh
store in a subprocess, without OMP_NUM_THREADS in its environment (``old`` sets
FASTFACE_THREADS to torch's default, ``new`` leaves it unset), and reads the per-sample
generation time (``samples.gen_seconds``) from the store.  "busy" starts one process spinning
in a Python loop (``--pin`` pins it to CPU 0) for the whole case.  It prints the load average
and the CPU count before each case: other processes on the machine change the figures, so
report them with the conditions.  No assertion: figures only.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPIN = "while True: pass"


def _env(case: str) -> dict:
    import torch

    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                             "FASTFACE_THREADS")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if case.startswith("old"):
        env["FASTFACE_THREADS"] = str(torch.get_num_threads())  # torch's default: the old behaviour
    return env


def _spinner(pin: bool) -> subprocess.Popen:
    cmd = ["taskset", "-c", "0", sys.executable, "-c", SPIN] if pin else [sys.executable, "-c", SPIN]
    return subprocess.Popen(cmd)


def run_case(case: str, world: str, limit: int, pin: bool, keep: Path) -> dict:
    store = keep / case / "store"
    load = os.getloadavg()
    spin = _spinner(pin) if case.endswith("busy") else None
    t0 = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "fastface.cli", "demo", "--no-open", "--world", world,
                              "--limit", str(limit), "--store", str(store)], env=_env(case), cwd=str(ROOT),
                             capture_output=True, text=True)
    finally:
        if spin is not None:
            spin.kill()
            spin.wait()
    wall = time.perf_counter() - t0
    if out.returncode:
        raise SystemExit(f"{case}: fastface demo failed ({out.returncode}):\n{out.stderr[-2000:]}")
    threads = re.findall(r"capture: (\d+) torch threads? \(", out.stderr)  # each choice cpu_threads printed
    from store.db import connect_read_only

    con = connect_read_only(store)
    secs = [r[0] for r in con.execute("select gen_seconds from samples where status = 'ok' "
                                      "and gen_seconds is not null").fetchall()]
    con.close()
    return {"case": case, "load_before": load, "wall_s": wall, "n": len(secs),
            "median_s": statistics.median(secs) if secs else float("nan"),
            "sum_s": sum(secs), "max_s": max(secs, default=float("nan")), "threads": threads}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", default="face", choices=["face", "random"])
    ap.add_argument("--limit", type=int, default=2, help="(identity, prompt) pairs per run (12 runs)")
    ap.add_argument("--cases", default="old-alone,new-alone,old-busy,new-busy")
    ap.add_argument("--pin", action="store_true", help="pin the busy process to CPU 0")
    a = ap.parse_args()
    print(f"cpus {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}, world {a.world}, limit {a.limit}, "
          f"busy process {'pinned to CPU 0' if a.pin else 'not pinned'}")
    keep = Path(tempfile.mkdtemp(prefix="bench-demo-threads-"))
    rows = []
    try:
        for case in a.cases.split(","):
            r = run_case(case.strip(), a.world, a.limit, a.pin, keep)
            rows.append(r)
            print(f"{r['case']:10s} load before {r['load_before'][0]:.2f}/{r['load_before'][1]:.2f} | "
                  f"{r['n']} samples: median {r['median_s']:.2f} s, max {r['max_s']:.2f} s, sum {r['sum_s']:.1f} s | "
                  f"command {r['wall_s']:.1f} s | threads chosen in turn: {','.join(r['threads']) or '-'}",
                  flush=True)
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    print("\ncase        median s/sample   sum s   command s")
    for r in rows:
        print(f"{r['case']:10s}  {r['median_s']:14.2f}  {r['sum_s']:6.1f}  {r['wall_s']:9.1f}")


if __name__ == "__main__":
    main()
