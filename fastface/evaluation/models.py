"""Where evaluation models come from, and the version string recorded with every value.

Every model is named by its Hugging Face Hub id (or a local path).  A ``weights_root`` folder
that mirrors the Hub (``<root>/<org>/<name>/...``, as :func:`fastface.models.checkpoints.resolve_repo`
reads it) is searched first; without a local copy the files are downloaded from the Hub.

The version recorded in ``MetricRecord.model`` is ``"<hub id or path>@<sha8>"`` where ``sha8``
is the first 8 hex digits of a SHA-1 over the model's weight (and config) files: content
addressed, so the same weights give the same string whether they came from the Hub cache, a
mirror or a copy, and different weights (a new revision, the tiny world) never share one.
Hashes are cached per (path, size, mtime) in ``$FASTFACE_CACHE/file-sha1.json``.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from fastface.models.checkpoints import resolve_repo

#: OpenAI CLIP preprocessing (ViT-L/14 and ImageReward's BLIP use the same constants)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_LOCK = threading.Lock()
_MEMO: dict[tuple, str] = {}


class ModelUnavailable(RuntimeError):
    """The files of an evaluation model cannot be found or downloaded; the message says where
    they must go and how to leave the metric out."""


def _cache_file() -> Path:
    root = Path(os.environ.get("FASTFACE_CACHE", Path.home() / ".cache" / "fastface"))
    return root / "file-sha1.json"


def _file_sha1(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
    cache_path = _cache_file()
    disk: dict = {}
    with contextlib.suppress(OSError, ValueError):
        disk = json.loads(cache_path.read_text())
    ckey = f"{key[0]}|{key[1]}|{key[2]}"
    digest = disk.get(ckey)
    if digest is None:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        digest = h.hexdigest()
        disk[ckey] = digest
        with contextlib.suppress(OSError):  # a read-only home only costs a re-hash next time
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(disk))
            os.replace(tmp, cache_path)
    with _LOCK:
        _MEMO[key] = digest
    return digest


def files_sha8(paths: Iterable[str | os.PathLike], extra: str = "") -> str:
    """First 8 hex digits of SHA-1 over (file name, file SHA-1) of each file, in order, plus
    ``extra`` (e.g. a library version)."""
    h = hashlib.sha1()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0" + _file_sha1(p).encode() + b"\0")
    h.update(extra.encode())
    return h.hexdigest()[:8]


def model_string(label: str, paths: Sequence[str | os.PathLike], extra: str = "") -> str:
    """``"<label>@<sha8>"``: the MetricRecord.model of a value computed with these files."""
    return f"{label}@{files_sha8(paths, extra)}"


def local_dir(repo: str, *, weights_root=None, cache_dir=None, allow_patterns: Sequence[str] | None = None,
              what: str = "", metric_key: str = "") -> Path:
    """A local folder with the files of ``repo`` (a local path, ``weights_root/<repo>``, or a
    Hub snapshot download)."""
    found = resolve_repo(repo, weights_root)
    if Path(found).is_dir():
        return Path(found)
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, allow_patterns=list(allow_patterns) if allow_patterns else None,
                                      cache_dir=cache_dir))
    except Exception as e:  # noqa: BLE001  offline, gated, unknown id: one clear message
        raise ModelUnavailable(_missing_message(repo, what, weights_root, e, metric_key)) from e


def local_file(repo: str, filename: str, *, weights_root=None, cache_dir=None, what: str = "",
               metric_key: str = "") -> Path:
    """A local path of ``filename`` in ``repo`` (local folder, mirror, or Hub download)."""
    if Path(filename).expanduser().is_file():
        return Path(filename).expanduser()
    found = resolve_repo(repo, weights_root)
    if Path(found).is_dir():
        p = Path(found) / filename
        if not p.is_file():
            raise ModelUnavailable(f"{what or repo}: {p} not found (the folder {found} has no {filename})"
                                   + _drop_hint(metric_key))
        return p
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename, cache_dir=cache_dir))
    except Exception as e:  # noqa: BLE001
        raise ModelUnavailable(_missing_message(f"{repo}/{filename}", what, weights_root, e, metric_key)) from e


def _drop_hint(metric_key: str) -> str:
    return f"; or leave the metric out (--metrics without '{metric_key}')" if metric_key else ""


def first_sentences(text: str, limit: int = 400) -> str:
    """The start of an error message on one line, never cut inside a sentence: whole
    sentences up to ``limit`` characters (at least the first one, whatever its length)."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    import re

    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", flat)]
    fitting = [e for e in ends if e <= limit]
    if fitting:
        return flat[:fitting[-1]]
    return flat[:ends[0]] if ends else flat


def _missing_message(ref: str, what: str, weights_root, error: Exception, metric_key: str) -> str:
    where = (f"under --weights-root {weights_root} (as {Path(weights_root) / ref})" if weights_root
             else "(no --weights-root given)")
    detail = first_sentences(str(error)) if str(error) else ""
    return (f"{what or ref}: not found {where}, and the Hub download failed "
            f"({type(error).__name__}: {detail}). "
            f"Put the files in a folder that mirrors the Hub (<root>/{ref}) and pass --weights-root"
            + _drop_hint(metric_key))


def check_device(device: str | None, flag: str = "--device") -> None:
    """A one-line error for a CUDA device this machine cannot use (instead of torch's
    ``AssertionError: Torch not compiled with CUDA enabled`` traceback)."""
    if not device or not str(device).startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        why = ("this torch build has no CUDA" if torch.version.cuda is None
               else "no GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)")
        raise ModelUnavailable(f"{flag} {device}: CUDA is not available on this machine ({why}; "
                               f"torch {torch.__version__}); use {flag} cpu")
    if ":" in str(device):
        index = str(device).split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ModelUnavailable(f"{flag} {device}: no such GPU here ({torch.cuda.device_count()} visible: "
                                   f"cuda:0..cuda:{torch.cuda.device_count() - 1})")


def first_existing(repos: Sequence[str], weights_root) -> str:
    """The first of ``repos`` present locally (path or mirror), else the last one (the Hub)."""
    for r in repos:
        if Path(resolve_repo(r, weights_root)).exists():
            return r
    return repos[-1]


# --- preprocessing -----------------------------------------------------------------------
def preprocessor_settings(folder: str | os.PathLike | None) -> dict:
    """size / crop / mean / std from a model folder's ``preprocessor_config.json`` (CLIP's
    defaults when there is none)."""
    out = {"size": 224, "crop": 224, "mean": CLIP_MEAN, "std": CLIP_STD}
    if folder is None:
        return out
    f = Path(folder) / "preprocessor_config.json"
    if not f.is_file():
        return out
    cfg = json.loads(f.read_text())
    size = cfg.get("size", 224)
    if isinstance(size, dict):
        size = size.get("shortest_edge") or size.get("height") or 224
    crop = cfg.get("crop_size", size)
    if isinstance(crop, dict):
        crop = crop.get("height") or size
    out.update(size=int(size), crop=int(crop), mean=tuple(cfg.get("image_mean", CLIP_MEAN)),
               std=tuple(cfg.get("image_std", CLIP_STD)))
    return out


def clip_preprocess(image, size: int = 224, crop: int | None = None, mean=CLIP_MEAN, std=CLIP_STD) -> np.ndarray:
    """OpenAI CLIP's (and ImageReward's) transform, without torchvision: resize the shorter side
    to ``size`` with PIL bicubic (longer side ``int(size * long / short)``), centre-crop
    ``crop`` (offsets ``int(round((H - crop) / 2))``), RGB, [0, 1], normalise.  Returns a float32
    [3, crop, crop] array.  ``image``: PIL image or HxWx3 uint8 array."""
    from PIL import Image

    crop = crop or size
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    w, h = im.size
    if w <= h:
        new_w, new_h = size, int(size * h / w)
    else:
        new_w, new_h = int(size * w / h), size
    if (new_w, new_h) != (w, h):
        im = im.resize((new_w, new_h), Image.BICUBIC)
    top = int(round((new_h - crop) / 2.0))
    left = int(round((new_w - crop) / 2.0))
    im = im.crop((left, top, left + crop, top + crop)).convert("RGB")
    x = np.asarray(im, dtype=np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def load_state_dict(path: str | os.PathLike) -> dict:
    """A state dict from a .safetensors file or a torch pickle (tensors only: weights_only)."""
    import torch

    p = Path(path)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise ModelUnavailable(f"{p}: not a loadable tensor state dict ({type(e).__name__}: {e})") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ModelUnavailable(f"{p}: expected a state dict, found {type(sd).__name__}")
    return sd
