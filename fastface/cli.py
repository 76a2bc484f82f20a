"""The ``fastface`` command line: a thin layer over the library.

    fastface generate --checkpoint hyper --preset ff-am2 --id-image PHOTO --prompt TEXT --out OUT.png
    fastface generate --tiny ...             # the offline tiny world (random weights)
    fastface presets                          # list presets and checkpoints
    fastface tiny-world [--root DIR]          # write the tiny world's files
    fastface face-world [--train]             # write (or retrain) the trained offline face world
    fastface capture --dataset DIR --store PATH [--tiny] ...   # a capture sweep into a store
    fastface demo                             # a tiny offline sweep, then the workbench
    fastface workbench --store PATH           # the web app
    fastface export --store PATH --run ID --to DIR
    fastface store vacuum --store PATH --older-than 1h   # remove compacted sample folders
    fastface evaluate --store PATH [--run ID] [--metrics ...] [--tiny]   # metrics into a store
    fastface import --store PATH --images DIR --config CONFIG.json --dataset DIR
    fastface report --store PATH --out DIR   # paper tables, paired statistics, fronts
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fastface.cli_args import add_face_args, add_size_args, check_size
from fastface.config import ConfigError, preset_names


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from fastface.checkpoints import CHECKPOINTS

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
    from fastface.checkpoints import FACEID_FILE
    from fastface.pipeline import load_pipeline

    return load_pipeline(
        args.checkpoint, tiny=args.tiny, weights_root=args.weights_root, cache_dir=args.cache_dir,
        device=args.device, steps=args.steps, face_backend=args.face_backend,
        faceid_weight=args.faceid_weight or FACEID_FILE, face_root=args.insightface_root,
        crop_order=args.clip_crop_order,
    )


def cmd_generate(args) -> int:
    from fastface.config import resolve_config

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
    from fastface.checkpoints import CHECKPOINTS
    from fastface.config import load_preset

    print("presets:")
    for name in preset_names():
        print(f"  {name:12s} {load_preset(name).description}")
    print("checkpoints:")
    for spec in CHECKPOINTS.values():
        print(f"  {spec.name:10s} {spec.repo:38s} {spec.steps:3d} steps {spec.resolution}px  {spec.description}")
    return 0


def cmd_tiny_world(args) -> int:
    from fastface.tiny import build_tiny_world

    print(build_tiny_world(args.root, seed=args.seed, force=args.force))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastface", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_generate(sub)
    p = sub.add_parser("presets", help="list presets and checkpoints")
    p.set_defaults(func=cmd_presets)
    p = sub.add_parser("tiny-world", help="write the tiny random-weight world (Hub layout) to a folder")
    p.add_argument("--root", help="target folder (default: ~/.cache/fastface/tiny-...)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_tiny_world)
    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def _register_sweep_commands(sub) -> None:
    from fastface.cli_sweep import register

    register(sub)


def _register_evaluation_commands(sub) -> None:
    from fastface.evaluation.cli import register

    register(sub)


def _register_weights_commands(sub) -> None:
    from fastface.cli_weights import register

    register(sub)


def _register_store_commands(sub) -> None:
    from fastface.cli_store import register

    register(sub)


def _register_face_world_commands(sub) -> None:
    from fastface.faceworld.cli import add_face_world

    add_face_world(sub)


#: subcommands defined in other modules (capture, demo, workbench, export; store; evaluate, import, report;
#: face-world)
_EXTRA_COMMANDS: list = [_register_sweep_commands, _register_store_commands, _register_evaluation_commands,
                         _register_face_world_commands, _register_weights_commands]


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


#: what to do about an OSError, by errno name (the message names the path)
_OS_FIXES = {
    "EACCES": "fix its permissions or give a folder you can write to",
    "EPERM": "fix its permissions or give a folder you can write to",
    "EROFS": "the filesystem is read-only: give a folder on a writable one",
    "ENOTDIR": "a part of the path is a file, not a folder: give another path",
    "EISDIR": "it is a folder: give a file",
    "ENOENT": "check the path",
    "EEXIST": "it exists already: give another path",
    "ENOSPC": "the disk is full: free space or give a folder on another disk",
    "EDQUOT": "the disk quota is used up: free space or give a folder on another disk",
}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def error_message(e: BaseException) -> str | None:
    """One line for a known error (bad input, OS or DuckDB error), naming the path and the fix;
    None for anything else (a bug: its traceback is kept)."""
    import errno

    if isinstance(e, OSError):
        if e.filename is None or e.strerror is None:
            return _one_line(str(e))
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        fix = _OS_FIXES.get(errno.errorcode.get(e.errno or 0, ""))
        return _one_line(f"{e.strerror}: {where}" + (f" ({fix})" if fix else ""))
    if type(e).__module__.split(".")[0] in ("duckdb", "_duckdb"):
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fix = ("fix the permissions of that path or give a folder you can write to"
               if "ermission denied" in first or "read-only" in first.lower() else
               "check the path in the message; store/README.md describes a store folder")
        return _one_line(f"DuckDB: {first} ({fix})")
    if type(e).__name__ == "WeightsMissing":  # one message, a bullet per missing component
        return str(e).strip()
    if isinstance(e, (ConfigError, ValueError, RuntimeError)):
        return _one_line(str(e))
    return None


def run(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parse and run a command.  Bad input and OS/DuckDB errors become one line on stderr and
    exit status 2 (``--debug`` or FASTFACE_DEBUG=1: the traceback instead)."""
    import os

    if not any(a.dest == "debug" for a in parser._actions):
        parser.add_argument("--debug", action="store_true",
                            help="show the traceback of an error (anywhere on the command line)")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("FASTFACE_DEBUG") == "1"
    args = parser.parse_args([a for a in argv if a != "--debug"])
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"fastface {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - known kinds become one line, others re-raise
        message = None if debug else error_message(e)
        if message is None:
            raise
        print(f"fastface {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
