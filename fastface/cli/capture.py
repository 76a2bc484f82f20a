"""``fastface capture | demo``: capture sweeps into a store (``demo``: the workbench served at once
on a new store, then a small offline sweep and its evaluation filling it)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fastface.cli.args import add_face_args, add_size_args, check_size
from fastface.sweeps.ray_setup import add_ray_arguments

DEMO_STORE = "runs/demo-store"


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers, e.g. 0.5,0.8") from e


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _capture_arg(text: str):
    """A named capture spec, or a JSON file with a CaptureSpec."""
    if text.endswith(".json"):
        return json.loads(Path(text).read_text())
    return text


def _words_arg(text: str):
    """'all', or comma-separated prompt words."""
    if text.strip().lower() == "all":
        return "all"
    words = _names(text.lower())
    if not words:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated words (e.g. watercolor,library) or 'all'")
    return list(words)


def with_words(capture, words):
    """The --capture value (a named spec or a CaptureSpec dict) with ``words`` set."""
    from probes.spec import named_spec

    if words is None:
        return capture
    spec = named_spec(capture).to_dict() if isinstance(capture, str) else dict(capture)
    return {**spec, "words": words}


def add_capture(sub) -> None:
    p = sub.add_parser("capture", help="run (or resume) a capture sweep into a store")
    src = p.add_argument_group("dataset (the paper's layout, or photos + prompts)")
    src.add_argument("--dataset", help="folder with id_photos/ and prompts*.txt")
    src.add_argument("--photos", help="a folder of ID photos")
    src.add_argument("--prompts", help="a prompt file, one prompt per line ('style; Person ...' = stylistic)")
    src.add_argument("--prompt-set", default="all", choices=["all", "realistic", "stylistic"])
    p.add_argument("--store", required=True, help="store folder (created if missing)")
    p.add_argument("--checkpoints", type=_names, default=("hyper",), help="comma-separated, e.g. hyper,lightning")
    p.add_argument("--presets", type=_names, default=("baseline", "ff-am2"), help="comma-separated preset names")
    p.add_argument("--ip-scales", type=_floats, default=None, help="comma-separated, e.g. 0.5,0.8 (default 0.8)")
    p.add_argument("--lora-scales", type=_floats, default=None, help="comma-separated (default 1.0)")
    p.add_argument("--vary", action="append", metavar="PATH=v1,v2,...",
                   help="a parameter grid over the one preset of --presets: one run per cell, the same samples "
                        "and seeds in each (repeat for more axes), e.g. --vary am.am1.scale_up=1.0,1.45 "
                        "--vary guidance.beta[3]=1,3; paths: fastface.method.paths; SQL: views grid_cells, run_params")
    p.add_argument("--capture", type=_capture_arg, default="head_mean",
                   help="summaries_only | head_mean | everything | a CaptureSpec JSON file")
    p.add_argument("--words", type=_words_arg, default=None,
                   help="prompt-word maps beside the ID maps: comma-separated words (e.g. watercolor,library; "
                        "<start>, <end> by name) or 'all' (every word of the prompt); a sample whose prompt lacks a "
                        "named word fails with an error naming the prompt's words")
    p.add_argument("--limit", type=int, help="only the first N (identity, prompt) pairs")
    p.add_argument("--seed", type=int, default=50, help="base seed; sample i uses seed + i")
    p.add_argument("--worker", default="0/1", help="i/n: this process takes every n-th sample from i (several GPUs)")
    p.add_argument("--no-compact", action="store_true", help="keep one Parquet folder per sample (no compaction)")
    add_ray_arguments(p, loads="the pipeline")
    _model_args(p)
    p.set_defaults(func=cmd_capture)


def _model_args(p) -> None:
    p.add_argument("--tiny", action="store_true", help="the offline tiny world (random weights)")
    p.add_argument("--face-world", action="store_true",
                   help="the offline face world (trained here on shipped face photos; see fastface/models/faceworld)")
    p.add_argument("--steps", type=int)
    p.add_argument("--device")
    p.add_argument("--weights-root", help="folder mirroring the Hub (<org>/<name>/...), searched before the Hub")
    p.add_argument("--cache-dir", help="Hugging Face cache folder")
    p.add_argument("--faceid-weight", default=None, help="FaceID file name in the repo or a local path")
    add_face_args(p)
    add_size_args(p)


def _loader(args):
    from fastface.models.pipeline import load_pipeline

    world = "face" if getattr(args, "face_world", False) else "random"
    tiny = args.tiny or world == "face"

    from fastface.models.checkpoints import FACEID_FILE

    def load(checkpoint: str):
        label = {"face": " (face world)", "random": " (tiny world)"}[world] if tiny else ""
        print(f"loading {checkpoint}{label} ...", file=sys.stderr)
        return load_pipeline(checkpoint, tiny=tiny, weights_root=args.weights_root, cache_dir=args.cache_dir,
                             device=args.device, steps=args.steps, face_backend=args.face_backend, world=world,
                             face_root=getattr(args, "insightface_root", None),
                             crop_order=getattr(args, "clip_crop_order", None),
                             faceid_weight=getattr(args, "faceid_weight", None) or FACEID_FILE)

    return load


def _worker(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise ValueError(f"--worker {text}: give i/n with 0 <= i < n, e.g. 0/2 and 1/2 for two processes")
    return i, n


def _sweep(args, dataset):
    from fastface.sweeps.sweep import SweepSpec, run_sweep
    from store.layout import check_store_location

    i, n = _worker(args.worker)
    face_world = bool(getattr(args, "face_world", False))
    tiny = args.tiny or face_world
    spec = SweepSpec(checkpoints=args.checkpoints, presets=args.presets, ip_scales=args.ip_scales,
                     lora_scales=args.lora_scales, seed=args.seed, steps=args.steps, tiny=tiny,
                     world="face" if face_world else "random", capture=with_words(args.capture, getattr(args, "words", None)),
                     face_backend=args.face_backend or ("dlib" if tiny else "insightface"),
                     limit=args.limit, height=getattr(args, "height", None), width=getattr(args, "width", None),
                     clip_crop_order=getattr(args, "clip_crop_order", None), vary=tuple(getattr(args, "vary", None) or ()))
    spec.validate()  # the whole grid, then the store folder: nothing is loaded or written before
    check_size(spec.height, spec.width)
    check_store_location(args.store)
    if not tiny:  # every real component found (or fetched from the Hub) before the store is touched
        _preflight(args, spec)
    compact = not getattr(args, "no_compact", False)
    if getattr(args, "ray", None) is not None:  # Ray is imported on this path only
        if n != 1:
            raise ValueError("--worker splits a sweep over processes by hand; with --ray leave it out")
        from fastface.sweeps.ray_setup import check_ray_device
        from fastface.sweeps.sweep_ray import run_sweep_ray

        check_ray_device(args.device)

        counts = run_sweep_ray(spec, dataset, args.store, load=_loader(args), address=args.ray or None,
                               actors=args.ray_actors, gpus_per_actor=args.ray_gpus_per_actor,
                               cpus_per_actor=args.ray_cpus_per_actor, compact=compact)
    else:
        counts = run_sweep(spec, dataset, args.store, load=_loader(args), worker=(i, n), compact=compact,
                           adapt_threads=True)
    print(f"store {args.store}: {counts['runs']} runs, {counts['written']} samples written "
          f"({counts['failed']} failed), {counts['skipped']} already there"
          + (f"; ray: {counts['actors']} actors, {counts['actor_deaths']} died, {counts['resubmitted']} samples "
             f"resubmitted" if "actors" in counts else ""))
    return counts


def _preflight(args, spec) -> None:
    import torch

    from fastface.models.checkpoints import FACEID_FILE, default_device, default_dtype
    from fastface.models.weights import ensure_weights

    device = args.device or default_device()
    ensure_weights(spec.checkpoints, steps=spec.steps, fp16=default_dtype(device) == torch.float16,
                   faceid_weight=getattr(args, "faceid_weight", None) or FACEID_FILE, face_backend=spec.face_backend,
                   weights_root=args.weights_root, cache_dir=args.cache_dir,
                   face_root=getattr(args, "insightface_root", None))


def _grid_args(args) -> None:
    """--vary with the flags it does not go with (one line, exit 2), then the scales' defaults."""
    from fastface.sweeps.variation import check_vary_flags

    check_vary_flags(args.vary or (), args.presets, {"ip_scale": args.ip_scales is not None,
                                                     "lora_scale": args.lora_scales is not None})
    args.ip_scales = (0.8,) if args.ip_scales is None else args.ip_scales
    args.lora_scales = (1.0,) if args.lora_scales is None else args.lora_scales


def cmd_capture(args) -> int:
    from fastface.sweeps.dataset import load_dataset
    from fastface.sweeps.sweep import summarize_failures

    _grid_args(args)
    dataset = load_dataset(args.dataset, photos=args.photos, prompts=args.prompts, prompt_set=args.prompt_set)
    counts = _sweep(args, dataset)
    if counts["failed"]:
        print(f"fastface capture: {summarize_failures(counts)}; the reasons are in the store "
              f"(select error, count(*) from samples where status = 'failed' group by 1)", file=sys.stderr)
    if counts["written"] and counts["failed"] == counts["written"]:
        return 1  # every sample failed: the sweep produced nothing
    return 0


def add_demo(sub) -> None:
    p = sub.add_parser("demo", help="serve the workbench on http://127.0.0.1:PORT at once and capture a small "
                                    "offline face-world sweep into it (the pages fill in as samples land; "
                                    "Ctrl-C stops both)")
    p.add_argument("--store", default=DEMO_STORE)
    p.add_argument("--no-open", action="store_true", help="capture (and evaluate) only; do not start the workbench")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--world", choices=["face", "random"], default="face",
                   help="face: the trained face world, 8 identities x 2 prompts (default); "
                        "random: the tiny random-weight world (noise images, every code path, faster)")
    p.add_argument("--limit", type=int, help="only the first N (identity, prompt) pairs per run (a quicker demo)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from fastface.sweeps.dataset import write_demo_dataset

    world = getattr(args, "world", "face")
    dataset = write_demo_dataset(Path(args.store).parent / f"demo-dataset-{world}", world=world)
    ns = argparse.Namespace(
        presets=("baseline", "dcg", "am1", "am2", "ff-am1", "ff-am2"), checkpoints=("hyper",),
        ip_scales=(0.5, 0.8), lora_scales=(1.0,), capture="head_mean", limit=getattr(args, "limit", None), seed=50,
        worker="0/1",
        tiny=True, face_world=world == "face", steps=None, device="cpu", weights_root=None, cache_dir=None,
        face_backend="dlib", store=args.store, height=None, width=None, clip_crop_order=None, insightface_root=None,
        faceid_weight=None,
        # the text half of the decoupled block beside the ID maps: two words of every face-world prompt
        words=["person", "background"] if world == "face" else None,
    )

    def fill() -> None:
        _sweep(ns, dataset)
        _demo_evaluation(args.store)

    if args.no_open:
        fill()
        return 0
    from fastface.cli.workbench import serve_during
    from store.db import open_store
    from store.layout import check_store_location

    check_store_location(args.store)
    open_store(args.store)  # the store (and its catalog) exists before the server reads it
    return serve_during(args.store, fill, args.port)


def _demo_evaluation(store: str) -> None:
    """The offline evaluation of the demo: dlib ID similarity, FFC and face size of every sample
    (``fastface evaluate --metrics id,ffc,face-size --face-backend dlib``), so that ``fastface
    report`` and the Compare page have the metrics of a protocol."""
    from fastface.evaluation.evaluate import EvalConfig, parse_metrics
    from fastface.evaluation.runner import evaluate_store

    cfg = EvalConfig(metrics=parse_metrics("id,ffc,face-size"), face_backend="dlib", device="cpu")
    print("\n".join(evaluate_store(store, cfg).lines()))


def register(sub) -> None:
    for add in (add_capture, add_demo):
        add(sub)
