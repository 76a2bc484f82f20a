"""``fastface face-world``: write the trained face world, or rebuild its weights from scratch.

    fastface face-world                      # write the shipped world in the Hub layouts; print its folder
    fastface face-world --train              # retrain from scratch (under 3 h on 2 CPU cores)
    fastface face-world --train --out DIR    # ... into DIR instead of the package's weights/ folder
    fastface face-world --train --stage1-weights W.safetensors   # only stage 2, from a stage-1 export
"""
from __future__ import annotations

from pathlib import Path


def add_face_world(sub) -> None:
    p = sub.add_parser("face-world", help="write the trained offline face world, or retrain it (--train)")
    p.add_argument("--train", action="store_true", help="train the weights from scratch (seeded, resumable)")
    p.add_argument("--out", help="with --train: folder for face_world.safetensors/.json "
                                 "(default: the package's fastface/models/faceworld/weights/)")
    p.add_argument("--workdir", default="runs/face-world-train",
                   help="with --train: checkpoints, loss log; an interrupted run resumes from here")
    p.add_argument("--unet-steps", type=int, help="with --train: UNet steps of stage 1 (default 4800, as shipped)")
    p.add_argument("--refine-from", type=int,
                   help="with --train: the step where the refinement phase starts (default 3000)")
    p.add_argument("--mirror-faces", action="store_true",
                   help="with --train: mirror the faces of half of the scenes at random (default: never; "
                        "a condition that does not say which way a face looks makes few-step samples blend both)")
    p.add_argument("--ae-steps", type=int, help="with --train: autoencoder steps (default 700)")
    p.add_argument("--decoder-steps", type=int,
                   help="with --train: decoder fine-tuning steps after the UNet of stage 1 (default 1000; 0 skips)")
    p.add_argument("--stage2-unet-steps", type=int,
                   help="with --train: UNet steps of stage 2, on the final (larger) faces (default 2000; 0: stage 1 "
                        "alone is the world)")
    p.add_argument("--stage2-decoder-steps", type=int, help="with --train: decoder steps of stage 2 (default 500)")
    p.add_argument("--stage1-weights",
                   help="with --train: skip stage 1 and start stage 2 from this stage-1 export "
                        "(a face_world.safetensors with its .json, as `--stage2-unet-steps 0` writes)")
    p.add_argument("--seed", type=int, default=0, help="with --train: the training seed")
    p.add_argument("--threads", type=int, default=2, help="with --train: torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="with --train: stop and export after this long (0: run every step)")
    p.add_argument("--root", help="without --train: target folder (default: ~/.cache/fastface/face-world-...)")
    p.set_defaults(func=cmd_face_world)


def cmd_face_world(args) -> int:
    if not args.train:
        from fastface.models.faceworld.world import build_face_world

        print(build_face_world(args.root))
        return 0
    from dataclasses import replace

    from fastface.models.faceworld.stages import train
    from fastface.models.faceworld.train import TrainSettings

    settings = TrainSettings(seed=args.seed, threads=args.threads, max_minutes=args.max_minutes,
                             mirror_faces=args.mirror_faces)
    if args.unet_steps is not None:
        settings = replace(settings, unet_steps=args.unet_steps)
    if args.refine_from is not None:
        settings = replace(settings, refine_from=args.refine_from)
    if args.ae_steps is not None:
        settings = replace(settings, ae_steps=args.ae_steps)
    if args.decoder_steps is not None:
        settings = replace(settings, dec_steps=args.decoder_steps)
    if args.stage2_unet_steps is not None:
        settings = replace(settings, stage2_unet_steps=args.stage2_unet_steps)
    if args.stage2_decoder_steps is not None:
        settings = replace(settings, stage2_decoder_steps=args.stage2_decoder_steps)
    path = train(Path(args.out) if args.out else None, workdir=Path(args.workdir), settings=settings,
                 stage1_weights=Path(args.stage1_weights) if args.stage1_weights else None)
    print(path)
    return 0


def register(sub) -> None:
    add_face_world(sub)
