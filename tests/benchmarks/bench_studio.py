"""The Studio's speed on the face world (issue 26): click-to-result of one Generate (base + edited
image, probes, face detection and ID similarity) warm, a Keep of that pair, and a 3x3 grid of one
sample generated and kept into a store. Prints figures, asserts nothing.

    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/benchmarks/bench_studio.py [--repeat 5]

The machine's load (os.getloadavg) is printed beside the figures: other work on the same cores
slows everything down.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("FASTFACE_CACHE", tempfile.mkdtemp(prefix="bench-studio-cache-"))

    from fastface.method.config import load_preset
    from fastface.method.paths import set_value
    from fastface.studio import grid as G
    from fastface.studio.engine import ModelChoice, StudioEngine, Subject, dataset_photo
    from fastface.studio.keep import grid_id, keep

    print(f"cores: {os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    t0 = time.perf_counter()
    engine = StudioEngine.load(ModelChoice("hyper", "face"))
    print(f"load the face world (once per server): {time.perf_counter() - t0:.1f} s")
    subject = Subject("astronaut", dataset_photo("astronaut", None),
                      "close-up portrait of a person, blue plain background", 50)
    base = load_preset("ff-am1")
    edited = set_value(base, "am.am1.scale_up", 2.0, num_steps=engine.num_steps)
    engine.generate(subject, [base, edited])  # warm-up (identity, first call)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        b, e = engine.generate(subject, [base, edited])
        e.maps.map(step=3, stage="post", part="up")  # what the page draws first
        times.append(time.perf_counter() - t)
    print(f"Generate (2 images, probes, faces), warm: median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s over {args.repeat}; maps per image: {len(e.map_records)}")

    with tempfile.TemporaryDirectory(prefix="bench-studio-") as tmp:
        store = str(Path(tmp) / "store")
        t = time.perf_counter()
        keep(engine, store, subject, "ff-am1", [(base, {}), (edited, {"am.am1.scale_up": 2.0})])
        print(f"Keep (2 runs into a new store, first write: catalog created): {time.perf_counter() - t:.1f} s")
        edited2 = set_value(base, "am.am1.scale_up", 2.5, num_steps=engine.num_steps)
        t = time.perf_counter()
        keep(engine, store, subject, "ff-am1", [(base, {}), (edited2, {"am.am1.scale_up": 2.5})])
        print(f"Keep again (1 new run, the base already kept): {time.perf_counter() - t:.1f} s")
        axes = [G.Axis.parse("am.am1.scale_up", "1.0,1.45,2.0"), G.Axis.parse("am.am1.power", "1.0,1.3,1.6")]
        cells = G.plan(base, axes, engine.num_steps)
        t = time.perf_counter()
        plans, counts = keep(engine, store, subject, "ff-am1", [(c.config, c.coords) for c in cells],
                             grid=grid_id("ff-am1", [(a.path, list(a.values)) for a in axes]))
        print(f"3x3 grid of one sample generated and kept: {time.perf_counter() - t:.1f} s "
              f"({counts['written']} written, {counts['skipped']} skipped)")
        t = time.perf_counter()
        outs = engine.generate(subject, [c.config for c in cells])
        print(f"3x3 grid of one sample generated in memory only (no store): {time.perf_counter() - t:.1f} s "
              f"({len(outs)} images)")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
