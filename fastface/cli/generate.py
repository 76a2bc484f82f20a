"""``fastface generate | presets | tiny-world``: one image, the presets and checkpoints, the tiny
world's files."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from fastface.cli.args import add_face_args, add_size_args, check_size
from fastface.method.config import ConfigError, preset_names


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from fastface.models.checkpoints import CHECKPOINTS

    p.add_argument("--checkpoint", default="hyper", choices=sorted(CHECKPOINTS), help="distilled SDXL model")
    p.add_argument("--tiny", action="store_true", help="use the offline tiny world (random weights) instead of real ones")
    p.add_argument("--weights-root", help="folder mirroring the Hub layout (<org>/<name>/...), searched before the Hub")
    p.add_argument("--cache-dir", help="Hugging Face cache folder")
    p.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when available)")
    add_face_args(p)
    p.add_argument("--faceid-weight", default=None, help="FaceID file name in the repo or a local path (.bin/.safetensors)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the checkpoint's)")
    add_size_args(p)


def _add_generate(sub) -> None:
    p = sub.add_parser("generate", help="generate one image")
    _add_model_args(p)
    p.add_argument("--preset", default="ff-am2", help=f"one of: {', '.join(preset_names())}")
    p.add_argument("--config", help="a FastFaceConfig JSON/TOML file (instead of --preset)")
    p.add_argument("--id-image", required=True, help="the ID photo (one face)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--out", required=True, help="output PNG; a .json with the full configuration is written beside it")
    p.add_argument("--ip-scale", type=float, help="ip_adapter_scale (lambda); default from the preset (0.8)")
    p.add_argument("--lora-scale", type=float, help="weight of the FaceID LoRA; default 1.0")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--on-multiple-faces", default="error", choices=["error", "first", "largest"],
                   help="what to do when the ID photo shows several faces (the paper's release takes the first)")
    p.set_defaults(func=cmd_generate)


def _load(args):
    from fastface.models.checkpoints import FACEID_FILE
    from fastface.models.pipeline import load_pipeline

    return load_pipeline(
        args.checkpoint, tiny=args.tiny, weights_root=args.weights_root, cache_dir=args.cache_dir,
        device=args.device, steps=args.steps, face_backend=args.face_backend,
        faceid_weight=args.faceid_weight or FACEID_FILE, face_root=args.insightface_root,
        crop_order=args.clip_crop_order,
    )


def cmd_generate(args) -> int:
    from fastface.method.config import resolve_config

    config = resolve_config(args.preset, args.config).with_scales(args.ip_scale, args.lora_scale)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ConfigError(f"--out {out}: give a .png file name")
    if not Path(args.id_image).exists():
        raise ConfigError(f"--id-image {args.id_image}: no such file; give the path of a photo with one face")
    check_size(args.height, args.width)
    ff = _load(args)
    config.validate_for_steps(args.steps or ff.checkpoint.steps)
    identity = ff.encode_identity(args.id_image, on_multiple=args.on_multiple_faces)
    result = ff.generate(args.prompt, identity, config, seed=args.seed, steps=args.steps, height=args.height,
                         width=args.width)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(out)
    meta = {
        "checkpoint": ff.checkpoint.to_dict(), "config": config.to_dict(), "prompt": args.prompt,
        "id_image": str(args.id_image), "seed": args.seed, "steps": result.steps, "tiny": args.tiny,
        "height": result.height, "width": result.width, "seconds": round(result.seconds, 3),
        "unet_rows": result.unet_rows, "layouts": [l.to_dict() for l in result.layouts],
        "face_backend": ff.analyzer.name if ff.analyzer else None, "clip_crop_order": ff.crop_order,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {out} ({result.width}x{result.height}, {result.steps} steps, {result.seconds:.1f} s)")
    return 0


def cmd_presets(args) -> int:
    from fastface.models.checkpoints import CHECKPOINTS
    from fastface.method.config import load_preset

    print("presets:")
    for name in preset_names():
        print(f"  {name:12s} {load_preset(name).description}")
    print("checkpoints:")
    for spec in CHECKPOINTS.values():
        print(f"  {spec.name:10s} {spec.repo:38s} {spec.steps:3d} steps {spec.resolution}px  {spec.description}")
    return 0


def cmd_tiny_world(args) -> int:
    from fastface.models.tiny import build_tiny_world

    print(build_tiny_world(args.root, seed=args.seed, force=args.force))
    return 0


def register(sub) -> None:
    _add_generate(sub)
    p = sub.add_parser("presets", help="list presets and checkpoints")
    p.set_defaults(func=cmd_presets)
    p = sub.add_parser("tiny-world", help="write the tiny random-weight world (Hub layout) to a folder")
    p.add_argument("--root", help="target folder (default: ~/.cache/fastface/tiny-...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_tiny_world)
