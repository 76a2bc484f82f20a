"""Benchmark: capture and evaluation throughput of the plain path (1 process) vs Ray with 1 and 2
actors, side by side in one run, on the tiny world (CPU), and the overhead of the Ray path at 1 worker.

    python tests/benchmarks/bench_ray.py                       # 16 samples per sweep
    python tests/benchmarks/bench_ray.py --pairs 2 --repeats 2
    python tests/benchmarks/bench_ray.py --skip-capture        # evaluation only

Evaluation: every metric of the tiny evaluation world (random-weight CLIP, aesthetic head and
ImageReward; dlib faces and embeddings) over a fresh copy of one store of 96 samples with real faces
(crops of skimage's astronaut photo) per mode, batches of 8; "steady" is measured between the first
and the last batch.

Every sweep writes a fresh store with the same spec. Each worker (the plain process, each actor)
uses 1 CPU thread, so the rows compare like with like (and produce identical images). Reported:

* end-to-end samples/s: samples / wall time of the sweep, worker start and pipeline load included
  (the plain path runs in a fresh process, so it pays the same imports as an actor);
* steady samples/s: (samples - 1) / (time of the last sample - time of the first), i.e. without
  start-up: what a long sweep converges to;
* the overhead ratios of Ray with 1 actor over the plain path (time per sample, > 1 = slower).

The Ray cluster (local, 2 CPUs) is started once before the sweeps; its start is reported apart.
Other processes on the machine skew everything: the load average is printed before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))  # this checkout's fastface (Ray's workers import it from the cwd)


def spec_and_dataset(root: Path, pairs: int | None):
    from fastface.sweeps.dataset import write_demo_dataset
    from fastface.sweeps.sweep import SweepSpec

    ds = write_demo_dataset(root / "dataset")
    spec = SweepSpec(presets=("baseline", "ff-am2"), ip_scales=(0.5, 0.8), tiny=True, face_backend="dlib",
                     capture="head_mean", limit=pairs)
    return spec, ds


def plain_child(root: str, store: str, pairs: int | None, out: str) -> None:
    """Runs in a fresh process: the plain sweep, timestamps per sample -> out (JSON)."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    from fastface.models.pipeline import load_pipeline
    from fastface.sweeps.sweep import run_sweep

    spec, ds = spec_and_dataset(Path(root), pairs)
    stamps: list[float] = []
    counts = run_sweep(spec, ds, store, load=lambda c: load_pipeline(c, tiny=True, face_backend="dlib"),
                       progress=lambda done, total: stamps.append(time.perf_counter() - t0))
    Path(out).write_text(json.dumps({"stamps": stamps, "counts": counts}))


def run_plain(root: Path, pairs: int | None, tag: str) -> dict:
    store, out = root / f"store-{tag}", root / f"plain-{tag}.json"
    t0 = time.perf_counter()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, str(HERE), "--plain-child", str(root), str(store), str(pairs or 0), str(out)],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    data = json.loads(out.read_text())
    return {"wall": wall, "stamps": data["stamps"], "written": data["counts"]["written"]}


def run_ray(root: Path, pairs: int | None, actors: int, tag: str) -> dict:
    import functools

    from fastface.models.pipeline import load_pipeline
    from fastface.sweeps.sweep_ray import run_sweep_ray

    spec, ds = spec_and_dataset(root, pairs)
    stamps: list[float] = []
    t0 = time.perf_counter()
    counts = run_sweep_ray(spec, ds, str(root / f"store-{tag}"), actors=actors,
                           load=functools.partial(load_pipeline, tiny=True, face_backend="dlib"),
                           progress=lambda done, total: stamps.append(time.perf_counter() - t0))
    return {"wall": time.perf_counter() - t0, "stamps": stamps, "written": counts["written"]}


EVAL = dict(tiny=True, device="cpu", batch_size=8)  # every metric, the tiny evaluation world


def make_eval_store(root: Path, n: int) -> Path:
    """A store of n samples with real faces (256 px crops of skimage's astronaut photo, shifted
    per sample), half realistic and half stylistic prompts, the photo as the ID image: face
    detection, embedding, CLIP and ImageReward all have work to do (tiny captures have no faces)."""
    import numpy as np
    from PIL import Image

    from fastface.faces.photos import sample_photos
    from store.records import RunRecord, SampleRecord, sample_key
    from store.writer import StoreWriter

    photo = sample_photos()["astronaut"]
    id_path = root / "astronaut.png"
    Image.fromarray(photo).save(id_path)
    store = root / "eval-store"
    rng = np.random.default_rng(0)
    with StoreWriter(store, worker_id="bench", durable=False) as w:
        w.begin_run(RunRecord(run_id="bench-eval", config={"bench": "evaluate"}, preset="baseline",
                              checkpoint="hyper", ip_scale=0.8, lora_scale=1.0, seed=0))
        for i in range(n):
            y, x = rng.integers(0, 60, size=2)
            crop = Image.fromarray(photo[y:y + 400, 40 + x:440 + x]).resize((256, 256))
            import io

            buf = io.BytesIO()
            crop.save(buf, format="PNG")
            prompt = ("watercolor painting; Person in a garden" if i % 2 else "a photo of a person in a park") + f" {i}"
            w.write_sample("bench-eval", SampleRecord(
                sample_key=sample_key("astronaut", prompt, i), identity="astronaut", prompt=prompt,
                category="stylistic" if i % 2 else "realistic", seed=i, image_png=buf.getvalue(), width=256,
                height=256, id_image_path=str(id_path), sample_index=i))
    return store


def eval_child(store: str, out: str) -> None:
    """Runs in a fresh process: the plain evaluation of a copy of a captured store."""
    t0 = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    from fastface.evaluation.evaluate import EvalConfig, Evaluator
    from fastface.evaluation.runner import evaluate_store

    cfg = EvalConfig(**EVAL)
    ev = Evaluator(cfg)
    stamps: list[float] = []
    s = evaluate_store(store, cfg, progress=False, evaluator=ev,
                       on_batch=lambda done, total: stamps.append((time.perf_counter() - t0, done)))
    Path(out).write_text(json.dumps({"stamps": stamps, "samples": s.n_evaluated, "rows": s.n_rows}))


def run_eval_plain(store: Path, out: Path) -> dict:
    t0 = time.perf_counter()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, str(HERE), "--eval-child", str(store), str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    data = json.loads(out.read_text())
    return {"wall": time.perf_counter() - t0, **data}


def run_eval_ray(store: Path, actors: int) -> dict:
    from fastface.evaluation.evaluate import EvalConfig
    from fastface.evaluation.evaluate_ray import evaluate_store_ray

    stamps: list = []
    t0 = time.perf_counter()

    def hook(pool, stats):
        stamps.append((time.perf_counter() - t0, None))

    s = evaluate_store_ray(store, EvalConfig(**EVAL), progress=False, actors=actors, hook=hook)
    return {"wall": time.perf_counter() - t0, "stamps": stamps, "samples": s.n_evaluated, "rows": s.n_rows}


def eval_rates(r: dict) -> tuple[float, float, float]:
    """(end-to-end samples/s, steady samples/s after the first batch, time of the first batch)."""
    s = [t for t, _ in r["stamps"]]
    per_batch = r["samples"] / max(len(s), 1)
    steady = per_batch * (len(s) - 1) / (s[-1] - s[0]) if len(s) > 1 and s[-1] > s[0] else float("nan")
    return r["samples"] / r["wall"], steady, s[0] if s else float("nan")


def bench_evaluate(root: Path, captured: Path, repeats: int) -> None:
    """Plain evaluation vs Ray with 1 and 2 actors, each on a fresh copy of one store."""
    import shutil

    modes = ["plain, 1 process", "ray, 1 actor", "ray, 2 actors"]
    results: dict[str, list[dict]] = {m: [] for m in modes}
    for rep in range(repeats):
        for i, name in enumerate(modes if rep % 2 == 0 else list(reversed(modes))):
            store = root / f"eval-{rep}-{i}"
            shutil.copytree(captured, store)
            if name.startswith("plain"):
                r = run_eval_plain(store, root / f"eval-{rep}-{i}.json")
            else:
                r = run_eval_ray(store, 1 if "1 actor" in name else 2)
            results[name].append(r)
            print(f"  [{rep}] evaluate {name:17s} {r['samples']:3d} samples, {r['rows']} rows in {r['wall']:6.1f} s",
                  flush=True)
    report(f"evaluation (every metric, tiny evaluation world, batches of {EVAL['batch_size']} samples)", results,
           eval_rates, "samples", "1st batch s")


def rates(r: dict) -> tuple[float, float, float]:
    n, s = len(r["stamps"]), r["stamps"]
    e2e = r["written"] / r["wall"]
    steady = (n - 1) / (s[-1] - s[0]) if n > 1 and s[-1] > s[0] else float("nan")
    return e2e, steady, s[0]


def report(title: str, results: dict, rate, count: str, first_label: str) -> None:
    """Table of the modes (means over repeats of ``rate(r) = (e2e, steady, first)``) and the ratios."""
    print(f"\n{title}")
    print(f"{'mode':18s} {'samples':>7s} {'wall s':>7s} {first_label:>12s} {'e2e samples/s':>14s} "
          f"{'steady samples/s':>17s}")
    summary = {}
    for name, rs in results.items():
        e2e, steady, first = (sum(rate(r)[k] for r in rs) / len(rs) for k in range(3))
        wall = sum(r["wall"] for r in rs) / len(rs)
        summary[name] = (e2e, steady)
        print(f"{name:18s} {rs[0][count]:7d} {wall:7.1f} {first:12.1f} {e2e:14.3f} {steady:17.3f}")
    (pe, ps), (re_, rs_), (r2e, r2s) = summary.values()
    print(f"overhead of Ray at 1 worker (time per sample, ray 1 actor / plain): end-to-end {pe / re_:.2f}x, "
          f"steady {ps / rs_:.2f}x")
    print(f"speed-up of 2 actors over 1 actor: end-to-end {r2e / re_:.2f}x, steady {r2s / rs_:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=None, help="(identity, prompt) pairs (default: all 4 -> 16 samples)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip-capture", action="store_true", help="only the evaluation benchmark")
    ap.add_argument("--eval-samples", type=int, default=96, help="samples of the evaluation store (default 96)")
    ap.add_argument("--skip-evaluate", action="store_true", help="only the capture benchmark")
    ap.add_argument("--plain-child", nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--eval-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.eval_child:
        eval_child(*args.eval_child)
        return
    if args.plain_child:
        root, store, pairs, out = args.plain_child
        plain_child(root, store, int(pairs) or None, out)
        return
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.chdir(HERE.parents[2])  # Ray's workers import from the driver's working directory
    import ray

    from fastface.models.tiny import build_tiny_world

    build_tiny_world()
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"{os.cpu_count()} CPUs; ray {ray.__version__}")
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    print(f"local Ray cluster started in {time.perf_counter() - t:.1f} s (not counted below)")
    results: dict[str, list[dict]] = {"plain, 1 process": [], "ray, 1 actor": [], "ray, 2 actors": []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
            root = Path(tmp)
            spec_and_dataset(root, args.pairs)
            for rep in range(0 if args.skip_capture else args.repeats):
                order = list(results) if rep % 2 == 0 else list(reversed(results))
                for name in order:
                    tag = f"{rep}-{list(results).index(name)}"
                    if name.startswith("plain"):
                        r = run_plain(root, args.pairs, tag)
                    else:
                        r = run_ray(root, args.pairs, 1 if "1 actor" in name else 2, tag)
                    results[name].append(r)
                    print(f"  [{rep}] {name:17s} {r['written']:3d} samples in {r['wall']:6.1f} s", flush=True)
            if not args.skip_capture:
                report(f"capture ({results['plain, 1 process'][0]['written']} samples per sweep)", results, rates,
                       "written", "1st sample s")
            if not args.skip_evaluate:
                bench_evaluate(root, make_eval_store(root, args.eval_samples), args.repeats)
    finally:
        ray.shutdown()
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
