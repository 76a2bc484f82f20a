"""Store micro-benchmarks (CPU only):  python -m store.bench [--quick]

1. write N samples with M f16 maps of S x S each (durable and not), time per sample;
2. bytes on disk per stored map value (f16, u8) for attention-like maps;
3. count queries over K committed samples, before and after compaction.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .compact import compact
from .db import connect_read_only
from .queries import run_query
from .records import MapRecord, RunRecord, SampleRecord, SiteRecord, sample_key
from .writer import StoreWriter

SITES = ["down_blocks.2.attentions.1.transformer_blocks.3.attn2",
         "mid_block.attentions.0.transformer_blocks.0.attn2",
         "up_blocks.0.attentions.2.transformer_blocks.6.attn2"]


def _attention_like(rng, side: int) -> np.ndarray:
    m = rng.random((side, side)) ** 6
    return (m / m.sum()).astype(np.float32)


def _samples(n: int, n_maps: int, side: int, encoding: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        s = SampleRecord(sample_key=sample_key("bench", "prompt", i), identity="bench", prompt="prompt",
                         category="realistic", seed=i, image_png=b"\x89PNG-bench", width=1024, height=1024)
        maps = [MapRecord.from_map(_attention_like(rng, side), site=SITES[j % 3], step=j // 6,
                                   branch=("id", "text_id")[j % 2], token=(j // 2) % 3 - 1, encoding=encoding)
                for j in range(n_maps)]
        out.append((s, maps))
    return out


def _writer(root: Path, durable: bool) -> StoreWriter:
    w = StoreWriter(root, durable=durable)
    w.begin_run(RunRecord(run_id="bench", config={"bench": True}))
    return w


def bench_write(root: Path, n: int, n_maps: int, side: int, durable: bool) -> dict:
    data = _samples(n, n_maps, side, "f16")
    w = _writer(root, durable)
    sites = [SiteRecord.from_key(k, 10, side, side) for k in SITES]
    t = time.perf_counter()
    for s, maps in data:
        w.write_sample("bench", s, maps=maps, sites=sites)
    dt = time.perf_counter() - t
    w.close()
    return {"samples": n, "maps_per_sample": n_maps, "side": side, "durable": durable,
            "seconds": round(dt, 3), "ms_per_sample": round(1000 * dt / n, 1)}


def bytes_per_value(root: Path, encoding: str, n: int = 20, n_maps: int = 50, side: int = 32) -> dict:
    w = _writer(root, durable=False)
    for s, maps in _samples(n, n_maps, side, encoding, seed=1):
        w.write_sample("bench", s, maps=maps)
    w.close()
    files = list((root / "data" / "run=bench").glob("sample=*/maps.parquet"))
    size = sum(f.stat().st_size for f in files)
    before = size / (n * n_maps * side * side)
    compact(root, "bench", activation_delay_s=0, retention_s=0)  # nothing reads it: merge and remove now
    seg = sum(f.stat().st_size for f in (root / "data" / "run=bench").glob("segment=*/maps.parquet"))
    return {"encoding": encoding, "bytes_per_value_sample_files": round(before, 3),
            "bytes_per_value_compacted": round(seg / (n * n_maps * side * side), 3)}


def _best(con, sql: str, params=None, reps: int = 3) -> float:
    con.execute(sql, params or {}).fetchall()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        con.execute(sql, params or {}).fetchall()
        best = min(best, time.perf_counter() - t)
    return round(1000 * best, 1)


def bench_count(root: Path, n: int) -> dict:
    data = _samples(n, 4, 8, "f16", seed=2)
    w = _writer(root, durable=False)
    for s, maps in data:
        w.write_sample("bench", s, maps=maps)
    w.close()
    out = {"committed_samples": n}
    con = connect_read_only(root)
    out["count_samples_ms"] = _best(con, "select count(*) from samples")
    out["count_maps_ms"] = _best(con, "select count(*) from maps")
    t = time.perf_counter()
    run_query(con, "maps_for_sample", run_id="bench", sample_key=data[n // 2][0].sample_key)
    out["maps_for_sample_ms"] = round(1000 * (time.perf_counter() - t), 1)
    con.close()
    t = time.perf_counter()
    compact(root, "bench", activation_delay_s=0, retention_s=0)  # nothing reads it: merge and remove now
    out["compact_s"] = round(time.perf_counter() - t, 2)
    con = connect_read_only(root)
    out["count_samples_compacted_ms"] = _best(con, "select count(*) from samples")
    out["count_maps_compacted_ms"] = _best(con, "select count(*) from maps")
    con.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes")
    p.add_argument("--dir", default=None, help="scratch folder (default: a temp dir)")
    a = p.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="store-bench-", dir=a.dir))
    n_write, n_count = (20, 200) if a.quick else (100, 1000)
    results = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    try:
        for durable in (False, True):
            results[f"write_durable_{durable}"] = bench_write(base / f"w{int(durable)}", n_write, 50, 32, durable)
        for enc in ("f16", "u8"):
            results[f"size_{enc}"] = bytes_per_value(base / f"size_{enc}", enc)
        results["count"] = bench_count(base / "count", n_count)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
