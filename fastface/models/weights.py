"""What a command needs of the real weights, where each file is, and what is missing: the
pre-flight that runs before any weight is loaded or anything is written.

Every component a command will load is a :class:`Need`: a Hub repository and the files it
must hold (each file with its alternatives, e.g. the fp16 variant or the fp32 file), or a face
model pack. :func:`resolve` looks for each file, in this order, in

1. the repository given as a local folder,
2. ``--weights-root`` (a folder that mirrors the Hub: ``<root>/<org>/<name>/...``),
3. the Hugging Face cache (``--cache-dir``, ``$HF_HUB_CACHE``; the ``main`` revision),
4. the Hub, when it can be reached (``HF_HUB_OFFLINE`` unset and a metadata request answers),

and :func:`preflight` raises :class:`WeightsMissing` naming *every* missing file at once: what,
where it looked, where to put it and the flags that avoid it. :func:`download` fetches exactly
the files a command needs (the preferred alternative: fp16 variants on CUDA) through
``huggingface_hub`` into the cache or a ``--weights-root`` mirror; insightface's buffalo_l comes
through insightface's own download (``insightface.utils.storage.download``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from fastface.models.checkpoints import (  # noqa: F401 (hub_cache_dir, cache_snapshot: part of this module's API)
    BASE_ID, CHECKPOINTS, FACEID_FILE, FACEID_ID, IMAGE_ENCODER_ID, CheckpointSpec, cache_snapshot, get_checkpoint,
    hub_cache_dir,
)

#: the files of insightface's buffalo_l that the insightface backend loads (detection + recognition)
BUFFALO_FILES = ("det_10g.onnx", "w600k_r50.onnx")


class WeightsMissing(RuntimeError):
    """Components a command needs are missing; the message lists every one and how to fix it."""


@dataclass(frozen=True)
class Need:
    """One component: ``files`` of ``repo``, each a tuple of alternatives (the first preferred)."""

    component: str
    repo: str
    files: tuple[tuple[str, ...], ...]
    kind: str = "hub"  # "hub" | "insightface" | "dlib"
    flags: str = ""  # the flags that avoid or relocate it

    def preferred(self) -> list[str]:
        return [alts[0] for alts in self.files]


@dataclass
class Found:
    """Where a :class:`Need`'s files are (``where``: local, mirror, cache, hub, package, missing)."""

    need: Need
    where: str
    folder: str | None = None
    paths: dict[str, str | None] = field(default_factory=dict)  # chosen file -> local path (None: on the Hub)
    sizes: dict[str, int | None] = field(default_factory=dict)
    missing: list[tuple[str, ...]] = field(default_factory=list)
    looked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing

    def size(self) -> int | None:
        known = [s for s in self.sizes.values() if s is not None]
        return sum(known) if known else None


# --- what each command needs ----------------------------------------------------------------
def _variant_files(folder: str, stem: str, ext: str, fp16: bool) -> tuple[str, ...]:
    fp16_name, fp32_name = f"{folder}/{stem}.fp16.{ext}", f"{folder}/{stem}.{ext}"
    return (fp16_name, fp32_name) if fp16 else (fp32_name, fp16_name)


def base_need(spec: CheckpointSpec, *, base: str = BASE_ID, fp16: bool = False) -> Need:
    """SDXL base: the pipeline folders ``load_sdxl`` reads (without the UNet weights when the
    checkpoint brings its own UNet)."""
    files: list[tuple[str, ...]] = [("model_index.json",), ("scheduler/scheduler_config.json",)]
    for enc in ("text_encoder", "text_encoder_2"):
        files += [(f"{enc}/config.json",), _variant_files(enc, "model", "safetensors", fp16)]
    for tok in ("tokenizer", "tokenizer_2"):
        files += [(f"{tok}/{name}",) for name in ("vocab.json", "merges.txt", "tokenizer_config.json",
                                                  "special_tokens_map.json")]
    files.append(("unet/config.json",))
    if spec.apply in ("base", "lora"):
        files.append(_variant_files("unet", "diffusion_pytorch_model", "safetensors", fp16))
    files += [("vae/config.json",), _variant_files("vae", "diffusion_pytorch_model", "safetensors", fp16)]
    return Need("SDXL base", base, tuple(files), flags="--weights-root, --cache-dir")


def checkpoint_need(spec: CheckpointSpec, *, steps: int | None = None, fp16: bool = False) -> Need | None:
    """The distilled checkpoint's own files (None for the base model)."""
    steps = steps or spec.steps
    label = f"{spec.name} checkpoint"
    if spec.apply in ("lora", "unet_file"):
        return Need(label, spec.repo, ((spec.weight_file(steps),),),
                    flags=f"--checkpoint, --steps {'/'.join(map(str, spec.allowed_steps or (steps,)))}")
    if spec.apply == "unet_folder":
        sub = spec.subfolder or "unet"
        files = [(f"{sub}/config.json",), _variant_files(sub, "diffusion_pytorch_model", "safetensors", fp16)]
        if spec.scheduler_from_repo:
            files.append(("scheduler/scheduler_config.json",))
        return Need(label, spec.repo, tuple(files), flags="--checkpoint")
    return None


def faceid_need(faceid_weight: str = FACEID_FILE) -> Need:
    if Path(faceid_weight).expanduser().is_file():
        p = Path(faceid_weight).expanduser()
        return Need("FaceID-Plus-v2 adapter", str(p.parent), ((p.name,),), flags="--faceid-weight")
    return Need("FaceID-Plus-v2 adapter", FACEID_ID, ((faceid_weight,),), flags="--faceid-weight")


def image_encoder_need(repo: str = IMAGE_ENCODER_ID) -> Need:
    return Need("CLIP ViT-H/14 image encoder", repo,
                (("config.json",), ("model.safetensors", "pytorch_model.bin")), flags="--weights-root")


def face_need(backend: str) -> Need | None:
    """The face models of a backend (skimage: none beyond scikit-image)."""
    if backend == "insightface":
        return Need("face models: insightface buffalo_l", "buffalo_l", tuple((f,) for f in BUFFALO_FILES),
                    kind="insightface", flags="--face-backend dlib (offline, 128-d: not the real adapter's "
                                              "512-d), --insightface-root")
    if backend == "dlib":
        from fastface.faces.dlib import DLIB_MODEL_FILES

        return Need("face models: dlib (face-recognition-models)", "face_recognition_models",
                    tuple((f,) for f in DLIB_MODEL_FILES), kind="dlib", flags="--face-backend insightface")
    return None


def generation_needs(checkpoints: Sequence[str], *, steps: int | None = None, fp16: bool = False,
                     base: str = BASE_ID, faceid_weight: str = FACEID_FILE,
                     image_encoder: str = IMAGE_ENCODER_ID, face_backend: str | None = "insightface") -> list[Need]:
    """Everything ``generate`` / ``capture`` load for these checkpoints, in loading order."""
    needs: list[Need] = []
    for name in checkpoints:
        spec = get_checkpoint(name)
        for need in (base_need(spec, base=base, fp16=fp16), checkpoint_need(spec, steps=steps, fp16=fp16)):
            if need is not None:
                needs.append(need)
    needs += [faceid_need(faceid_weight), image_encoder_need(image_encoder)]
    face = face_need(face_backend) if face_backend else None
    if face is not None:
        needs.append(face)
    return _merge(needs)


def _merge(needs: Iterable[Need]) -> list[Need]:
    """One Need per (component, repo): the base needed by several checkpoints is listed once, with
    the union of its files."""
    out: dict[tuple[str, str], Need] = {}
    for n in needs:
        key = (n.component, n.repo)
        if key in out:
            old = out[key]
            files = old.files + tuple(f for f in n.files if f not in old.files)
            out[key] = Need(old.component, old.repo, files, old.kind, old.flags)
        else:
            out[key] = n
    return list(out.values())


# --- where the files are ------------------------------------------------------------------
def cached_file(repo: str, filename: str, cache_dir=None) -> str | None:
    """The cached path of ``filename`` in ``repo`` (revision ``main``), or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, filename, cache_dir=str(hub_cache_dir(cache_dir)))
    except Exception:  # noqa: BLE001  an id that is no repo id (a local path) has no cache entry
        return None
    return found if isinstance(found, str) else None


def hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


class HubProbe:
    """File sizes on the Hub, asked once per repository; ``reachable`` turns False at the first
    connection error, so an offline machine spends one failed request, not one per file."""

    def __init__(self, enabled: bool = True):
        self.reachable: bool | None = None if enabled and not hub_offline() else False
        self.error = "HF_HUB_OFFLINE is set" if hub_offline() else "" if enabled else "not asked (--offline)"

    def sizes(self, repo: str, files: Sequence[str]) -> dict[str, int] | None:
        """{file: size} of the files that exist on the Hub; None when the Hub cannot be reached."""
        if self.reachable is False:
            return None
        from huggingface_hub import HfApi

        try:
            infos = HfApi().get_paths_info(repo, list(files))
        except Exception as e:  # noqa: BLE001
            name = type(e).__name__
            if "NotFound" in name or "Gated" in name or "Repository" in name or "401" in str(e) or "404" in str(e):
                self.reachable = True
                return {}
            self.reachable, self.error = False, f"{name}: {' '.join(str(e).split())[:160]}"
            return None
        self.reachable = True
        return {i.path: getattr(i, "size", None) for i in infos}


def insightface_roots(face_root=None, weights_root=None) -> list[Path]:
    """Where buffalo_l is looked for, in order (each holds ``models/buffalo_l``)."""
    from fastface.faces.insightface import insightface_home

    roots = []
    if face_root:
        roots.append(Path(face_root).expanduser())
    if weights_root:
        roots.append(Path(weights_root).expanduser() / "insightface")
    roots.append(insightface_home())
    return list(dict.fromkeys(roots))


def find_insightface_root(face_root=None, weights_root=None) -> Path | None:
    """The first of :func:`insightface_roots` that holds buffalo_l's files, or None."""
    for root in insightface_roots(face_root, weights_root):
        folder = root / "models" / "buffalo_l"
        if all((folder / f).is_file() for f in BUFFALO_FILES):
            return root
    return None


def insightface_root_for(face_root=None, weights_root=None) -> str | None:
    """The root to hand the insightface backend: where buffalo_l was found, else ``face_root`` as
    given (the backend's own message then names the folder it expected)."""
    found = find_insightface_root(face_root, weights_root)
    return str(found) if found is not None else face_root


def _resolve_face(need: Need, face_root, weights_root) -> Found:
    if need.kind == "insightface":
        roots = insightface_roots(face_root, weights_root)
        root = find_insightface_root(face_root, weights_root)
        looked = [str(r / "models" / "buffalo_l") for r in roots]
        if root is None:
            return Found(need, "missing", None, missing=list(need.files), looked=looked)
        folder = root / "models" / "buffalo_l"
        paths = {f[0]: str(folder / f[0]) for f in need.files}
        return Found(need, "local", str(folder), paths, {f: Path(p).stat().st_size for f, p in paths.items()},
                     looked=looked)
    from fastface.faces.base import FaceModelUnavailable
    from fastface.faces.dlib import _dlib_models

    try:
        folder = _dlib_models()
    except FaceModelUnavailable as e:
        return Found(need, "missing", None, missing=list(need.files), looked=[str(e)])
    paths = {f[0]: str(folder / f[0]) for f in need.files}
    return Found(need, "package", str(folder), paths, {f: Path(p).stat().st_size for f, p in paths.items()},
                 looked=[str(folder)])


def _pick(folder: Path, alts: tuple[str, ...]) -> str | None:
    return next((a for a in alts if (folder / a).is_file()), None)


def resolve_need(need: Need, *, weights_root=None, cache_dir=None, hub: HubProbe | None = None,
                 face_root=None) -> Found:
    """Find every file of one Need (see the module doc for the order)."""
    if need.kind in ("insightface", "dlib"):
        return _resolve_face(need, face_root, weights_root)
    looked: list[str] = []
    folders: list[tuple[str, Path]] = []
    local = Path(need.repo).expanduser()
    if local.is_dir():
        folders.append(("local", local))
    elif weights_root is not None:
        folders.append(("mirror", Path(weights_root).expanduser() / need.repo))
    for where, folder in folders:
        looked.append(str(folder))
        if not folder.is_dir():
            continue
        chosen = {alts: _pick(folder, alts) for alts in need.files}
        missing = [alts for alts, name in chosen.items() if name is None]
        paths = {name: str(folder / name) for name in chosen.values() if name}
        sizes = {name: Path(p).stat().st_size for name, p in paths.items()}
        # a local folder or a mirror folder that exists is authoritative: what it lacks is missing
        return Found(need, where, str(folder), paths, sizes, missing, looked)
    if local.is_dir() or "/" not in need.repo or need.repo.startswith((".", "/", "~")):
        return Found(need, "missing", None, missing=list(need.files), looked=looked or [need.repo])
    cache = hub_cache_dir(cache_dir)
    looked.append(f"Hugging Face cache {cache}")
    chosen, paths = {}, {}
    for alts in need.files:
        for name in alts:
            path = cached_file(need.repo, name, cache_dir)
            if path:
                chosen[alts], paths[name] = name, path
                break
    missing = [alts for alts in need.files if alts not in chosen]
    snapshot = cache_snapshot(need.repo, cache_dir)
    if not missing:
        return Found(need, "cache", str(snapshot) if snapshot else None, paths,
                     {n: Path(p).stat().st_size for n, p in paths.items()}, [], looked)
    hub = hub or HubProbe()
    on_hub = hub.sizes(need.repo, [a for alts in missing for a in alts])
    looked.append(f"the Hub ({need.repo})" + ("" if on_hub is not None else
                                              f": {hub.error}" if "not asked" in hub.error else
                                              f": unreachable, {hub.error}"))
    if on_hub is None:
        return Found(need, "missing", str(snapshot) if snapshot else None, paths, {}, missing, looked)
    still = []
    sizes: dict[str, int | None] = {n: Path(p).stat().st_size for n, p in paths.items()}
    for alts in missing:
        name = next((a for a in alts if a in on_hub), None)
        if name is None:
            still.append(alts)
        else:
            paths[name], sizes[name] = None, on_hub[name]
    return Found(need, "hub" if not still else "missing", str(snapshot) if snapshot else None, paths, sizes,
                 still, looked)


def resolve(needs: Sequence[Need], *, weights_root=None, cache_dir=None, face_root=None,
            online: bool = True, hub: HubProbe | None = None) -> list[Found]:
    """Every Need resolved; one :class:`HubProbe` (``hub``, else a new one) serves them all."""
    hub = hub or HubProbe(enabled=online)
    return [resolve_need(n, weights_root=weights_root, cache_dir=cache_dir, hub=hub, face_root=face_root)
            for n in needs]


# --- the report -----------------------------------------------------------------------------
def _where_to_put(need: Need, weights_root, cache_dir) -> str:
    if need.kind == "insightface":
        root = Path(weights_root).expanduser() / "insightface" if weights_root else Path("~/.insightface")
        return (f"put {', '.join(f[0] for f in need.files)} (from insightface's buffalo_l.zip) in "
                f"{root / 'models' / 'buffalo_l'}, or run `fastface weights download --face-backend insightface`")
    if need.kind == "dlib":
        return "pip install dlib-bin face-recognition-models"
    if Path(need.repo).expanduser().is_dir() or need.repo.startswith((".", "/", "~")):
        return f"put the file(s) in {need.repo}"
    target = (f"{Path(weights_root).expanduser() / need.repo}" if weights_root
              else f"the Hugging Face cache ({hub_cache_dir(cache_dir)})")
    return (f"`fastface weights download` puts them in {target}"
            + ("" if weights_root else f", or mirror the repo as <root>/{need.repo} and pass --weights-root"))


def missing_message(found: Sequence[Found], *, weights_root=None, cache_dir=None, command: str = "") -> str:
    """Every missing component, one bullet each: what, where it looked, where to put it, flags."""
    bad = [f for f in found if not f.ok]
    lines = [f"{command + ': ' if command else ''}{len(bad)} component(s) missing, nothing was loaded or written:"]
    for f in bad:
        files = ", ".join(" or ".join(alts) for alts in f.missing)
        if len(f.missing) == len(f.need.files) > 3:
            files = f"all {len(f.missing)} files ({', '.join(a[0] for a in f.missing[:3])}, ...)"
        lines.append(f"  - {f.need.component} [{f.need.repo}]: missing {files}; looked in {'; '.join(f.looked)}; "
                     f"{_where_to_put(f.need, weights_root, cache_dir)}"
                     + (f" (flags: {f.need.flags})" if f.need.flags else ""))
    return "\n".join(lines)


def preflight(needs: Sequence[Need], *, weights_root=None, cache_dir=None, face_root=None,
              command: str = "", online: bool = True) -> list[Found]:
    """Resolve every Need; raise WeightsMissing listing all missing ones (nothing loaded yet)."""
    found = resolve(needs, weights_root=weights_root, cache_dir=cache_dir, face_root=face_root, online=online)
    if any(not f.ok for f in found):
        raise WeightsMissing(missing_message(found, weights_root=weights_root, cache_dir=cache_dir, command=command))
    return found


def human_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def table(found: Sequence[Found]) -> list[str]:
    """The check table: one row per file (component, status, size, path)."""
    rows = [f"{'component':44s} {'status':8s} {'size':>9s}  file"]
    for f in found:
        for alts in f.need.files:
            name = next((a for a in alts if a in f.paths), None)
            if name is None:
                rows.append(f"{f.need.component[:44]:44s} {'MISSING':8s} {'':>9s}  {' or '.join(alts)}")
                continue
            path = f.paths[name]
            status = "hub" if path is None else f.where
            rows.append(f"{f.need.component[:44]:44s} {status:8s} {human_size(f.sizes.get(name)):>9s}  "
                        f"{path or f'{f.need.repo}/{name} (to download)'}")
    return rows


# --- download ------------------------------------------------------------------------------
def download_plan(found: Sequence[Found]) -> list[tuple[Need, str]]:
    """(need, file) still to fetch: preferred alternatives of what is not local."""
    plan = []
    for f in found:
        if f.need.kind == "dlib":
            continue
        if f.need.kind == "insightface":
            if f.missing:
                plan.append((f.need, "buffalo_l.zip"))
            continue
        for alts in f.need.files:
            name = next((a for a in alts if a in f.paths), None)
            if name is None or f.paths[name] is None:
                plan.append((f.need, name or alts[0]))
    return plan


def download(found: Sequence[Found], *, weights_root=None, cache_dir=None, face_root=None,
             log=print) -> int:
    """Fetch the plan's files (into ``weights_root/<repo>`` when given, else the HF cache);
    returns the number of files fetched. huggingface_hub shows a progress bar per file."""
    plan = download_plan(found)
    for i, (need, name) in enumerate(plan, 1):
        log(f"[{i}/{len(plan)}] {need.repo}/{name}")
        if need.kind == "insightface":
            # insightface's own download (GitHub release buffalo_l.zip -> <root>/models/buffalo_l); it
            # returns at once when the folder exists, even empty (a failed unzip leaves one): force then
            from insightface.utils.storage import download as insightface_download

            root = (Path(face_root) if face_root else
                    Path(weights_root) / "insightface" if weights_root else insightface_roots()[-1])
            folder = root.expanduser() / "models" / "buffalo_l"
            made = (folder.parent / "buffalo_l.zip", folder, folder.parent, folder.parent.parent)
            existed = {p for p in made if p.exists()}
            try:
                insightface_download("models", "buffalo_l", force=folder.exists(), root=str(root))
            except Exception as e:  # noqa: BLE001  offline, a bad zip: say where the files go, leave no empty folder
                for p in (p for p in made if p not in existed):
                    if p.is_file():
                        p.unlink()
                    elif p.is_dir() and not any(p.iterdir()):
                        p.rmdir()
                first = " ".join(str(e).split())[:200]
                raise RuntimeError(f"insightface's buffalo_l download failed ({type(e).__name__}: {first}); put "
                                   f"{', '.join(BUFFALO_FILES)} from buffalo_l.zip in {folder}") from e
            continue
        from huggingface_hub import hf_hub_download

        if weights_root:
            hf_hub_download(need.repo, name, local_dir=str(Path(weights_root).expanduser() / need.repo))
        else:
            hf_hub_download(need.repo, name, cache_dir=str(hub_cache_dir(cache_dir)))
    return len(plan)


def all_checkpoints() -> tuple[str, ...]:
    return tuple(n for n in CHECKPOINTS if n != "base")


def ensure_weights(checkpoints: Sequence[str], *, steps: int | None = None, fp16: bool = False, base: str = BASE_ID,
                   faceid_weight: str = FACEID_FILE, image_encoder: str = IMAGE_ENCODER_ID,
                   face_backend: str | None = "insightface", weights_root=None, cache_dir=None, face_root=None,
                   command: str = "", log=None) -> list[Found]:
    """The pre-flight of a command that loads these checkpoints: every file found locally, or
    fetched from the Hub first when it is only there; else :class:`WeightsMissing` (all at once)."""
    needs = generation_needs(checkpoints, steps=steps, fp16=fp16, base=base, faceid_weight=faceid_weight,
                             image_encoder=image_encoder, face_backend=face_backend)
    found = preflight(needs, weights_root=weights_root, cache_dir=cache_dir, face_root=face_root, command=command)
    if download_plan(found):
        import sys

        download(found, cache_dir=cache_dir, face_root=face_root,
                 log=log or (lambda text: print(f"downloading {text}", file=sys.stderr)))
    return found
