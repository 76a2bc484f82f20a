"""Benchmark: the workbench on a synthetic store of 1,000 samples with head-mean maps of all
sites (the tiny world's 17 sites x 4 steps x 4 ID tokens x pre/post = 544 maps per sample).

    python tests/benchmarks/bench_workbench.py [--samples 1000] [--store DIR]

Prints the build time, the store size, each page's cold and warm AppTest render time (the
warm one is what a user sees when moving between pages), and the time of the heaviest named
queries. Target: every page under 1 s on this 2-core machine.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

SITES = [  # the tiny world's 17 decoupled blocks and their 8x8 latent grids (64 px images)
    *(f"down_blocks.1.attentions.{a}.transformer_blocks.0.attn2" for a in range(2)),
    *(f"down_blocks.2.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(2) for l in range(2)),
    *(f"up_blocks.0.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(3) for l in range(2)),
    *(f"up_blocks.1.attentions.{a}.transformer_blocks.0.attn2" for a in range(3)),
    *(f"mid_block.attentions.0.transformer_blocks.{l}.attn2" for l in range(2)),
]
PAGES = ["pages/runs.py", "pages/samples.py", "pages/attention.py", "pages/faces.py", "pages/compare.py",
         "pages/sql.py", "pages/figures.py"]


def _grid(site: str) -> int:
    return 16 if site.startswith(("down_blocks.1", "up_blocks.1")) else 8


def _png(rng) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((rng.rand(64, 64, 3) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def build(path: Path, n: int, runs: int = 4) -> float:
    from store.compact import compact
    from store.records import FaceRecord, MapRecord, MetricRecord, RunRecord, SampleRecord, SiteRecord, sample_key
    from store.writer import StoreWriter

    rng = np.random.RandomState(0)
    w = StoreWriter(path)
    sites = [SiteRecord.from_key(s, heads=2, height=_grid(s), width=_grid(s)) for s in SITES]
    presets = ["baseline", "am1", "am2", "ff-am2"]
    t0 = time.perf_counter()
    per_run = n // runs
    for r in range(runs):
        run_id = f"bench-{presets[r % 4]}"
        w.begin_run(RunRecord(run_id=run_id, config={"preset": presets[r % 4]}, preset=presets[r % 4],
                              checkpoint="hyper", ip_scale=0.8, lora_scale=1.0, seed=50))
        for i in range(per_run):
            key = sample_key(f"id{i % 20}", f"prompt {i // 20}", 50 + i)
            maps = []
            for s in SITES:
                g = _grid(s)
                for step in range(4):
                    logits = rng.randn(g * g, 4) * 2
                    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
                    for token in range(4):
                        m = probs[:, token].reshape(g, g)
                        for stage, arr in (("pre", m), ("post", np.minimum(1.5 * m ** 1.3, 10))):
                            maps.append(MapRecord.from_map(arr, site=s, step=step, branch="text_id", token=token,
                                                           stage=stage, encoding="f16", timestep=999 - 250 * step))
            detected = i % 5 != 0
            faces = [FaceRecord(role="generated", detected=detected, backend="dlib",
                                bbox=(16, 12, 48, 52) if detected else None, area_ratio=0.31 if detected else None,
                                similarity=float(rng.uniform(0.3, 0.9)) if detected else None)]
            metrics = [MetricRecord("id_sim", float(rng.uniform(0.3, 0.9)), "dlib")] if detected else []
            w.write_sample(run_id, SampleRecord(sample_key=key, identity=f"id{i % 20}", prompt=f"prompt {i // 20}",
                                                category="realistic" if i % 2 else "stylistic", seed=50 + i,
                                                image_png=_png(rng), width=64, height=64),
                           maps=maps, faces=faces, metrics=metrics, sites=sites)
        w.set_status(run_id, "completed", n_done=per_run, n_total=per_run)
        compact(path, run_id, activation_delay_s=0, retention_s=0)  # no reader yet: remove the merged folders now
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--store", help="reuse/keep a store here (built if missing)")
    args = ap.parse_args()
    path = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="bench-wb-")) / "store"
    try:
        if not (path / "data").exists():
            secs = build(path, args.samples)
            print(f"built {args.samples} samples x {len(SITES) * 4 * 4 * 2} maps in {secs:.0f} s")
        size = sum(f.stat().st_size for f in path.rglob("*.parquet"))
        print(f"store: {size / 1e6:.1f} MB of Parquet")
        from streamlit.testing.v1 import AppTest

        os.environ["FASTFACE_STORE"] = str(path)
        app = Path(__file__).resolve().parents[2] / "workbench" / "app.py"
        at = AppTest.from_file(str(app), default_timeout=300)
        t0 = time.perf_counter()
        at.run()
        print(f"first load (imports, catalog, runs page): {time.perf_counter() - t0:.2f} s")
        print(f"{'page':12s} {'cold s':>8s} {'warm s':>8s}  exceptions")
        for page in PAGES:
            at.switch_page(page)
            t0 = time.perf_counter()
            at.run()
            cold = time.perf_counter() - t0
            at.switch_page(page)
            t0 = time.perf_counter()
            at.run()
            warm = time.perf_counter() - t0
            print(f"{page.split('/')[1][:-3]:12s} {cold:8.2f} {warm:8.2f}  {len(at.exception)}")
    finally:
        if not args.store:
            shutil.rmtree(path.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
