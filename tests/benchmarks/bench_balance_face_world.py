"""The ID share of the decoupled blocks on the face world: baseline against AM1 and AM2 (issue 27).

Prints, per preset, the mean over samples, steps and sites of a part of
id_share = id_norm / (id_norm + text_norm) (probes' balance, conditioned branch), and per sample
whether AM1 raised the up blocks' share. CPU, a few seconds per sample::

    PYTHONPATH=. python tests/benchmarks/bench_balance_face_world.py [--samples 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def id_shares(pipe, identity, prompt, preset, seed, parts=("down", "mid", "up")) -> dict[str, float]:
    """part -> mean ID share over its sites and the steps (conditioned branch 'text_id')."""
    from fastface.method.config import load_preset
    from probes.capture import capture
    from probes.spec import CaptureSpec

    with capture(pipe, CaptureSpec(sites=parts, keep_maps=False)) as probe:
        probe.generate("s", prompt, identity, load_preset(preset), seed=seed)
        rows = [r for r in probe.pop_balance("s") if r.branch == "text_id"]
    out = {}
    for part in parts:
        sel = [r for r in rows if r.site.startswith({"down": "down", "mid": "mid", "up": "up"}[part])]
        out[part] = float(np.mean([r.id_norm / (r.id_norm + r.text_norm) for r in sel]))
    return out


def face_world_samples(n: int):
    """(pipe, [(identity, prompt, seed)]) of the face world: identity i % 8, two prompts."""
    from fastface.faces.align import align_face
    from fastface.models.faceworld import scenes
    from fastface.models.pipeline import load_pipeline

    pipe = load_pipeline("hyper", tiny=True, world="face", face_backend="dlib")
    faces = scenes.identities()
    prompts = ("close-up portrait of a person, blue plain background", "wide shot of a person, green striped background")
    samples = []
    for k in range(n):
        f = faces[k % len(faces)]
        ref = pipe.analyzer.detect(f.photo)[0]
        ident = pipe.identity_from_arrays(ref.embedding, align_face(f.photo, ref.kps, image_size=224))
        samples.append((ident, prompts[k % len(prompts)], 100 + k))
    return pipe, samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=8)
    args = ap.parse_args()
    t0 = time.perf_counter()
    pipe, samples = face_world_samples(args.samples)
    table = {p: [] for p in ("baseline", "am1", "am2")}
    for ident, prompt, seed in samples:
        for preset in table:
            table[preset].append(id_shares(pipe, ident, prompt, preset, seed))
    print(f"face world, {len(samples)} samples, ID share id/(id+text), conditioned branch, mean over sites and steps")
    print(f"{'preset':10s} {'down':>8s} {'mid':>8s} {'up':>8s}")
    for preset, rows in table.items():
        print(f"{preset:10s} " + " ".join(f"{np.mean([r[p] for r in rows]):8.4f}" for p in ("down", "mid", "up")))
    raised = sum(a["up"] > b["up"] for a, b in zip(table["am1"], table["baseline"]))
    print(f"AM1 raised the up blocks' share in {raised} of {len(samples)} samples; {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
