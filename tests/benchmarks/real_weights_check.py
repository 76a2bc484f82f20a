"""The real-weights step of the prepared GPU check (scripts/gpu_check.py, step "real weights").

Runs only when the real weights are present (``fastface weights check`` finds every file of the
chosen checkpoints in --weights-root / the Hugging Face cache, without asking the Hub); otherwise
it prints what is missing and reports the step as skipped (exit 0). Per checkpoint it loads the
pipeline the way ``fastface generate`` does, conditions on a real photo (scikit-image's astronaut),
and generates one image at the checkpoint's resolution with a head-mean capture at every decoupled
site (70 on SDXL); then, for the first checkpoint, it compares the outputs of every decoupled
cross-attention block of one UNet call in float16 with the same call in float32.

``--mirror`` runs the same code on the tiny exact Hub mirror (tests/fixtures/hub_mirror.py) on CPU:
the dry run that tests this script. Figures go to ``--json``; images to ``--images``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PROMPT = "a photo of a person in a library"


def _photo(folder: Path) -> str:
    from PIL import Image
    from skimage.data import astronaut

    path = folder / "astronaut.png"
    Image.fromarray(astronaut()).save(path)
    return str(path)


def _block_outputs(ff, identity, dtype, site_names, size=None, noise: list | None = None) -> dict:
    """Outputs of the decoupled attention blocks (attn2) in the UNet call of ff-am2's first step."""
    import torch

    from fastface.method.config import load_preset

    unet, outs, hooks = ff.pipe.unet, {}, []
    modules = dict(unet.named_modules())
    for site in site_names:
        hooks.append(modules[site].register_forward_hook(
            lambda m, a, o, site=site: outs.setdefault(site, o.detach().float().cpu())))  # the first step
    pipe, old = ff.pipe, unet.dtype
    prepare, fixed = pipe.prepare_latents, noise if noise is not None else []

    def same_noise(*args, **kwargs):  # one draw for both precisions (randn's values differ between dtypes)
        if not fixed:
            fixed.append(prepare(*args, **kwargs).float())
        return fixed[0].to(args[4] if len(args) > 4 else kwargs.get("dtype", torch.float32))

    try:
        pipe.to(dtype)  # every part, so that no float16 activation meets a float32 weight
        pipe.prepare_latents = same_noise  # this instance only, removed below
        ident = dataclasses.replace(identity, id_embed=identity.id_embed.to(dtype),
                                    clip_embeds=identity.clip_embeds.to(dtype),
                                    clip_negative=identity.clip_negative.to(dtype))
        ff.generate(PROMPT, ident, load_preset("ff-am2"), seed=0, height=size, width=size)
    finally:
        del pipe.prepare_latents
        for h in hooks:
            h.remove()
        pipe.to(old)
    return outs


def run(checkpoints, *, weights_root, cache_dir, face_backend, face_root, device, images: Path | None,
        compare: bool, size: int | None = None) -> dict:
    import torch

    from fastface.method.config import load_preset
    from fastface.models.pipeline import load_pipeline
    from fastface.models.weights import generation_needs, missing_message, resolve
    from probes.capture import capture
    from probes.spec import named_spec

    fp16 = str(device).startswith("cuda")
    found = resolve(generation_needs(checkpoints, fp16=fp16, face_backend=face_backend), weights_root=weights_root,
                    cache_dir=cache_dir, face_root=face_root, online=False)
    if any(not f.ok for f in found):
        return {"skipped": missing_message(found, weights_root=weights_root, cache_dir=cache_dir)}
    tmp = images or Path(__import__("tempfile").mkdtemp(prefix="real-weights-"))
    tmp.mkdir(parents=True, exist_ok=True)
    photo = _photo(tmp)
    out: dict = {"checkpoints": {}, "device": str(device)}
    for name in checkpoints:
        t0 = time.perf_counter()
        ff = load_pipeline(name, weights_root=weights_root, cache_dir=cache_dir, device=device,
                           face_backend=face_backend, face_root=face_root)
        load_s = time.perf_counter() - t0
        identity = ff.encode_identity(photo, on_multiple="largest")
        with capture(ff, named_spec("head_mean")) as probe:
            if fp16:
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            result, maps = probe.generate("check", PROMPT, identity, load_preset("ff-am2"), seed=0, height=size,
                                          width=size)
            if fp16:
                torch.cuda.synchronize()
            gen_s = time.perf_counter() - t1
        import numpy as np

        image = np.asarray(result.image.convert("RGB"))
        faces = ff.analyzer.detect(image)
        sim = None
        if faces and faces[0].embedding is not None:
            from fastface.faces.base import face_similarity

            sim = face_similarity(max(faces, key=lambda f: f.area).embedding, identity.face.embedding)
        result.image.save(tmp / f"{name}.png")
        row = {"load_s": load_s, "generate_s": gen_s, "width": result.width, "height": result.height,
               "steps": result.steps, "sites": len(ff.sites), "maps": len(maps), "faces": len(faces),
               "id_sim": sim, "image_std": float(image.std()), "finite_latents": bool(
                   torch.isfinite(result.latents.float()).all())}
        if compare and name == checkpoints[0]:
            sites = list(ff.sites)
            # CUDA: the pipeline's float16 against float32; the CPU dry run: float32 against float64
            noise: list = []
            a = _block_outputs(ff, identity, torch.float16 if fp16 else torch.float32, sites, size, noise)
            b = _block_outputs(ff, identity, torch.float32 if fp16 else torch.float64, sites, size, noise)
            rel = {s: float((a[s] - b[s]).abs().max() / (b[s].abs().max() + 1e-12)) for s in sites if s in a and s in b}
            row["fp16_vs_fp32"] = {"blocks": len(rel), "max_rel": max(rel.values()) if rel else None,
                                   "median_rel": float(np.median(list(rel.values()))) if rel else None}
        out["checkpoints"][name] = row
        print(json.dumps({name: row}), flush=True)
        ff.restore_processors()
        del ff
        if fp16:
            torch.cuda.empty_cache()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoints", default="hyper,lightning,lcm,turbo")
    ap.add_argument("--weights-root")
    ap.add_argument("--cache-dir")
    ap.add_argument("--insightface-root")
    ap.add_argument("--face-backend", default="insightface")
    ap.add_argument("--device", default=None)
    ap.add_argument("--mirror", type=Path, help="dry run: write the tiny exact Hub mirror here and use it on CPU")
    ap.add_argument("--no-compare", action="store_true", help="skip the float16-vs-float32 block comparison")
    ap.add_argument("--size", type=int, help="image height and width (default: each checkpoint's; --mirror: 64)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--images", type=Path, help="folder for the generated images")
    a = ap.parse_args(argv)
    import torch

    weights_root, face_backend, device = a.weights_root, a.face_backend, a.device
    if a.mirror is not None:  # the dry run: the tiny mirror (128-d FaceID: the dlib backend)
        from tests.fixtures.hub_mirror import build_hub_mirror

        weights_root, face_backend, device = str(build_hub_mirror(a.mirror)), "dlib", "cpu"
        a.size = a.size or 64
        torch.set_num_threads(1)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    names = [c.strip() for c in a.checkpoints.split(",") if c.strip()]
    out = run(names, weights_root=weights_root, cache_dir=a.cache_dir, face_backend=face_backend,
              face_root=a.insightface_root, device=device, images=a.images, compare=not a.no_compare, size=a.size)
    if "skipped" in out:
        print("real weights: skipped, not all present here:\n" + out["skipped"], flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
