"""Synthetic runs/samples for the store tests, and a writer loop run as a real subprocess:

    python -m tests.store_helpers write STORE --run r1 --start 0 --stop 50 [--sleep 0.01]
        [--resume] [--hang-at 7 --ready-file F] [--worker w1] [--indices 1,2,3] [--no-durable]
        [--compact-every 4 --activation-delay 0.5 --retention 2]
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from store.records import (FaceRecord, MapRecord, MetricRecord, RunRecord, SampleRecord,  # noqa: E402
                           SiteRecord, sample_key)

SITE_KEYS = [
    "down_blocks.2.attentions.1.transformer_blocks.3.attn2",
    "mid_block.attentions.0.transformer_blocks.0.attn2",
    "up_blocks.0.attentions.2.transformer_blocks.6.attn2",
]
IMAGE = 64  # generated image side in pixels


def clone_sample_dir(src: Path, dst: Path, key: str) -> None:
    """A copy of a committed sample directory for another sample key (files rewritten with pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    dst.mkdir()
    for f in src.iterdir():
        t = pq.read_table(f)
        if "sample_key" in t.column_names:
            i = t.column_names.index("sample_key")
            t = t.set_column(i, t.schema.field(i), pa.array([key] * t.num_rows, t.schema.field(i).type))
        pq.write_table(t, dst / f.name, compression="zstd")


def tiny_png(width: int = 2, height: int = 2, value: int = 0) -> bytes:
    """A valid grayscale PNG."""
    raw = b"".join(b"\x00" + bytes([value % 256]) * width for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_run(run_id: str = "r1", **overrides) -> RunRecord:
    kw = dict(run_id=run_id, config={"preset": "fastface-4step", "steps": 4, "ip_scale": 0.8},
              name="test run", preset="fastface-4step", checkpoint="sdxl-base", ip_scale=0.8,
              lora_scale=1.0, seed=1234, capture_spec={"sites": SITE_KEYS, "encoding": "f16"},
              package_versions={"numpy": np.__version__})
    kw.update(overrides)
    return RunRecord(**kw)


def sample_keys(n: int, start: int = 0) -> list[str]:
    return [sample_key(f"id{i % 5}", f"a photo of person {i}", i) for i in range(start, start + n)]


def make_sample(i: int, *, n_steps: int = 2, hw: int = 8, encoding: str = "f16", fail: bool = False,
                site_keys: list[str] = SITE_KEYS):
    """(SampleRecord, maps, faces, metrics, sites) for sample number i (deterministic)."""
    rng = np.random.default_rng(i)
    key = sample_key(f"id{i % 5}", f"a photo of person {i}", i)
    if fail:
        s = SampleRecord(sample_key=key, identity=f"id{i % 5}", prompt=f"a photo of person {i}",
                         category="realistic", seed=i, status="failed", error="CUDA OOM (synthetic)",
                         sample_index=i)
        return s, [], [], [], []
    s = SampleRecord(sample_key=key, identity=f"id{i % 5}", prompt=f"a photo of person {i}",
                     category="realistic" if i % 2 == 0 else "stylistic", seed=i, status="ok",
                     image_png=tiny_png(2, 2, i), width=IMAGE, height=IMAGE, sample_index=i,
                     id_image_path=f"/ids/id{i % 5}.png", gen_seconds=0.5)
    maps = []
    for site in site_keys:
        for step in range(n_steps):
            for branch in ("id", "text_id"):
                m = rng.random((hw, hw)) ** 4
                m = m / m.sum()
                maps.append(MapRecord.from_map(m, site=site, step=step, branch=branch, token=-1,
                                               encoding=encoding, timestep=999.0 - 250 * step))
    detected = i % 7 != 3
    faces = [FaceRecord(role="reference", detected=True, backend="synthetic-1", det_size=640, n_faces=1,
                        bbox=(10, 12, 50, 58), kps=[20, 25, 40, 25, 30, 35, 22, 45, 38, 45], score=0.9,
                        area_ratio=0.4, embedding=rng.standard_normal(8)),
             FaceRecord(role="generated", detected=detected, backend="synthetic-1", det_size=640,
                        n_faces=int(detected), bbox=(16, 16, 48, 48) if detected else None,
                        kps=[24, 26, 40, 26, 32, 34, 26, 42, 38, 42] if detected else None,
                        score=0.8 if detected else None, area_ratio=0.25 if detected else None,
                        embedding=rng.standard_normal(8) if detected else None,
                        similarity=float(rng.uniform(0.2, 0.8)) if detected else None)]
    metrics = [MetricRecord("clip_t", float(rng.uniform(0.2, 0.3)), "clip-vit-l-14@1")]
    sites = [SiteRecord.from_key(k, heads=10, height=hw, width=hw) for k in site_keys]
    return s, maps, faces, metrics, sites


def write_samples(writer, run_id: str, indices, *, resume: bool = False, sleep: float = 0.0,
                  after_each=None, **kw) -> int:
    done = writer.done_sample_keys(run_id) if resume else set()
    n = 0
    for i in indices:
        s, maps, faces, metrics, sites = make_sample(i, **kw)
        if s.sample_key in done:
            continue
        n += writer.write_sample(run_id, s, maps=maps, faces=faces, metrics=metrics, sites=sites)
        if after_each is not None:
            after_each(n)
        if sleep:
            time.sleep(sleep)
    return n


def spawn_writer(store, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.store_helpers", "write", str(store), *args],
                            cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def main(argv=None) -> int:
    import pyarrow.parquet as pq

    from store.writer import StoreWriter

    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["write"])
    p.add_argument("store")
    p.add_argument("--run", default="r1")
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--stop", type=int, default=20)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--worker", default=None)
    p.add_argument("--no-durable", action="store_true", help="skip fsync (faster tests)")
    p.add_argument("--hang-at", type=int, default=None, help="hang before publishing this index")
    p.add_argument("--ready-file", default=None)
    p.add_argument("--indices", default=None, help="comma-separated indices (overrides start/stop)")
    p.add_argument("--compact-every", type=int, default=0, help="compact the run after every N samples written")
    p.add_argument("--activation-delay", type=float, default=None, help="compact(activation_delay_s=...)")
    p.add_argument("--retention", type=float, default=None, help="compact(retention_s=...)")
    a = p.parse_args(argv)
    w = StoreWriter(a.store, worker_id=a.worker, durable=not a.no_durable)
    w.begin_run(make_run(a.run))
    indices = [int(x) for x in a.indices.split(",")] if a.indices else range(a.start, a.stop)
    if a.hang_at is not None:
        hang_key = make_sample(a.hang_at)[0].sample_key

        def hook(tmp):  # called with the finished tmp dir, just before the rename
            f = tmp / "samples.parquet"
            if f.exists() and pq.read_table(f)["sample_key"][0].as_py() == hang_key:
                Path(a.ready_file).write_text(str(tmp))
                time.sleep(60)  # killed here by the test
        w._before_publish = hook
    after_each = None
    if a.compact_every:
        from store.compact import compact

        opts = {k: v for k, v in (("activation_delay_s", a.activation_delay), ("retention_s", a.retention))
                if v is not None}

        compacted_at = {0}

        def after_each(n_written):
            if n_written % a.compact_every == 0 and n_written not in compacted_at:
                compacted_at.add(n_written)
                compact(a.store, a.run, durable=not a.no_durable, **opts)
    n = write_samples(w, a.run, indices, resume=a.resume, sleep=a.sleep, after_each=after_each)
    w.set_status(a.run, "completed", n_done=len(w.done_sample_keys(a.run)))
    if a.compact_every:
        compact(a.store, a.run, durable=not a.no_durable, **opts)
    print(n, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
