"""The files of downloaded checkpoints: which variant a local folder holds, whether a file is whole,
and whether it is the kind of file FastFace needs. Every refusal is one line naming the file and
the fix (a ``ValueError`` or ``FileNotFoundError``; the CLI prints it as is).

Kept apart from :mod:`fastface.models.checkpoints` (the registry and the loaders) so that each loader
stays a few lines; nothing here builds a pipeline.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

#: weight file stems of diffusers (``diffusion_pytorch_model``) and transformers models
_WEIGHTS = re.compile(
    r"^(diffusion_pytorch_model|model|pytorch_model)(\.(?P<variant>[a-z0-9]+))?(-\d{5}-of-\d{5})?\.(safetensors|bin)$"
)
_INDEX = re.compile(
    r"^(diffusion_pytorch_model|model|pytorch_model)\.(safetensors|bin)\.index(\.(?P<variant>[a-z0-9]+))?\.json$"
)
_NOT_MODELS = ("Tokenizer", "Scheduler", "Processor", "FeatureExtractor")


# --- local folders: configs and variants ---------------------------------------------------------
def require_file(path: Path, what: str, repo: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the folder {repo} is not a complete {what}; download that repository again "
            f"(or point --weights-root at a folder that mirrors the Hub, <root>/<org>/<name>/...)"
        )


def model_components(repo: Path) -> list[str]:
    """The weight-bearing components (subfolders) of a diffusers pipeline folder, from its model_index.json."""
    index = repo / "model_index.json"
    require_file(index, "diffusers pipeline folder", repo)
    data = json.loads(index.read_text())
    return [name for name, value in data.items()
            if isinstance(value, list) and len(value) == 2 and value[0] in ("diffusers", "transformers")
            and value[1] is not None and not any(s in value[1] for s in _NOT_MODELS)]


def weight_variants(folder: Path) -> set[str | None]:
    """The variants (None = the plain fp32 files, "fp16", ...) whose weight files ``folder`` holds."""
    found: set[str | None] = set()
    for p in folder.iterdir() if folder.is_dir() else ():
        m = _WEIGHTS.match(p.name) or _INDEX.match(p.name)
        if m:
            found.add(m.group("variant"))
    return found


def _expected(folder: Path) -> str:
    stem = "diffusion_pytorch_model" if (folder / "config.json").is_file() and "_class_name" in json.loads(
        (folder / "config.json").read_text()) else "model"
    return f"{stem}.safetensors or {stem}.fp16.safetensors"


def folder_variant(repo: Path, components: list[str], dtype: torch.dtype) -> str | None:
    """The ``variant`` to load ``components`` of a local folder with: ``"fp16"`` when float16 is
    wanted and fp16 files are there (diffusers falls back to the plain files per component that has
    none), else the plain files, or ``"fp16"`` where a component has only fp16 files (an fp16-only
    download). A component with no weights, or no config.json, is a one-line error."""
    found = {}
    for name in components:
        require_file(repo / name / "config.json", "checkpoint folder", repo)
        variants = weight_variants(repo / name)
        if not variants & {None, "fp16"}:
            raise FileNotFoundError(
                f"{repo / name} has no weights: expected {_expected(repo / name)}; download that repository again"
            )
        found[name] = variants
    if dtype == torch.float16:
        return "fp16" if any("fp16" in v for v in found.values()) else None
    return None if all(None in v for v in found.values()) else "fp16"


# --- whole files ----------------------------------------------------------------------------------
def read_state_dict(path: str | Path) -> dict:
    """A checkpoint file's state dict (safetensors or torch.save); a partial or corrupt file is a
    one-line ValueError naming it."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # SafetensorError, RuntimeError (zip), UnpicklingError, EOFError
        raise _partial(path, e) from e


def check_weights_file(path: str | Path) -> None:
    """Raise the one-line error of :func:`read_state_dict` for a partial safetensors file without
    reading its tensors (the header and the file size are checked)."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt"):
            pass
    except Exception as e:
        raise _partial(path, e) from e


def _first_line(e: BaseException, limit: int = 200) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:limit]


def _partial(path: Path, e: BaseException) -> ValueError:
    return ValueError(f"{path} is not a complete checkpoint file ({_first_line(e)}): it is partial or corrupt; "
                      "delete it and download it again")


def check_folder_weights(folder: Path, variant: str | None) -> None:
    """:func:`check_weights_file` on the safetensors files of ``variant`` in ``folder``."""
    for p in sorted(folder.glob("*.safetensors")):
        m = _WEIGHTS.match(p.name)
        if m and m.group("variant") == variant:
            check_weights_file(p)


# --- FaceID-Plus-v2 --------------------------------------------------------------------------------
PLUS_IMAGE_PROJ = ("proj.0.weight", "proj.2.weight", "norm.weight", "perceiver_resampler.proj_in.weight",
                   "perceiver_resampler.proj_out.weight", "perceiver_resampler.layers.0.0.to_q.weight")
FACEID_HINT = ("FastFace needs IP-Adapter FaceID-Plus-v2 for SDXL, ip-adapter-faceid-plusv2_sdxl.bin from "
               "h94/IP-Adapter-FaceID")


def nest_faceid(state: dict) -> dict:
    """A flat safetensors FaceID file (``image_proj.*``, ``ip_adapter.*``) as torch.save's nesting."""
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and k.startswith(("image_proj.", "ip_adapter.")) for k in state):
        return state
    out: dict = {"image_proj": {}, "ip_adapter": {}}
    for key, value in state.items():
        group, _, rest = key.partition(".")
        out[group][rest] = value
    return out


def check_faceid(state: dict, path: str | Path, unet) -> None:
    """Refuse (one line) a file that is not FaceID-Plus-v2 for this UNet: another adapter kind,
    or one made for another base model."""
    if not isinstance(state, dict) or not isinstance(state.get("image_proj"), dict) or not isinstance(
            state.get("ip_adapter"), dict):
        raise ValueError(f"{path} is not an IP-Adapter file (no image_proj / ip_adapter parts): {FACEID_HINT}")
    proj, ip = state["image_proj"], state["ip_adapter"]
    missing = [k for k in PLUS_IMAGE_PROJ if k not in proj]
    if missing:
        kind = ("a plain FaceID adapter (MLP projection, no perceiver_resampler)" if "proj.0.weight" in proj
                and "perceiver_resampler.proj_in.weight" not in proj else "another IP-Adapter kind")
        raise ValueError(f"{path} is {kind}, not FaceID-Plus-v2 (image_proj lacks {missing[0]}): {FACEID_HINT}")
    k_ip = sorted(k for k in ip if k.endswith(".to_k_ip.weight"))
    lora = [k for k in ip if "_lora." in k]
    n_cross = sum(1 for name in unet.attn_processors if name.endswith("attn2.processor"))
    if not lora:
        raise ValueError(f"{path} has no FaceID LoRA (ip_adapter has no *_lora.* keys): {FACEID_HINT}")
    dims = {tuple(ip[k].shape)[1] for k in k_ip}
    if len(k_ip) != n_cross or dims != {unet.config.cross_attention_dim}:
        raise ValueError(
            f"{path} is made for another base model: {len(k_ip)} cross-attention layers of width {sorted(dims)}, "
            f"this SDXL UNet has {n_cross} of width {unet.config.cross_attention_dim}: {FACEID_HINT}"
        )


# --- LoRAs -----------------------------------------------------------------------------------------
def check_lora(pipe, state: dict, path: str | Path, fix: str) -> None:
    """Refuse (one line) a LoRA whose UNet layers do not all exist in this UNet with these shapes
    (a LoRA for another base model, e.g. SD 1.5). ``state`` is the file's state dict (any format
    diffusers reads); ``fix`` says which file to give instead."""
    from diffusers.utils import convert_unet_state_dict_to_peft

    try:
        converted, _ = pipe.lora_state_dict(dict(state), unet_config=pipe.unet.config)
    except Exception as e:  # unknown key layout
        raise ValueError(f"{path} is not a LoRA diffusers can read ({_first_line(e)}): {fix}") from e
    unet_sd = {k[len("unet."):]: v for k, v in converted.items() if k.startswith("unet.")}
    if not unet_sd:
        raise ValueError(f"{path} has no UNet LoRA layers: {fix}")
    if not any("lora_A" in k for k in unet_sd):
        unet_sd = convert_unet_state_dict_to_peft(unet_sd)
    modules = dict(pipe.unet.named_modules())
    downs = {k.split(".lora_A")[0]: v for k, v in unet_sd.items() if ".lora_A" in k}
    bad = [name for name, down in downs.items() if not _fits(modules.get(name), down)]
    if bad:
        raise ValueError(
            f"{path} does not fit this SDXL UNet: {len(bad)} of its {len(downs)} LoRA layers name modules it does not "
            f"have or have other shapes (e.g. {bad[0]}); it is a LoRA for another base model: {fix}"
        )


def _fits(module, down: torch.Tensor) -> bool:
    if isinstance(module, torch.nn.Linear):
        return down.ndim == 2 and down.shape[1] == module.in_features
    if isinstance(module, torch.nn.Conv2d):
        return down.ndim == 4 and down.shape[1] == module.in_channels
    return False


# --- the CLIP image encoder ----------------------------------------------------------------------
def load_image_encoder(path: str, *, dtype: torch.dtype, cache_dir: str | None = None):
    """``CLIPVisionModelWithProjection`` from a bare vision folder or a full ``CLIPModel`` repo
    (laion's): for a CLIPModel config (``model_type`` "clip") the vision projection takes the
    top-level ``projection_dim`` (its ``vision_config`` may lack it, and transformers' default 512
    would then not fit the checkpoint)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    if Path(path).is_dir():
        require_file(Path(path) / "config.json", "CLIP image encoder folder", Path(path))
    config_dict, _ = CLIPVisionConfig.get_config_dict(path, cache_dir=cache_dir)
    config = CLIPVisionConfig.from_pretrained(path, cache_dir=cache_dir)
    if config_dict.get("model_type") != "clip":
        return CLIPVisionModelWithProjection.from_pretrained(path, config=config, dtype=dtype, cache_dir=cache_dir)
    if config_dict.get("projection_dim"):
        config.projection_dim = int(config_dict["projection_dim"])
    # the text tower's weights are expected to be left out: say so instead of a 20-line report
    cls, before = CLIPVisionModelWithProjection, CLIPVisionModelWithProjection._keys_to_ignore_on_load_unexpected
    cls._keys_to_ignore_on_load_unexpected = [*(before or []), *_TEXT_TOWER]
    try:
        return cls.from_pretrained(path, config=config, dtype=dtype, cache_dir=cache_dir)
    finally:
        cls._keys_to_ignore_on_load_unexpected = before


_TEXT_TOWER = (r"^text_model\.", r"^text_projection\.", r"^logit_scale$")
