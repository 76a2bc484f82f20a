"""Benchmark: compaction of one run at SDXL's capture spec (70 decoupled cross-attention sites x
4 steps x 4 ID tokens x pre/post = 2,240 head-mean maps of 32x32 float16 per sample, ~4.5 MB
of Parquet per sample), as time per sample and peak resident memory (RSS) of the process.

    python tests/benchmarks/bench_compaction.py [--samples 250 1000 3000] [--old-ref REF]
        [--old-file OLD_compact.py] [--old-max 250] [--dir /tmp] [--clone]

For each N it writes one run of N samples with StoreWriter in a child process, then compacts
it in a fresh child process (compact(..., activation_delay_s=0, retention_s=0), as a sweep
does, durable) and reads that child's peak resident memory (VmHWM: ru_maxrss would include
the parent's at fork). ``--old-ref REF`` also compacts a hard-linked
copy of the same store with the store/compact.py of git revision REF (for N <= --old-max:
the old code holds the whole run in memory). Prints one table; no assertions.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sdxl_store import SDXL_SITES, SIDE, synthetic_maps  # noqa: E402  (one definition of the SDXL spec)
POOL = 8   # distinct map sets (computing 2,240 summaries takes ~0.5 s; samples reuse them)


def _png(rng) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((rng.rand(64, 64, 3) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_run(store: Path, n: int, run_id: str = "bench", clone: bool = False) -> None:
    """One run of n samples through the StoreWriter API (not durable: faster to build). With
    ``clone``, only the first POOL samples go through the writer; the others are copies of their
    pool entry's committed directory under their own sample key (pyarrow rewrite, renamed in)."""
    from store.records import FaceRecord, MetricRecord, RunRecord, SampleRecord, SiteRecord, sample_key
    from store.writer import StoreWriter

    rng = np.random.RandomState(0)
    pool = [synthetic_maps(rng) for _ in range(POOL)]
    sites = [SiteRecord.from_key(s, heads=10, height=SIDE, width=SIDE) for s in SDXL_SITES]
    with StoreWriter(store, durable=False) as w:
        w.begin_run(RunRecord(run_id=run_id, config={"preset": "fastface-4step", "sites": "sdxl"},
                              preset="fastface-4step", checkpoint="hyper", ip_scale=0.8, lora_scale=1.0, seed=50))
        keys = []
        for i in range(n):
            detected = i % 5 != 0
            faces = [FaceRecord(role="generated", detected=detected, backend="dlib",
                                bbox=(16, 12, 48, 52) if detected else None, area_ratio=0.31 if detected else None,
                                similarity=float(rng.uniform(0.3, 0.9)) if detected else None)]
            metrics = [MetricRecord("id_sim", float(rng.uniform(0.3, 0.9)), "dlib")] if detected else []
            sample = SampleRecord(sample_key=sample_key(f"id{i % 54}", f"prompt {i // 54}", 50 + i),
                                  identity=f"id{i % 54}", prompt=f"prompt {i // 54}",
                                  category="realistic" if i % 2 else "stylistic", seed=50 + i,
                                  image_png=_png(rng), width=64, height=64)
            keys.append(sample.sample_key)
            if clone and i >= POOL:
                continue
            w.write_sample(run_id, sample, maps=pool[i % POOL], faces=faces, metrics=metrics, sites=sites)
        if clone and n > POOL:
            _clone_rest(store, run_id, keys)
        w.set_status(run_id, "completed", n_done=n, n_total=n)


def _clone_rest(store: Path, run_id: str, keys: list[str]) -> None:
    from store.layout import Layout
    from tests.store_helpers import clone_sample_dir

    layout = Layout(store)
    tmp = layout.tmp / "clones"
    tmp.mkdir(parents=True, exist_ok=True)
    for i in range(POOL, len(keys)):
        clone_sample_dir(layout.sample_dir(run_id, keys[i % POOL]), tmp / keys[i], keys[i])
        os.rename(tmp / keys[i], layout.sample_dir(run_id, keys[i]))
    tmp.rmdir()


def _load_compact(source: str | None):
    """store.compact, or (source = a compact.py file) that file as a module of the store package."""
    import store.compact

    if source is None:
        return store.compact
    spec = importlib.util.spec_from_file_location("store._bench_compact", source)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _child(argv: list[str]) -> None:
    """Run in a fresh process: write N samples or compact; print seconds and ru_maxrss (JSON)."""
    sys.path.insert(0, str(ROOT))
    what, store = argv[0], Path(argv[1])
    t = time.perf_counter()
    out: dict = {}
    if what == "write":
        write_run(store, int(argv[2]), clone=len(argv) > 3 and argv[3] == "clone")
    else:
        res = _load_compact(argv[2] if len(argv) > 2 else None).compact(
            store, "bench", activation_delay_s=0, retention_s=0)
        out = {"segments": len(res.segments), "n_samples": res.n_samples}
    hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    out |= {"seconds": time.perf_counter() - t, "max_rss_mb": hwm_kb / 1024}  # peak RSS since exec
    print(json.dumps(out))


def _run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], cwd=str(ROOT), capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:120],
                "returncode": proc.returncode}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tree_mb(d: Path) -> float:
    return sum(f.stat().st_size for f in d.rglob("*.parquet")) / 1e6


def bench(n: int, base: Path, old_source: str | None, old_max: int, clone: bool = False) -> list[dict]:
    store = base / f"n{n}" / "store"
    store.parent.mkdir(parents=True)
    w = _run_child("write", str(store), str(n), *(["clone"] if clone else []))
    rows = []
    if "error" in w:
        return [{"n": n, "code": "write", **w}]
    mb = _tree_mb(store / "data")
    variants = [("new", None)] + ([("old", old_source)] if old_source and n <= old_max else [])
    targets = {"new": store}
    for name, _ in variants[1:]:  # the same files, hard-linked (published files are never modified)
        targets[name] = base / f"n{n}" / f"store-{name}"
        subprocess.run(["cp", "-al", str(store), str(targets[name])], check=True)
    for name, source in variants:
        r = _run_child("compact", str(targets[name]), *([source] if source else []))
        rows.append({"n": n, "code": name, "data_mb": mb, "write": w, **r})
    shutil.rmtree(store.parent, ignore_errors=True)
    return rows


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _child(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, nargs="+", default=[250, 1000, 3000])
    ap.add_argument("--old-ref", help="also compact with store/compact.py of this git revision (e.g. b8bcd7e)")
    ap.add_argument("--old-file", help="also compact with this compact.py file (instead of --old-ref)")
    ap.add_argument("--old-max", type=int, default=250, help="run the old code only up to this many samples")
    ap.add_argument("--dir", default=None, help="scratch folder (default: the system temp dir)")
    ap.add_argument("--clone", action="store_true",
                    help="write only the first %d samples with StoreWriter and copy the rest (fast to build; "
                         "the write columns then time the copy, not the writer)" % POOL)
    a = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-compact-", dir=a.dir))
    old_source = a.old_file
    if a.old_ref and not a.old_file:
        old_source = str(base / "old_compact.py")
        Path(old_source).write_text(subprocess.run(["git", "show", f"{a.old_ref}:store/compact.py"], cwd=ROOT,
                                                   check=True, capture_output=True, text=True).stdout)
    print(f"SDXL spec: {len(SDXL_SITES)} sites x 4 steps x 4 tokens x 2 stages = {len(SDXL_SITES) * 32} maps "
          f"of {SIDE}x{SIDE} f16 per sample; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"{'N':>6s} {'code':>5s} {'data MB':>8s} {'write s/smp':>11s} {'write RSS MB':>12s} "
          f"{'compact s':>9s} {'s/sample':>8s} {'segments':>8s} {'peak RSS MB':>11s}", flush=True)
    try:
        for n in a.samples:
            for r in bench(n, base, old_source, a.old_max, a.clone):
                if "error" in r:
                    print(f"{n:6d} {r['code']:>5s}  failed: {r['error']}", flush=True)
                    continue
                w = r["write"]
                print(f"{n:6d} {r['code']:>5s} {r['data_mb']:8.0f} {w['seconds'] / n:11.3f} {w['max_rss_mb']:12.0f} "
                      f"{r['seconds']:9.1f} {r['seconds'] / n:8.3f} {r['segments']:8d} {r['max_rss_mb']:11.0f}",
                      flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
