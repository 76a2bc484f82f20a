"""Benchmark: UNet time per step, baseline as one branch vs three branches, and the AM1/AM2
overhead over baseline, measured side by side in one run.

    python tests/benchmarks/bench_pipeline.py            # tiny world on CPU
    python tests/benchmarks/bench_pipeline.py --full     # full-size SDXL, 1024x1024 (GPU)
    ... --json FILE                                      # also write the figures (scripts/gpu-check.sh)

Every preset of METHOD.md section 5 runs (plus baseline as 3 branches and AM2 with per-branch
normalisation).  Prints a table (with the peak GPU memory of each case on CUDA); the ratios are
what to compare across machines.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time

import numpy as np
import torch

from fastface.method.config import load_preset


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="full-size SDXL architecture (needs a GPU)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    if args.full:
        from fastface.models.fullsize import fullsize_pipeline

        pipe = fullsize_pipeline("cuda", torch.float16)
        dim, res = 512, 1024
    else:
        from fastface.models.pipeline import load_pipeline

        pipe = load_pipeline("hyper", tiny=True, face_backend="none")
        dim, res = pipe.id_dim, pipe.resolution
    rng = np.random.RandomState(0)
    emb = rng.randn(dim).astype(np.float32)
    ident = pipe.identity_from_arrays(emb / np.linalg.norm(emb), (rng.rand(224, 224, 3) * 255).astype(np.uint8))
    base = load_preset("baseline")
    cases = {
        "baseline, 1 branch": (base, False),
        "baseline, 3 branches": (base, True),
        "am1 (1 branch)": (load_preset("am1"), False),
        "am2 (3 branches, batch norm)": (load_preset("am2"), False),
        "am2 per-branch norm (1 branch)": (dataclasses.replace(load_preset("am2"), am=dataclasses.replace(
            load_preset("am2").am, am2=dataclasses.replace(load_preset("am2").am.am2, normalization="branch"))), False),
        "dcg (3 branches)": (load_preset("dcg"), False),
        "ff-am1 (DCG + AM1)": (load_preset("ff-am1"), False),
        "ff-am2 (DCG + AM2)": (load_preset("ff-am2"), False),
    }
    cuda = torch.cuda.is_available() and args.full
    peak: dict[str, float] = {}
    times: dict[str, list[float]] = {k: [] for k in cases}
    rows: dict[str, int] = {}
    for name, (cfg, full_batch) in cases.items():  # warm-up, and the peak memory of each case
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        pipe.generate("a photo of a person", ident, cfg, seed=0, full_batch=full_batch, height=res, width=res)
        if cuda:
            peak[name] = torch.cuda.max_memory_allocated() / 2**30
    for _ in range(args.repeats):  # interleaved, so drift hits every case alike
        for name, (cfg, full_batch) in cases.items():
            _sync()
            r = pipe.generate("a photo of a person", ident, cfg, seed=0, full_batch=full_batch, height=res, width=res)
            _sync()
            times[name].append(r.unet_seconds / r.steps)
            rows[name] = r.unet_rows
    device = torch.cuda.get_device_name() if torch.cuda.is_available() and args.full else platform.processor() or "cpu"
    print(f"machine: {device}; torch {torch.__version__}; {'full-size SDXL' if args.full else 'tiny world'} "
          f"{res}x{res}; median of {args.repeats}")
    ref = statistics.median(times["baseline, 1 branch"])
    print(f"{'case':34s} {'UNet rows':>9s} {'ms/step':>9s} {'x baseline':>10s} {'peak GiB':>9s}")
    figures = {}
    for name in cases:
        m = statistics.median(times[name])
        figures[name] = {"rows": rows[name], "ms_per_step": m * 1e3, "ratio": m / ref, "peak_gib": peak.get(name)}
        print(f"{name:34s} {rows[name]:9d} {m * 1e3:9.2f} {m / ref:10.2f} "
              f"{peak[name] if name in peak else float('nan'):9.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device, "resolution": res, "repeats": args.repeats, "cases": figures}, f, indent=1)


if __name__ == "__main__":
    main()
