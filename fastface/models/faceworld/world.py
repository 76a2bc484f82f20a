"""The face world's sizes, its shipped weights and how they become a Hub-layout world.

The trained weights ship in ``weights/face_world.safetensors`` (float16, one file, prefixes
``unet.``, ``vae.``, ``text_encoder.``, ``text_encoder_2.``, ``image_encoder.``,
``faceid.image_proj.``, ``faceid.ip_adapter.``) with ``weights/face_world.json`` (sizes,
VAE scaling factor, prediction type, training settings and measured figures).
:func:`build_face_world` writes them in the *real* checkpoints' layouts through
:func:`fastface.models.tiny.build_tiny_world`, so the pipeline loads them with the same loaders
(``load_sdxl``, ``load_ip_adapter``) as SDXL and FaceID-Plus-v2. No training is needed to load.

The FaceID-Plus-v2 file keeps the real file's keys. :func:`adapter_key_map` finds, for a UNet
that ``load_ip_adapter`` has loaded, which diffusers parameter each key of the file became
(by value: every tensor of a probe file is distinct random data), so trained parameters are
written back under the real keys without re-implementing diffusers' conversion.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "face_world.safetensors"
META_FILE = WEIGHTS_DIR / "face_world.json"
FACE_WORLD_VERSION = 1
ID_DIM = 128  # dlib's face embedding
# Widths of the face world (SDXL's block structure and 17 decoupled sites, as the tiny world).
UNET_SIZES = {"block_out_channels": (32, 96, 128), "attention_head_dim": (2, 4, 4), "norm_num_groups": 16}
VAE_SIZES = {"block_out_channels": (16, 32), "norm_num_groups": 8, "mid_block_add_attention": False}
PARTS = ("unet", "vae", "text_encoder", "text_encoder_2", "image_encoder")


class FaceWorldMissing(FileNotFoundError):
    """The shipped weights are not there; the message says how to rebuild them."""


def shipped_meta(weights: Path = WEIGHTS_FILE) -> dict:
    meta = weights.with_suffix(".json")
    if not meta.is_file() or not weights.is_file():
        raise FaceWorldMissing(
            f"face world weights not found at {weights}: reinstall fastface-workbench from the repository, "
            "or rebuild them with `fastface face-world --train` (under 3 hours on 2 CPU cores)")
    return json.loads(meta.read_text())


def default_root(weights: Path = WEIGHTS_FILE) -> Path:
    cache = Path(os.environ.get("FASTFACE_CACHE", Path.home() / ".cache" / "fastface"))
    from fastface.models.tiny import TINY_VERSION

    return cache / f"face-world-v{FACE_WORLD_VERSION}-l{TINY_VERSION}-{weights_digest(weights)[:12]}"


def weights_digest(path: Path = WEIGHTS_FILE) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def trained_spec(weights: dict[str, dict[str, torch.Tensor]], meta: dict) -> dict:
    """What :func:`fastface.models.tiny.build_tiny_world` needs to write a trained world."""
    return {
        "weights": weights, "unet_sizes": _tuples(meta["unet_sizes"]), "vae_sizes": _tuples(meta["vae_sizes"]),
        "vae_scaling_factor": meta["vae_scaling_factor"], "prediction_type": meta["prediction_type"],
    }


def _tuples(d: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


def load_weights(path: Path = WEIGHTS_FILE) -> dict[str, dict[str, torch.Tensor]]:
    """The shipped file as {part: state dict} in float32; ``faceid`` as {image_proj, ip_adapter}."""
    from safetensors.torch import load_file

    flat = load_file(str(path))
    out: dict[str, dict] = {p: {} for p in PARTS}
    out["faceid"] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        part, rest = key.split(".", 1)
        value = value.float()
        if part == "faceid":
            group, name = rest.split(".", 1)
            out["faceid"][group][name] = value
        else:
            out[part][rest] = value
    return out


def save_weights(weights: dict, meta: dict, path: Path = WEIGHTS_FILE, meta_path: Path = META_FILE) -> None:
    """Write {part: state dict} as one float16 safetensors file plus the JSON metadata."""
    from safetensors.torch import save_file

    flat = {}
    for part, sd in weights.items():
        if part == "faceid":
            for group, gsd in sd.items():
                flat.update({f"faceid.{group}.{k}": v for k, v in gsd.items()})
        else:
            flat.update({f"{part}.{k}": v for k, v in sd.items()})
    flat = {k: v.detach().to(torch.float16).contiguous() for k, v in flat.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(flat, str(path))
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def build_face_world(root: str | os.PathLike | None = None, *, weights: str | os.PathLike = WEIGHTS_FILE,
                     force: bool = False) -> Path:
    """Write the trained face world (``weights``: the shipped file, or another training's output)
    in the Hub layouts under ``root`` (default: a cache folder named after the weights' digest)
    and return ``root``. Idempotent: a complete world of the same weights is reused."""
    from fastface.models.tiny import TINY_VERSION, build_tiny_world

    weights = Path(weights)
    meta = shipped_meta(weights)
    root = Path(root) if root is not None else default_root(weights)
    marker = {"world": "face", "version": FACE_WORLD_VERSION, "layout": TINY_VERSION,
              "weights_sha256": weights_digest(weights)}
    if (root / "tiny_world.json").is_file() and not force:
        if json.loads((root / "tiny_world.json").read_text()) == marker:
            return root
    return build_tiny_world(root, seed=meta.get("seed", 0), id_dim=ID_DIM, force=True,
                            trained=trained_spec(load_weights(weights), meta), meta=marker)


# --- the FaceID-Plus-v2 key map -----------------------------------------------------------
def randomised(state: dict, seed: int) -> dict:
    """The same keys and shapes with distinct random values (a probe file for :func:`adapter_key_map`)."""
    g = torch.Generator().manual_seed(seed)
    return {group: {k: torch.randn(v.shape, generator=g) * 0.05 for k, v in part.items()}
            for group, part in state.items()}


def adapter_key_map(unet, probe: dict) -> dict[str, tuple[str, ...]]:
    """{"image_proj.<key>" | "ip_adapter.<key>": diffusers parameter names} for a UNet into which
    ``probe`` (see :func:`randomised`) was loaded by ``load_ip_adapter``. One name: the tensor
    itself; two names: the file's tensor is their concatenation along dim 0 (the resampler's
    ``to_kv``, split by diffusers into ``to_k`` and ``to_v``)."""
    params = dict(unet.named_parameters())
    by_shape: dict[tuple, list[str]] = {}
    for name, p in params.items():
        by_shape.setdefault(tuple(p.shape), []).append(name)

    def find(t: torch.Tensor) -> str | None:
        for name in by_shape.get(tuple(t.shape), []):
            if torch.equal(params[name].detach().float().cpu(), t):
                return name
        return None

    out: dict[str, tuple[str, ...]] = {}
    for group, part in probe.items():
        for key, value in part.items():
            name = find(value)
            if name is not None:
                out[f"{group}.{key}"] = (name,)
                continue
            halves = [find(h) for h in value.chunk(2, dim=0)]
            if None in halves:
                raise RuntimeError(f"face world: no UNet parameter holds the adapter tensor {group}.{key}")
            out[f"{group}.{key}"] = tuple(halves)
    return out


def export_adapter(unet, key_map: dict[str, tuple[str, ...]]) -> dict:
    """The trained adapter in the real FaceID-Plus-v2 layout {image_proj, ip_adapter}."""
    params = dict(unet.named_parameters())
    out: dict[str, dict] = {"image_proj": {}, "ip_adapter": {}}
    for full, names in key_map.items():
        group, key = full.split(".", 1)
        tensors = [params[n].detach().float().cpu() for n in names]
        out[group][key] = tensors[0].clone() if len(tensors) == 1 else torch.cat(tensors, dim=0)
    return out


def export_base_unet(unet, template) -> dict:
    """The UNet's own weights (no adapter, no LoRA) as a state dict that ``template`` (a fresh
    UNet of the same sizes) loads strictly."""
    params = {k: v for k, v in unet.state_dict().items()}
    out = {}
    for key in template.state_dict():
        if key in params:
            out[key] = params[key].detach().float().cpu().clone()
            continue
        stem, leaf = key.rsplit(".", 1)
        wrapped = f"{stem}.base_layer.{leaf}"  # peft-wrapped linear (the FaceID LoRA)
        if wrapped not in params:
            raise RuntimeError(f"face world: the trained UNet has no weight for {key}")
        out[key] = params[wrapped].detach().float().cpu().clone()
    template.load_state_dict(out)
    return out
