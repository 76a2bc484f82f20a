"""Benchmark: AM2 (fastface.method.transforms.am2) in float16 against float32 on the attention shapes of
the full-size model (the transform alone; the pipeline runs fp16 on CUDA).

    python tests/benchmarks/bench_am2_precision.py            # CPU, tiny shapes, tiny world
    python tests/benchmarks/bench_am2_precision.py --full     # CUDA, SDXL shapes (1024 px)
    ... --json FILE                                           # also write the figures

The same random softmax attention ([DCG batch 3, heads, queries, 4 ID tokens]) goes through am2
with the preset's values in both precisions; the table gives the largest absolute and relative
difference and the share of entries that differ by more than 1e-2.  Informational: no target.
"""
from __future__ import annotations

import argparse
import json
import platform

import torch


def agreement(shape: tuple[int, ...], device: str, seed: int = 0, **am2_kw) -> dict:
    from fastface.method.transforms import am2

    g = torch.Generator(device="cpu").manual_seed(seed)
    logits = torch.randn(*shape[:-1], 77 + shape[-1], generator=g) * 3
    attn32 = logits.softmax(-1)[..., -shape[-1]:].contiguous().to(device)   # the ID-token columns
    out32 = am2(attn32, **am2_kw)
    out16 = am2(attn32.half(), **am2_kw).float()
    diff = (out16 - out32).abs()
    rel = diff / out32.abs().clamp_min(1e-3)
    return {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()), "max_rel": float(rel.max()),
            "share_over_1e-2": float((diff > 1e-2).float().mean())}


def main() -> None:
    from fastface.method.config import load_preset

    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true", help="CUDA and the full-size SDXL attention shapes")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    device = "cuda" if args.full else "cpu"
    if args.full and not torch.cuda.is_available():
        raise SystemExit("bench_am2_precision --full needs CUDA")
    am = load_preset("ff-am2").am.am2

    def first(v):
        return v[0] if isinstance(v, (list, tuple)) else v
    kw = {"steepness": float(first(am.steepness)), "quantile": float(first(am.quantile)),
          "scale": float(first(am.scale)), "batch_groups": 3}
    # SDXL at 1024 px: 64x64 queries with 10 heads (down/up 1), 32x32 with 20 heads (down/up 2, mid)
    shapes = {"64x64 queries, 10 heads": (3, 10, 4096, 4), "32x32 queries, 20 heads": (3, 20, 1024, 4)} if args.full \
        else {"8x8 queries, 2 heads": (3, 2, 64, 4), "4x4 queries, 4 heads": (3, 4, 16, 4)}
    figures = {"device": torch.cuda.get_device_name() if args.full else (platform.processor() or "cpu"),
               "am2": kw, "shapes": {}}
    print(f"machine: {figures['device']}; torch {torch.__version__}; am2 {kw}")
    print(f"{'shape':28s} {'max |diff|':>11s} {'mean |diff|':>12s} {'max rel':>9s} {'> 1e-2':>8s}")
    for name, shape in shapes.items():
        r = agreement(shape, device, **kw)
        figures["shapes"][name] = r
        print(f"{name:28s} {r['max_abs']:11.2e} {r['mean_abs']:12.2e} {r['max_rel']:9.1e} {r['share_over_1e-2']:8.2%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
