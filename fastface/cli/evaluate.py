"""``fastface evaluate | import | report``: metrics into a store, imported runs, paper tables.

    fastface evaluate --store PATH [--run ID ...] [--metrics id,ffc,face-size,id-dlib,clip,ae,ir,fsc]
                      [--protocol release|corrected] [--tiny] [--device cuda] [--weights-root DIR]
                      [--face-backend insightface] [--ray [ADDRESS] [--ray-actors N]]
    fastface import   --store PATH --images DIR --config CONFIG.json --dataset DIR
                      [--order sorted|listdir|FILE] [--protocol release|corrected]
                      [--run-id ID] [--checkpoint NAME] [--pattern '{index}.png']
    fastface report   --store PATH --out DIR [--run ID ...] [--protocol release|corrected]
                      [--baseline-preset baseline]

``register(sub)`` adds the three subcommands to ``fastface.cli``'s parser (its
``COMMAND_GROUPS``); ``python -m fastface.cli.evaluate ...`` runs them alone.
"""
from __future__ import annotations

import argparse
import sys


def _add_protocol(p, what: str, default: str | None = "corrected") -> None:
    p.add_argument("--protocol", choices=["release", "corrected"], default=default,
                   help=f"release: the authors' released evaluation reproduced, quirks included; corrected: its "
                        f"errors fixed (fastface/evaluation/README.md, 'Protocols'); {what}"
                        + (f" (default {default})" if default else ""))


def _runs(values) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def add_evaluate(sub) -> None:
    from fastface.evaluation.evaluate import ALL_METRICS

    p = sub.add_parser("evaluate", help="compute per-sample metrics into a store (incremental, resumable)",
                       description="Per-sample metrics of a store's runs (METHOD.md section 6), written with "
                                   "StoreWriter.add_metrics; keys already present are skipped.")
    p.add_argument("--store", required=True)
    p.add_argument("--run", action="append", help="run id (repeat, or comma-separated); default: every run")
    p.add_argument("--metrics", default=",".join(ALL_METRICS),
                   help=f"comma-separated subset of {','.join(ALL_METRICS)} (default: all)")
    p.add_argument("--tiny", action="store_true", help="the offline tiny evaluation world (random weights)")
    p.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when available)")
    p.add_argument("--weights-root", help="folder mirroring the Hub (<org>/<name>/...), searched before the Hub")
    p.add_argument("--cache-dir", help="Hugging Face cache folder")
    p.add_argument("--face-backend", choices=["insightface", "dlib", "skimage"],
                   help="face analysis for id/ffc/face-size/fsc (default: insightface; dlib with --tiny)")
    p.add_argument("--insightface-root", help="folder with models/buffalo_l/*.onnx (default: ~/.insightface)")
    p.add_argument("--id-photos", help="folder of ID photos by identity name (default: the paths stored with the samples)")
    p.add_argument("--batch-size", type=int, default=8, help="samples scored per model call (default 8)")
    p.add_argument("--clip-model", help="CLIP ViT-L/14 Hub id or path (default openai/clip-vit-large-patch14)")
    p.add_argument("--aesthetic-model", help="Hub id or path of the folder with sac+logos+ava1-l14-linearMSE.pth")
    p.add_argument("--image-reward-model", help="Hub id or path with ImageReward.pt + med_config.json")
    p.add_argument("--aesthetic-head", help="aesthetic MLP file in --aesthetic-model's repo, or a path (default: "
                                            "the protocol's: release ava+logos-l14-linearMSE.pth, corrected "
                                            "sac+logos+ava1-l14-linearMSE.pth)")
    _add_protocol(p, "the metric definitions; tagged on every metric row's model string")
    p.add_argument("--dry-run", action="store_true", help="only count what would be computed")
    p.add_argument("--no-progress", action="store_true")
    from fastface.sweeps.ray_setup import add_ray_arguments

    add_ray_arguments(p, loads="the evaluation models")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from fastface.evaluation.evaluate import EvalConfig, parse_metrics
    from fastface.evaluation.runner import evaluate_store

    cfg = EvalConfig(metrics=parse_metrics(args.metrics), face_backend=args.face_backend, device=args.device,
                     weights_root=args.weights_root, cache_dir=args.cache_dir,
                     insightface_root=args.insightface_root, tiny=args.tiny, id_photos=args.id_photos,
                     batch_size=args.batch_size, clip_model=args.clip_model, aesthetic_model=args.aesthetic_model,
                     image_reward_model=args.image_reward_model, protocol=args.protocol,
                     aesthetic_head=args.aesthetic_head)
    if args.ray is not None and not args.dry_run:  # Ray is imported on this path only
        from fastface.sweeps.ray_setup import check_ray_device
        from fastface.evaluation.evaluate_ray import evaluate_store_ray

        check_ray_device(args.device)

        summary = evaluate_store_ray(args.store, cfg, runs=_runs(args.run), progress=not args.no_progress,
                                     address=args.ray or None, actors=args.ray_actors,
                                     gpus_per_actor=args.ray_gpus_per_actor, cpus_per_actor=args.ray_cpus_per_actor)
    else:  # --dry-run only counts: it runs here, Ray or not
        summary = evaluate_store(args.store, cfg, runs=_runs(args.run), progress=not args.no_progress,
                                 dry_run=args.dry_run)
    if args.dry_run:
        print(f"dry run: {summary.n_samples} ok samples, {summary.n_samples - summary.n_complete} need metrics")
        for k, v in sorted(summary.planned.items()):
            print(f"  {k}: {v}")
        return 0
    print("\n".join(summary.lines()))
    return 0


def add_import(sub) -> None:
    p = sub.add_parser("import", help="bring a folder of generated images into a store as a run",
                       description="One image per (identity, prompt) pair of the dataset, named by --pattern "
                                   "(index = position in the dataset's pairs: identities outer, prompts inner).")
    p.add_argument("--store", required=True)
    p.add_argument("--images", required=True, help="folder of generated images")
    p.add_argument("--config", required=True,
                   help="the run's FastFaceConfig JSON (or the .json `fastface generate` writes beside a PNG)")
    src = p.add_argument_group("dataset (the paper's layout, or photos + prompts)")
    src.add_argument("--dataset", help="folder with id_photos/ and prompts*.txt")
    src.add_argument("--photos", help="a folder of ID photos")
    src.add_argument("--prompts", help="a prompt file, one prompt per line")
    src.add_argument("--prompt-set", default="all", choices=["all", "realistic", "stylistic"])
    p.add_argument("--run-id", help="default: import-<checkpoint>-<preset>-ip..-lora..-<digest> (rerun = resume)")
    p.add_argument("--checkpoint", help="checkpoint name for grouping (default: from a generate sidecar, else 'unknown')")
    p.add_argument("--name", help="human label of the run")
    p.add_argument("--pattern", default="{index}.png",
                   help="file name of a pair; fields {index}, {identity}, {identity_index}, {prompt_index}")
    p.add_argument("--seed", type=int, default=50, help="the generation seed (default 50, the paper's)")
    p.add_argument("--seed-mode", default="constant", choices=["constant", "per-sample"],
                   help="constant: every sample records --seed (one sequential generator, as the release); "
                        "per-sample: seed + index (as fastface capture)")
    p.add_argument("--order", default="sorted",
                   help="identity order behind {index}: sorted (default), listdir (os.listdir of the photo folder "
                        "on this machine, as the release numbers its images), or a FILE listing the identities")
    p.add_argument("--face-backend", default="insightface", choices=["insightface", "dlib", "skimage"])
    p.add_argument("--insightface-root", help="folder with models/buffalo_l/*.onnx (default: ~/.insightface)")
    _add_protocol(p, "the definitions of the face metrics written on import")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_import)


def cmd_import(args) -> int:
    from fastface.sweeps.dataset import load_dataset
    from fastface.evaluation.importer import import_folder

    dataset = load_dataset(args.dataset, photos=args.photos, prompts=args.prompts, prompt_set=args.prompt_set)
    summary = import_folder(args.store, args.images, args.config, dataset, run_id=args.run_id,
                            checkpoint=args.checkpoint, pattern=args.pattern, seed=args.seed,
                            seed_mode=args.seed_mode, face_backend=args.face_backend, device=args.device,
                            insightface_root=args.insightface_root, name=args.name, progress=not args.no_progress,
                            order=args.order, protocol=args.protocol)
    print("\n".join(summary.lines()))
    return 0


def add_report(sub) -> None:
    p = sub.add_parser("report", help="paper tables (Markdown, LaTeX, CSV), paired statistics and fronts",
                       description="Tables 1-3 (joint / stylistic / realistic), paired comparisons against the "
                                   "baseline preset (exact sign-flip test, Student-t interval), and ID fronts "
                                   "over IP-Adapter scales, for one protocol.")
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--run", action="append", help="run id (repeat, or comma-separated); default: every run")
    p.add_argument("--baseline-preset", default="baseline")
    p.add_argument("--id-backend", default=None, help="face model family of the ID column (default: insightface, "
                                                      "else dlib)")
    _add_protocol(p, "which metric rows the report reads (default: the one protocol in the store; "
                     "required when it holds both)", default=None)
    p.add_argument("--n-perm", type=int, default=20000,
                   help="random sign flips of the permutation test above 16 pairs (exact below; default 20000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random sign flips")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG/SVG figures (kaleido + chromium)")
    p.add_argument("--formats", default="png,svg", help="figure formats (png, svg, pdf)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from fastface.evaluation.report import make_report

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    rep = make_report(args.store, args.out, runs=_runs(args.run), baseline_preset=args.baseline_preset,
                      id_backend=args.id_backend, n_perm=args.n_perm, seed=args.seed, protocol=args.protocol,
                      figures=not args.no_figures, formats=formats)
    for p in rep.files:
        print(p)
    return 0


def register(sub) -> None:
    for add in (add_evaluate, add_import, add_report):
        add(sub)


def main(argv: list[str] | None = None) -> int:
    """These three commands alone (``python -m fastface.cli.evaluate ...``), with the error
    handling of ``fastface.cli.main``."""
    from fastface.cli.errors import run

    parser = argparse.ArgumentParser(prog="fastface", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
