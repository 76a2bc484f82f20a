"""A small store for the workbench tests, written with the store's own writer.

    python -m tests.app.fixture_store PATH              # build one by hand (e.g. to look at the app)
    python -m tests.app.fixture_store --sweeps PATH     # the two-sweep store of the browser test

Three runs (baseline λ=0.8 completed, ff-am2 λ=0.8 completed, ff-am2 λ=0.6 still running with
3 of 6 samples), four (identity, prompt, seed) units, 64x64 images, maps of three sites
(down 8x8, mid 4x4, up 16x16) x 4 steps x 2 branches x 2 tokens x 2 stages with summaries,
generated faces (one not detected per run), metrics id_sim / clip_t / aesthetic.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from store.records import (FaceRecord, MapRecord, MetricRecord, RunRecord, SampleRecord,  # noqa: E402
                           SiteRecord, sample_key)

SITES = {  # site -> (height, width)
    "down_blocks.2.attentions.1.transformer_blocks.3.attn2": (8, 8),
    "mid_block.attentions.0.transformer_blocks.0.attn2": (4, 4),
    "up_blocks.0.attentions.2.transformer_blocks.6.attn2": (16, 16),
}
STEPS = (0, 1, 2, 3)
BRANCHES = ("id", "text_id")
TOKENS = (-1, 0)
IMAGE = 64
UNITS = [  # identity, prompt, category, seed
    ("id0", "a photo of a person in a park", "realistic", 1),
    ("id0", "a watercolor portrait", "stylistic", 1),
    ("id1", "a photo of a person in a park", "realistic", 2),
    ("id1", "a watercolor portrait", "stylistic", 2),
]
RUNS = [  # run_id, preset, ip_scale, n_written, status, failed-face unit index
    ("r-baseline", "baseline", 0.8, 4, "completed", 3),
    ("r-ffam2", "ff-am2", 0.8, 4, "completed", 2),
    ("r-ffam2-06", "ff-am2", 0.6, 3, "running", 1),
]
N_TOTAL_RUNNING = 6
FACE_BOX = (18.0, 14.0, 46.0, 50.0)


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def base_image() -> np.ndarray:
    from skimage.data import astronaut
    from skimage.transform import resize

    return (resize(astronaut()[0:300, 100:400], (IMAGE, IMAGE)) * 255).astype(np.uint8)


def _attention(h: int, w: int, rng: np.random.Generator, sharp: float) -> np.ndarray:
    """A map peaked over the face box centre (softmax-like: sums to 1 over the grid)."""
    yy, xx = np.mgrid[0:h, 0:w]
    cy = (FACE_BOX[1] + FACE_BOX[3]) / 2 / IMAGE * h - 0.5
    cx = (FACE_BOX[0] + FACE_BOX[2]) / 2 / IMAGE * w - 0.5
    bump = np.exp(-(((yy - cy) / (0.22 * h)) ** 2 + ((xx - cx) / (0.2 * w)) ** 2) * sharp)
    m = bump + 0.15 * rng.random((h, w))
    return m / m.sum()


def _write_run(w, r: int, run: tuple, img: np.ndarray, id_paths: dict, keys: dict, *,
               notes: str | None = None, checkpoint: str = "hyper-sdxl-4step", sim_step: float = 0.1,
               n_total_running: int = N_TOTAL_RUNNING, tokens=TOKENS, branches=BRANCHES) -> None:
    """One run of the fixture: r (its index: seeds the noise and shifts the metrics by
    sim_step * r), run = (run_id, preset, ip_scale, n_written, status, failed-face unit)."""
    run_id, preset, ip, n_written, status, fail_unit = run
    w.begin_run(RunRecord(
        run_id=run_id, config={"preset": preset, "ip_scale": ip, "steps": len(STEPS)},
        name=f"{preset} λ={ip}", preset=preset, checkpoint=checkpoint, ip_scale=ip,
        lora_scale=1.0, seed=7,
        capture_spec={"sites": list(SITES), "steps": list(STEPS), "stages": ["pre", "post"],
                      "branches": list(BRANCHES), "tokens": [0], "token_sum": True},
        package_versions={"numpy": np.__version__}, notes=notes))
    for u, (identity, prompt, category, seed) in enumerate(UNITS[:n_written]):
        rng = np.random.default_rng(100 * r + u)
        key = sample_key(identity, prompt, seed)
        keys[(run_id, u)] = key
        noise = rng.integers(-25, 25, img.shape)
        image = np.clip(img.astype(int) + noise + 10 * r, 0, 255).astype(np.uint8)
        sample = SampleRecord(sample_key=key, identity=identity, prompt=prompt, category=category,
                              seed=seed, image_png=_png(image), width=IMAGE, height=IMAGE,
                              id_image_path=id_paths[identity], sample_index=u, gen_seconds=0.4)
        maps = []
        for site, (h, wd) in SITES.items():
            for step in STEPS:
                for branch in branches:
                    for token in tokens:
                        pre = _attention(h, wd, rng, sharp=1.0 + 0.3 * step)
                        power = 1.3 if preset != "baseline" else 1.0
                        post = pre ** power
                        post = post / post.sum() * (1.5 if preset != "baseline" else 1.0)
                        for stage, m in (("pre", pre * h * wd / 4), ("post", post * h * wd / 4)):
                            maps.append(MapRecord.from_map(
                                m, site=site, step=step, branch=branch, token=token, stage=stage,
                                encoding="f16" if site.startswith("up") else "u8",
                                timestep=999.0 - 250 * step))
        detected = u != fail_unit
        faces = [
            FaceRecord(role="reference", detected=True, backend="fixture-1", n_faces=1,
                       bbox=FACE_BOX, kps=[26, 26, 38, 26, 32, 33, 27, 41, 37, 41], score=0.95,
                       area_ratio=0.3, embedding=rng.standard_normal(8)),
            FaceRecord(role="generated", detected=detected, backend="fixture-1",
                       n_faces=int(detected), bbox=FACE_BOX if detected else None,
                       kps=[26, 26, 38, 26, 32, 33, 27, 41, 37, 41] if detected else None,
                       score=0.9 if detected else None,
                       area_ratio=float(0.2 + 0.05 * u + 0.02 * r) if detected else None,
                       embedding=rng.standard_normal(8) if detected else None,
                       similarity=float(0.4 + sim_step * r + 0.02 * u) if detected else None)]
        metrics = [MetricRecord("id_sim", float(0.4 + sim_step * r + 0.02 * u), "arcface@1"),
                   MetricRecord("clip_t", float(0.30 - 0.01 * r + 0.001 * u), "clip-l@1"),
                   MetricRecord("aesthetic", float(5.5 - 0.1 * r + 0.05 * u), "ae@1")]
        sites = [SiteRecord.from_key(s, heads=10, height=h, width=wd) for s, (h, wd) in SITES.items()]
        w.write_sample(run_id, sample, maps=maps, faces=faces, metrics=metrics, sites=sites)
    if status == "running":
        w.set_status(run_id, "running", n_done=n_written, n_failed=0, n_total=n_total_running)
    else:
        w.set_status(run_id, status, n_done=n_written, n_failed=0, n_total=n_written)


def _id_images(path: Path, id_image_dir) -> tuple[np.ndarray, Path, dict]:
    id_dir = Path(id_image_dir) if id_image_dir else path.parent / "id_images"
    id_dir.mkdir(parents=True, exist_ok=True)
    img = base_image()
    ref_path = id_dir / "id0.png"
    ref_path.write_bytes(_png(img))
    return img, ref_path, {"id0": str(ref_path), "id1": str(id_dir / "missing-id1.png")}  # id1: not readable


def build(path: str | Path, *, id_image_dir: str | Path | None = None) -> dict:
    """Write the fixture store at path; returns a description (run ids, sample keys...)."""
    from store.writer import StoreWriter

    path = Path(path)
    img, ref_path, id_paths = _id_images(path, id_image_dir)
    keys = {}
    with StoreWriter(path, worker_id="fixture", durable=False) as w:
        for r, run in enumerate(RUNS):
            _write_run(w, r, run, img, id_paths, keys)
    return {"path": str(path), "runs": [r[0] for r in RUNS], "keys": keys, "units": UNITS,
            "reference": str(ref_path)}


#: the demo's grid (fastface demo): six presets x two IP-Adapter scales
SWEEP_PRESETS = ("baseline", "dcg", "am1", "am2", "ff-am1", "ff-am2")
SWEEP_SCALES = (0.5, 0.8)


def sweep_notes(presets, scales, dataset: str) -> str:
    """The notes fastface.sweeps.sweep.begin_runs writes into every run of one capture command."""
    import json

    return json.dumps({"sweep": {"checkpoints": ["hyper"], "presets": list(presets), "ip_scales": list(scales),
                                 "lora_scales": [1.0], "seed": 7}, "dataset": dataset, "tiny": True})


def build_sweeps(path: str | Path, *, id_image_dir: str | Path | None = None, tokens=TOKENS,
                 branches=BRANCHES) -> dict:
    """A store of two capture commands: an older sweep (ff-am2 and baseline at 0.8) and the
    newest one, the demo's grid (SWEEP_PRESETS x SWEEP_SCALES, created baseline first as the
    demo does), whose last run (ff-am2 at 0.8) is still running with 3 of 4 samples.  ``tokens``
    / ``branches``: the maps' ID tokens and branches (the demo captures tokens 0-3 of text_id)."""
    from store.writer import StoreWriter

    path = Path(path)
    img, ref_path, id_paths = _id_images(path, id_image_dir)
    keys: dict = {}
    old = [("old-baseline-ip0.8", "baseline", 0.8, 4, "completed", 3),
           ("old-ff-am2-ip0.8", "ff-am2", 0.8, 4, "completed", 2)]
    new = [(f"hyper-{p}-ip{ip:g}", p, ip, 4, "completed", (i + 1) % 4)
           for i, (p, ip) in enumerate((p, ip) for p in SWEEP_PRESETS for ip in SWEEP_SCALES)]
    new[-1] = new[-1][:3] + (3, "running", 1)
    with StoreWriter(path, worker_id="fixture", durable=False) as w:
        for r, run in enumerate(old):
            _write_run(w, r, run, img, id_paths, keys, checkpoint="hyper", sim_step=0.02, tokens=tokens,
                       branches=branches, notes=sweep_notes(("baseline", "ff-am2"), (0.8,), "old-dataset"))
        for r, run in enumerate(new):
            _write_run(w, r + len(old), run, img, id_paths, keys, checkpoint="hyper", sim_step=0.02,
                       notes=sweep_notes(SWEEP_PRESETS, SWEEP_SCALES, "demo-dataset"), n_total_running=4,
                       tokens=tokens, branches=branches)
    return {"path": str(path), "old": [r[0] for r in old], "newest": [r[0] for r in new], "keys": keys,
            "units": UNITS, "reference": str(ref_path)}


if __name__ == "__main__":
    print(build_sweeps(sys.argv[2]) if sys.argv[1:2] == ["--sweeps"] else build(sys.argv[1]))
