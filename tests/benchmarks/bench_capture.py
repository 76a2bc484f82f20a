"""Benchmark: capture overhead and storage, measured side by side in one run.

    python tests/benchmarks/bench_capture.py                 # tiny world on CPU
    python tests/benchmarks/bench_capture.py --full          # full-size SDXL 1024x1024 (GPU)
    ... --specs summaries_only,head_mean --store-samples 0 --json FILE   (scripts/gpu-check.sh)

For the preset ff-am2 (AM2 sites computed explicitly anyway) and baseline (probes force the
explicit softmax at every probed site), it times generation without a probe and with each
named capture spec (summaries_only, head_mean, everything), interleaved so that drift hits
every case alike, and prints the ratio to no-probe time, the bytes captured per sample, and
then writes N samples of the head_mean capture into a fresh store to report write
throughput (MB/s, maps/s), store size, and bytes on disk per stored map value.  Every named
spec captures at all sites (70 on the full-size model).  On CUDA the peak GPU memory of each case
is printed too.  Targets (issue 14): summaries_only <= 1.05 x no-probe, head_mean <= 1.15.

Issue 27's cases beside the named specs: ``head_mean_no_balance`` (the head-mean capture as it
was before the balance existed), ``head_mean`` (now with the balance, its default), and
``head_mean_words_all`` (plus word maps of every prompt word): the cost of the balance and of
the word maps over the head-mean capture.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


#: issue 14's targets: capture time / no-probe time
TARGETS = {"summaries_only": 1.05, "head_mean": 1.15}
#: issue 27's cases: the head-mean capture without the balance, and with word maps of every word
EXTRA_SPECS = {"head_mean_no_balance": ("head_mean", {"balance": False}),
               "head_mean_words_all": ("head_mean", {"words": "all"})}


def spec_of(case: str):
    from probes.spec import named_spec

    if case in EXTRA_SPECS:
        name, changes = EXTRA_SPECS[case]
        return named_spec(name).replace(**changes)
    return named_spec(case)


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _pipe(full: bool):
    if full:
        from fastface.models.fullsize import fullsize_pipeline

        return fullsize_pipeline("cuda", torch.float16), 512
    from fastface.models.pipeline import load_pipeline

    p = load_pipeline("hyper", tiny=True, face_backend="none")
    return p, p.id_dim


def main() -> None:
    from fastface.method.config import load_preset
    from probes.capture import capture
    from probes.spec import named_spec

    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--store-samples", type=int, default=200, help="samples written for the store figures (0: none)")
    ap.add_argument("--specs", default="summaries_only,head_mean_no_balance,head_mean,head_mean_words_all,everything",
                    help="named capture specs (and the EXTRA_SPECS cases), comma-separated")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    pipe, dim = _pipe(args.full)
    rng = np.random.RandomState(0)
    emb = rng.randn(dim).astype(np.float32)
    ident = pipe.identity_from_arrays(emb / np.linalg.norm(emb), (rng.rand(224, 224, 3) * 255).astype(np.uint8))
    specs = [x.strip() for x in args.specs.split(",") if x.strip()]
    cuda = args.full and torch.cuda.is_available()
    figures: dict = {"device": None, "repeats": args.repeats, "n_sites": len(pipe.sites), "presets": {}}
    machine = torch.cuda.get_device_name() if args.full else (platform.processor() or platform.machine())
    figures["device"] = machine
    print(f"machine: {machine}; torch {torch.__version__}; {'full-size SDXL 1024px' if args.full else 'tiny world'}; "
          f"median of {args.repeats}")
    last_records = {}
    for preset in ("baseline", "ff-am2"):
        cfg = load_preset(preset)
        times: dict[str, list[float]] = {k: [] for k in ["no probe", *specs]}
        nbytes: dict[str, int] = {}
        n_balance: dict[str, int] = {}
        peak: dict[str, float] = {}
        for rep in range(args.repeats + 1):  # first round = warm-up
            for case in times:
                _sync()
                if cuda and rep == 0:
                    torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                if case == "no probe":
                    pipe.generate("a photo of a person", ident, cfg, seed=rep)
                else:
                    spec = spec_of(case)
                    with capture(pipe, spec) as probe:
                        _, recs = probe.generate(f"k{rep}", "a photo of a person", ident, cfg, seed=rep)
                        n_balance[case] = len(probe.pop_balance(f"k{rep}"))
                    nbytes[case] = probe.last_bytes
                    last_records[case] = recs
                _sync()
                if cuda and rep == 0:
                    peak[case] = torch.cuda.max_memory_allocated() / 2**30
                if rep:
                    times[case].append(time.perf_counter() - t0)
        ref = statistics.median(times["no probe"])
        print(f"\npreset {preset}")
        print(f"{'capture':20s} {'s/sample':>9s} {'x no-probe':>10s} {'bytes/sample':>13s} {'maps':>6s} {'balance':>7s} "
              f"{'peak GiB':>9s}")
        figures["presets"][preset] = {}
        for case, ts in times.items():
            m = statistics.median(ts)
            n_maps = len(last_records.get(case, [])) if case != "no probe" else 0
            figures["presets"][preset][case] = {"s_per_sample": m, "ratio": m / ref, "bytes": nbytes.get(case, 0),
                                                "maps": n_maps, "balance_rows": n_balance.get(case, 0),
                                                "peak_gib": peak.get(case)}
            print(f"{case:20s} {m:9.3f} {m / ref:10.3f} {nbytes.get(case, 0):13,d} "
                  f"{n_maps:6d} {n_balance.get(case, 0):7d} {peak[case] if case in peak else float('nan'):9.2f}")
            if case in TARGETS:
                print(f"{'':20s} target <= {TARGETS[case]:.2f} x no-probe: {'met' if m / ref <= TARGETS[case] else 'NOT met'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    if args.store_samples <= 0:
        return
    # distinct samples (different seeds), so compression sees real variation
    with capture(pipe, named_spec("head_mean")) as probe:
        samples = [probe.generate(f"s{i}", "a photo of a person", ident, load_preset("ff-am2"), seed=1000 + i)[1]
                   for i in range(args.store_samples)]
    _store_figures(samples)


def _png64() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.random.RandomState(0).rand(64, 64, 3) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _store_figures(samples: list) -> None:
    from store.compact import compact
    from store.records import RunRecord, SampleRecord, sample_key
    from store.writer import StoreWriter

    root = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        w = StoreWriter(root)
        w.begin_run(RunRecord(run_id="bench", config={"bench": True}))
        n, maps = len(samples), samples[0]
        values = sum(int(np.asarray(m.data).size) for m in maps if m.data is not None)
        raw = sum(int(np.asarray(m.data).nbytes) for m in maps if m.data is not None)
        png = _png64()
        t0 = time.perf_counter()
        for i in range(n):
            key = sample_key("id", "prompt", i)
            w.write_sample("bench", SampleRecord(sample_key=key, identity="id", prompt="prompt", category="realistic",
                                                 seed=i, image_png=png, width=64, height=64), maps=samples[i])
        dt = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in (root / "data").rglob("*.parquet"))
        t1 = time.perf_counter()
        compact(root, "bench", activation_delay_s=0, retention_s=0)  # nothing reads it: remove the merged folders now
        dtc = time.perf_counter() - t1
        csize = sum(f.stat().st_size for f in (root / "data").rglob("*.parquet"))
        print(f"\nstore: {n} samples x {len(maps)} head-mean maps ({values} values, {raw:,d} B of map data each)")
        print(f"  write: {n / dt:.1f} samples/s, {n * len(maps) / dt:,.0f} maps/s, {n * raw / dt / 1e6:.2f} MB/s "
              f"(durable commits, one per sample)")
        print(f"  on disk: {size / 1e6:.1f} MB per-sample files = {size / (n * values):.2f} B/value; after "
              f"compaction ({dtc:.1f} s) {csize / 1e6:.1f} MB = {csize / (n * values):.2f} B/value")
        print(f"  projected for 1,000 samples: {csize / n * 1000 / 1e6:.0f} MB compacted")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
