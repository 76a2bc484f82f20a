"""Benchmark: the workbench on a synthetic store with head-mean maps of all sites, 4 runs.

    python tests/benchmarks/bench_workbench.py [--sites tiny|sdxl] [--samples N] [--runs 4]
        [--store DIR] [--no-pages]

``--sites tiny`` (default): the tiny world's 17 sites x 4 steps x 4 ID tokens x pre/post = 544
maps of 8x8 / 16x16 per sample, written through StoreWriter and compacted (~0.2 s per sample).
``--sites sdxl``: SDXL's 70 decoupled sites x 4 x 4 x 2 = 2,240 maps of 32x32 float16 per sample
(~4.5 MB of Parquet each; one paper sweep is 6,480 samples, ~29 GB).  Through the writer that
takes ~1 s per sample, so the store is written directly as compacted segments of 250 samples in
the same on-disk layout (tests/benchmarks/sdxl_store.py: the store's typed tables, COPY options
and summary code; maps written by pyarrow; map values from a pool of 8 map sets).

Prints the build time, the store size, each page's cold and warm AppTest render time (the
warm one is what a user sees when moving between pages), and each query the pages run, timed
with plain DuckDB on a fresh read-only connection (cold: first run; warm: repeated).  Targets:
every page < 1 s warm and < 3 s cold on this 2-core machine.  No assertions.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from sdxl_store import synthetic_maps  # noqa: E402

SITES = [  # the tiny world's 17 decoupled blocks and their 8x8 latent grids (64 px images)
    *(f"down_blocks.1.attentions.{a}.transformer_blocks.0.attn2" for a in range(2)),
    *(f"down_blocks.2.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(2) for l in range(2)),
    *(f"up_blocks.0.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(3) for l in range(2)),
    *(f"up_blocks.1.attentions.{a}.transformer_blocks.0.attn2" for a in range(3)),
    *(f"mid_block.attentions.0.transformer_blocks.{l}.attn2" for l in range(2)),
]
PAGES = ["views/runs.py", "views/samples.py", "views/attention.py", "views/faces.py", "views/compare.py",
         "views/sql.py", "views/figures.py"]


def _grid(site: str) -> int:
    return 16 if site.startswith(("down_blocks.1", "up_blocks.1")) else 8


def _png(rng) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((rng.rand(64, 64, 3) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def build(path: Path, n: int, runs: int = 4) -> float:
    from store.compact import compact
    from store.records import FaceRecord, MetricRecord, RunRecord, SampleRecord, SiteRecord, sample_key
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
            maps = synthetic_maps(rng, SITES, _grid)
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


def page_queries(con) -> list[tuple[str, str, dict]]:
    """(page, query, parameters) of what the pages run on first render (default widgets)."""
    runs = [r[0] for r in con.execute("select run_id from runs order by run_id").fetchall()]
    unit = con.execute("select identity, prompt, seed from samples where run_id = ? order by identity, prompt, seed "
                       "limit 1", [runs[0]]).fetchone()
    keys = [r[0] for r in con.execute("select sample_key from samples where identity = ? and prompt = ? and seed = ?",
                                      list(unit)).fetchall()]
    site = con.execute("select min(site) from map_stats where run_id = ?", [runs[0]]).fetchone()[0]
    return [
        ("Runs", "runs", {}),
        ("Samples", "sample_index", dict(run_ids=runs)),
        ("Samples", "sample_grid", dict(run_ids=runs, identity=None, prompt=None, category=None, limit=24, offset=0)),
        ("Samples", "variants", dict(run_ids=runs, identity=unit[0], prompt=unit[1], seed=unit[2])),
        ("Samples", "map_catalog", dict(run_ids=runs)),
        ("Samples", "maps_on_screen", dict(run_ids=runs, sample_keys=sorted(keys), sites=[site], step=0,
                                           branch="text_id", tokens=[0], word=None, stage="post")),
        ("Attention", "map_facets", dict(run_ids=runs)),
        ("Attention", "hist_sum", dict(run_ids=runs, part=None, block=None, step=None, token=None, branch=None)),
        ("Attention", "face_mass", dict(run_id=runs[0], stage="post", branch="text_id", tokens=[0])),
        ("Attention", "step_stats", dict(run_ids=runs, branch=None, tokens=None)),
        ("Faces", "faces_generated", dict(run_ids=runs)),
        ("Faces", "face_counts", dict(run_ids=runs)),
        ("Compare", "metric_values", dict(run_ids=runs)),
    ]


def time_queries(path: Path) -> None:
    """Each page query on a fresh read-only connection: first run (cold) and a repeat (warm)."""
    from store.db import connect_read_only

    sql_dir = Path(__file__).resolve().parents[2] / "workbench" / "data" / "sql"
    with connect_read_only(path) as con:
        queries = page_queries(con)
    print(f"{'page':10s} {'query':16s} {'rows':>7s} {'cold s':>8s} {'warm s':>8s}")
    with connect_read_only(path) as con:
        for page, name, params in queries:
            sql = (sql_dir / f"{name}.sql").read_text()
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                n = len(con.execute(sql, params).fetchall())
                times.append(time.perf_counter() - t0)
            print(f"{page:10s} {name:16s} {n:7d} {times[0]:8.2f} {times[1]:8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--sites", choices=["tiny", "sdxl"], default="tiny")
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--store", help="reuse/keep a store here (built if missing)")
    ap.add_argument("--no-pages", action="store_true", help="time the queries only (no AppTest)")
    args = ap.parse_args()
    path = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="bench-wb-")) / "store"
    try:
        if not (path / "data").exists():
            if args.sites == "sdxl":
                from sdxl_store import SDXL_SITES, build_sdxl

                secs = build_sdxl(path, args.samples, args.runs)
                n_maps = len(SDXL_SITES) * 4 * 4 * 2
            else:
                secs = build(path, args.samples, args.runs)
                n_maps = len(SITES) * 4 * 4 * 2
            print(f"built {args.samples} samples x {n_maps} maps in {secs:.0f} s")
        size = sum(f.stat().st_size for f in path.rglob("*.parquet"))
        print(f"store: {size / 1e6:.1f} MB of Parquet")
        time_queries(path)
        if args.no_pages:
            return
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
