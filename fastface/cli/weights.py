"""``fastface weights check | download``: the real weights a command needs, where they are, and
fetching exactly those files (see :mod:`fastface.models.weights`)."""
from __future__ import annotations

import sys


def _add_common(p) -> None:
    from fastface.models.checkpoints import CHECKPOINTS

    p.add_argument("--checkpoints", default="hyper",
                   help=f"comma-separated, of {', '.join(c for c in CHECKPOINTS if c != 'base')} (or 'all')")
    p.add_argument("--steps", type=int, help="denoising steps (picks the Hyper/Lightning file); default: the checkpoint's")
    p.add_argument("--device", help="cuda or cpu: cuda prefers the fp16 files (default: cuda when available)")
    p.add_argument("--weights-root", help="folder mirroring the Hub (<org>/<name>/...), searched first")
    p.add_argument("--cache-dir", help="Hugging Face cache folder (default: $HF_HUB_CACHE)")
    p.add_argument("--face-backend", default="insightface", choices=["insightface", "dlib", "skimage", "none"],
                   help="face models to include (default insightface: buffalo_l)")
    p.add_argument("--insightface-root", help="folder holding models/buffalo_l (default: <weights-root>/insightface, "
                                              "$INSIGHTFACE_HOME, ~/.insightface)")
    p.add_argument("--faceid-weight", default=None, help="FaceID file name in h94/IP-Adapter-FaceID, or a path")
    p.add_argument("--metrics", default="", help="evaluation metrics whose models to include, e.g. clip,ae,ir")
    p.add_argument("--protocol", default="corrected", choices=["release", "corrected"],
                   help="evaluation protocol (picks the aesthetic head)")
    p.add_argument("--offline", action="store_true", help="do not ask the Hub (as HF_HUB_OFFLINE=1)")


def _needs(args):
    from fastface.models.checkpoints import FACEID_FILE
    from fastface.method.config import ConfigError
    from fastface.evaluation.needs import evaluation_needs
    from fastface.models.weights import all_checkpoints, generation_needs

    names = all_checkpoints() if args.checkpoints.strip() == "all" else tuple(
        c.strip() for c in args.checkpoints.split(",") if c.strip())
    if not names:
        raise ConfigError("--checkpoints is empty: give e.g. hyper or hyper,lightning or all")
    fp16 = _fp16(args.device)
    needs = generation_needs(names, steps=args.steps, fp16=fp16, faceid_weight=args.faceid_weight or FACEID_FILE,
                             face_backend=None if args.face_backend in ("none", "skimage") else args.face_backend)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if metrics:
        needs += evaluation_needs(metrics, protocol=args.protocol, weights_root=args.weights_root)
    return needs, fp16


def _fp16(device: str | None) -> bool:
    """Whether the loaders would take the fp16 files (float16 on CUDA: the default device's dtype)."""
    import torch

    from fastface.models.checkpoints import default_device, default_dtype

    return default_dtype(device or default_device()) == torch.float16


def _resolve(args):
    """(found, fp16, the Hub probe that served them)."""
    from fastface.models.weights import HubProbe, resolve

    needs, fp16 = _needs(args)
    hub = HubProbe(enabled=not args.offline)
    found = resolve(needs, weights_root=args.weights_root, cache_dir=args.cache_dir,
                    face_root=args.insightface_root, hub=hub)
    return found, fp16, hub


def cmd_check(args) -> int:
    from fastface.models.weights import human_size, missing_message, table

    found, fp16, _ = _resolve(args)
    print(f"weights for {args.checkpoints} ({'fp16 files preferred' if fp16 else 'fp32 files preferred'}; "
          f"face backend {args.face_backend})")
    print("\n".join(table(found)))
    total = sum(f.size() or 0 for f in found)
    print(f"{sum(len(f.paths) for f in found)} files found ({human_size(total)}), "
          f"{sum(len(f.missing) for f in found)} missing")
    if args.face_backend == "insightface" and all(f.ok for f in found if f.need.kind == "insightface"):
        print(_providers_line(args.device))
    if any(not f.ok for f in found):
        print(missing_message(found, weights_root=args.weights_root, cache_dir=args.cache_dir, command="fastface weights"),
              file=sys.stderr)
        return 1
    return 0


def _providers_line(device: str | None) -> str:
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime: not installed (pip install onnxruntime, or onnxruntime-gpu on a CUDA machine)"
    from fastface.faces.insightface import onnx_providers

    available = onnxruntime.get_available_providers()
    from fastface.models.checkpoints import default_device

    chosen = onnx_providers(device or default_device(), available)
    first = chosen[0][0] if isinstance(chosen[0], tuple) else chosen[0]
    return f"insightface will run on {first} (onnxruntime {onnxruntime.__version__}; available: {', '.join(available)})"


def cmd_download(args) -> int:
    from fastface.models.weights import download, download_plan, human_size

    found, _, hub = _resolve(args)
    missing_everywhere = [f for f in found if not f.ok and f.need.kind == "hub"]
    plan = download_plan(found)
    if not plan:
        print("nothing to download: every file is here (fastface weights check shows where)")
        return 0
    target = args.weights_root or "the Hugging Face cache"
    print(f"{len(plan)} file(s) to fetch into {target}:")
    for need, name in plan:
        f = next(x for x in found if x.need is need)
        print(f"  {need.repo}/{name}  {human_size(f.sizes.get(name))}")
    hub_down = args.offline or (hub.reachable is False and bool(missing_everywhere))
    if args.dry_run or hub_down:
        if hub_down and not args.dry_run:
            print("the Hub cannot be reached from here (or --offline): nothing was fetched; run this command on a "
                  "machine with network and copy the folder, or pass --weights-root to a mirror", file=sys.stderr)
            return 1
        return 0
    n = download(found, weights_root=args.weights_root, cache_dir=args.cache_dir, face_root=args.insightface_root)
    print(f"fetched {n} file(s); `fastface weights check` with the same options shows them")
    return 0


def register(sub) -> None:
    p = sub.add_parser("weights", help="check or download the real weights a command needs")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    c = wsub.add_parser("check", help="which files the chosen checkpoints, adapter, encoder and face models need, "
                                      "and where each one is (exit 1 when any is missing)")
    _add_common(c)
    c.set_defaults(func=cmd_check)
    d = wsub.add_parser("download", help="fetch exactly the missing files (fp16 variants on CUDA) from the Hub "
                                         "into the HF cache or --weights-root; buffalo_l through insightface")
    _add_common(d)
    d.add_argument("--dry-run", action="store_true", help="only list what would be fetched")
    d.set_defaults(func=cmd_download)
