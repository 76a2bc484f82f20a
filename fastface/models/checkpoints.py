"""Registry and loaders of the SDXL checkpoints FastFace runs on (METHOD.md section 1).

Every model reference is a Hugging Face Hub id (e.g. ``ByteDance/Hyper-SD``) that may also
be given as a local path. A ``weights_root`` folder that mirrors the Hub layout
(``<root>/<org>/<name>/...``) is searched first: this is how the offline tiny world (see
:mod:`fastface.models.tiny`) and air-gapped GPU servers feed the *same* loading code.
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from fastface.models.checkpoint_files import (
    check_faceid, check_folder_weights, check_lora, folder_variant, load_image_encoder, model_components,
    nest_faceid, read_state_dict, require_file, weight_variants,
)

BASE_ID = "stabilityai/stable-diffusion-xl-base-1.0"
FACEID_ID = "h94/IP-Adapter-FaceID"
FACEID_FILE = "ip-adapter-faceid-plusv2_sdxl.bin"
IMAGE_ENCODER_ID = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"


@dataclass(frozen=True)
class CheckpointSpec:
    """How one (distilled) SDXL model is obtained and sampled."""

    name: str
    apply: str  # "base" | "lora" (fused into the UNet) | "unet_file" | "unet_folder"
    repo: str
    weight_name: str | None = None  # may contain {steps} / {steps_suffix}
    subfolder: str | None = None
    scheduler: str = "EulerDiscreteScheduler"
    scheduler_kwargs: dict[str, Any] = field(default_factory=dict)
    scheduler_from_repo: bool = False  # take the scheduler config from ``repo`` (Turbo)
    steps: int = 4
    allowed_steps: tuple[int, ...] | None = None
    resolution: int = 1024
    guidance_scale: float = 1.0  # a = b for the baseline presets
    lora_fuse_scale: float = 1.0
    description: str = ""

    def weight_file(self, steps: int) -> str | None:
        if self.weight_name is None:
            return None
        if self.allowed_steps is not None and steps not in self.allowed_steps:
            raise ValueError(
                f"checkpoint {self.name!r} is released for {list(self.allowed_steps)} steps, not {steps}; "
                f"pass --steps with one of those"
            )
        return self.weight_name.format(steps=steps, steps_suffix="step" if steps == 1 else "steps")

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


CHECKPOINTS: dict[str, CheckpointSpec] = {
    "base": CheckpointSpec(
        name="base", apply="base", repo=BASE_ID, scheduler="EulerDiscreteScheduler",
        steps=50, resolution=1024, guidance_scale=5.0,
        description="SDXL 1.0 base, multi-step (50 steps, CFG 5.0)",
    ),
    "hyper": CheckpointSpec(
        name="hyper", apply="lora", repo="ByteDance/Hyper-SD",
        weight_name="Hyper-SDXL-{steps}{steps_suffix}-lora.safetensors", allowed_steps=(1, 2, 4, 8),
        # clip_sample False as in SDXL base's scheduler config (DDIM's default True would clip
        # latent x0 to [-1, 1]); explicit, so that a base config without the key behaves the same
        scheduler="DDIMScheduler", scheduler_kwargs={"timestep_spacing": "trailing", "clip_sample": False},
        steps=4, resolution=1024, guidance_scale=1.0,
        description="Hyper-SDXL n-step LoRA fused into the base UNet; DDIM, trailing spacing",
    ),
    "lightning": CheckpointSpec(
        name="lightning", apply="unet_file", repo="ByteDance/SDXL-Lightning",
        weight_name="sdxl_lightning_{steps}step_unet.safetensors", allowed_steps=(2, 4, 8),
        scheduler="EulerDiscreteScheduler", scheduler_kwargs={"timestep_spacing": "trailing"},
        steps=4, resolution=1024, guidance_scale=1.0,
        description="SDXL-Lightning full n-step UNet; Euler, trailing spacing",
    ),
    "lcm": CheckpointSpec(
        name="lcm", apply="lora", repo="latent-consistency/lcm-lora-sdxl",
        weight_name="pytorch_lora_weights.safetensors", scheduler="LCMScheduler",
        steps=4, resolution=1024, guidance_scale=1.5,
        description="LCM-LoRA SDXL fused into the base UNet; LCMScheduler, guidance 1.5",
    ),
    "turbo": CheckpointSpec(
        name="turbo", apply="unet_folder", repo="stabilityai/sdxl-turbo", subfolder="unet",
        scheduler="EulerAncestralDiscreteScheduler", scheduler_from_repo=True,
        steps=4, resolution=512, guidance_scale=1.0,
        description="SDXL-Turbo full UNet with its own Euler-ancestral scheduler, 512x512",
    ),
}


def get_checkpoint(name: str) -> CheckpointSpec:
    if name not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {name!r}; choose one of {', '.join(CHECKPOINTS)}")
    return CHECKPOINTS[name]


# --- locating files ---------------------------------------------------------------------
def resolve_repo(repo: str, weights_root: str | os.PathLike | None = None, *, cache_dir=None,
                 use_cache: bool = False) -> str:
    """A Hub id or a local folder: a local path wins, then ``weights_root/<repo>``, then (with
    ``use_cache``) the repo's ``main`` snapshot in the Hugging Face cache, else the id.

    The loaders pass ``use_cache=True``: :func:`fastface.models.weights.ensure_weights` has made sure the
    snapshot holds every file they read (fetching what only the Hub had), so a cached model loads
    from its folder, its variant read from the files, with no request to the Hub."""
    if Path(repo).expanduser().is_dir():
        return str(Path(repo).expanduser())
    if weights_root is not None:
        candidate = Path(weights_root).expanduser() / repo
        if candidate.exists():
            return str(candidate)
    if use_cache:
        snapshot = cache_snapshot(repo, cache_dir)
        if snapshot is not None:
            return str(snapshot)
    return repo


def hub_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The Hugging Face cache folder (``cache_dir``, else ``$HF_HUB_CACHE`` / the default)."""
    from huggingface_hub import constants

    return Path(cache_dir or constants.HF_HUB_CACHE).expanduser()


def cache_snapshot(repo: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The snapshot folder of ``repo``'s ``main`` revision in the Hugging Face cache, if any."""
    if "/" not in repo or repo.startswith((".", "/", "~")):
        return None
    folder = hub_cache_dir(cache_dir) / ("models--" + repo.replace("/", "--"))
    ref = folder / "refs" / "main"
    if not ref.is_file():
        return None
    snap = folder / "snapshots" / ref.read_text().strip()
    return snap if snap.is_dir() else None


def resolve_file(
    repo: str, filename: str, *, subfolder: str | None = None,
    weights_root: str | os.PathLike | None = None, cache_dir: str | None = None,
) -> str:
    """Local path of ``filename`` in ``repo``: from a local folder, or downloaded from the Hub."""
    if Path(filename).expanduser().is_file():
        return str(Path(filename).expanduser())
    base = resolve_repo(repo, weights_root, cache_dir=cache_dir, use_cache=True)
    if Path(base).is_dir():
        path = Path(base, subfolder or "", filename)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the folder {base} has no {filename}")
        return str(path)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(base, filename, subfolder=subfolder, cache_dir=cache_dir)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str | torch.device) -> torch.dtype:
    """fp16 on CUDA, fp32 elsewhere."""
    return torch.float16 if str(device).startswith("cuda") else torch.float32


def make_scheduler(spec: CheckpointSpec, base_config: dict, *, weights_root=None, cache_dir=None):
    """The scheduler of a checkpoint, configured from the base's (or its own repo's) config."""
    import diffusers

    cls = getattr(diffusers, spec.scheduler)
    if spec.scheduler_from_repo:
        repo = resolve_repo(spec.repo, weights_root, cache_dir=cache_dir, use_cache=True)
        if Path(repo).is_dir():
            require_file(Path(repo, "scheduler", "scheduler_config.json"), "checkpoint folder", Path(repo))
        return cls.from_pretrained(repo, subfolder="scheduler", cache_dir=cache_dir)
    return cls.from_config(base_config, **spec.scheduler_kwargs)


#: The one transformers (>= 5) message dropped while diffusers' SDXL pipeline is imported.
TORCHVISION_FALLBACK = "requires torchvision (not installed); falling back to"


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


@contextmanager
def quiet_torchvision_fallback():
    """Importing diffusers' SDXL pipeline runs ``from transformers import CLIPImageProcessor,
    SiglipImageProcessor`` (its IP-Adapter loader); without torchvision (not a requirement here)
    transformers >= 5 then warns once per class that it falls back to ``CLIPImageProcessorPil``.
    That PIL processor is the classic CLIP preprocessing (what ``CLIPImageProcessor`` was before
    transformers 5, and what the pipeline uses on the ID crop in ``encode_image``): the fallback
    is what we want, so exactly that message is dropped for the duration of the block; every
    other transformers message is kept."""
    logger = logging.getLogger("transformers.utils.import_utils")
    drop = _DropMessage(TORCHVISION_FALLBACK)
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _variant(repo: str, dtype: torch.dtype, *, components: list[str] | None = None,
             skip: tuple[str, ...] = ()) -> str | None:
    """The ``variant`` to load ``repo`` with: for a Hub id "fp16" when float16 is wanted; for a
    local folder what its files allow (:func:`fastface.models.checkpoint_files.folder_variant`), after
    checking that its configs are there and its safetensors files are whole."""
    if not Path(repo).is_dir():
        return "fp16" if dtype == torch.float16 else None
    folder = Path(repo)
    if components is None:
        components = [c for c in model_components(folder) if c not in skip]
        require_file(folder / "scheduler" / "scheduler_config.json", "diffusers pipeline folder", folder)
    variant = folder_variant(folder, components, dtype)
    for name in components:
        # diffusers loads a component's plain files where it has none of the variant
        check_folder_weights(folder / name, variant if variant in weight_variants(folder / name) else None)
    return variant


def _unet_from_file(spec: CheckpointSpec, steps: int, base_path: str, *, dtype, weights_root, cache_dir):
    """A full-UNet checkpoint file (Lightning) in the base UNet's architecture."""
    from diffusers import UNet2DConditionModel

    if Path(base_path).is_dir():
        require_file(Path(base_path) / "unet" / "config.json", "SDXL base folder", Path(base_path))
    config = UNet2DConditionModel.load_config(base_path, subfolder="unet", cache_dir=cache_dir)
    unet = UNet2DConditionModel.from_config(config).to(dtype)
    path = resolve_file(spec.repo, spec.weight_file(steps), weights_root=weights_root, cache_dir=cache_dir)
    try:
        unet.load_state_dict(read_state_dict(path))
    except RuntimeError as e:
        raise ValueError(
            f"{path} does not fit the SDXL UNet of {base_path} ({str(e).strip().splitlines()[0][:160]}): "
            f"give {spec.weight_file(steps)} from {spec.repo}"
        ) from e
    return unet


def load_sdxl(
    checkpoint: str | CheckpointSpec = "hyper",
    *,
    steps: int | None = None,
    base: str = BASE_ID,
    weights_root: str | os.PathLike | None = None,
    cache_dir: str | None = None,
    device: str | None = None,
    dtype: torch.dtype | None = None,
):
    """Build a ``StableDiffusionXLPipeline`` for a registry checkpoint.

    LoRA checkpoints (Hyper, LCM) are fused into the base UNet and their LoRA layers removed;
    full-UNet checkpoints (Lightning, Turbo) replace the base UNet; the scheduler is set as
    the checkpoint prescribes.
    """
    with quiet_torchvision_fallback():
        from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel

    spec = get_checkpoint(checkpoint) if isinstance(checkpoint, str) else checkpoint
    steps = steps or spec.steps
    device = device or default_device()
    dtype = dtype or default_dtype(device)
    base_path = resolve_repo(base, weights_root, cache_dir=cache_dir, use_cache=True)
    own_unet = spec.apply in ("unet_file", "unet_folder")
    kwargs: dict[str, Any] = {"dtype": dtype, "cache_dir": cache_dir}
    variant = _variant(base_path, dtype, skip=("unet",) if own_unet else ())
    if variant:
        kwargs["variant"] = variant

    if spec.apply == "unet_file":
        kwargs["unet"] = _unet_from_file(spec, steps, base_path, dtype=dtype, weights_root=weights_root,
                                         cache_dir=cache_dir)
    elif spec.apply == "unet_folder":
        repo = resolve_repo(spec.repo, weights_root, cache_dir=cache_dir, use_cache=True)
        ukw = {"variant": v} if (v := _variant(repo, dtype, components=[spec.subfolder])) else {}
        kwargs["unet"] = UNet2DConditionModel.from_pretrained(
            repo, subfolder=spec.subfolder, dtype=dtype, cache_dir=cache_dir, **ukw
        )
    pipe = StableDiffusionXLPipeline.from_pretrained(base_path, **kwargs)
    if spec.apply == "lora":
        path = resolve_file(spec.repo, spec.weight_file(steps), weights_root=weights_root, cache_dir=cache_dir)
        state = read_state_dict(path)
        check_lora(pipe, state, path, f"give {spec.weight_file(steps)} from {spec.repo} (an SDXL LoRA)")
        pipe.load_lora_weights(state, adapter_name=spec.name)
        pipe.fuse_lora(adapter_names=[spec.name], lora_scale=spec.lora_fuse_scale)
        pipe.unload_lora_weights()
    pipe.scheduler = make_scheduler(spec, pipe.scheduler.config, weights_root=weights_root, cache_dir=cache_dir)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def load_faceid(
    pipe,
    *,
    repo: str = FACEID_ID,
    weight_name: str = FACEID_FILE,
    image_encoder: str = IMAGE_ENCODER_ID,
    weights_root: str | os.PathLike | None = None,
    cache_dir: str | None = None,
    ip_scale: float = 0.8,
    lora_scale: float = 1.0,
):
    """Load IP-Adapter FaceID-Plus-v2 through diffusers' ``load_ip_adapter`` (which also
    loads its LoRA as adapter ``faceid_0``) and the CLIP ViT-H image encoder."""
    if Path(weight_name).is_file():  # a direct file path
        path = weight_name
    else:
        path = resolve_file(repo, weight_name, weights_root=weights_root, cache_dir=cache_dir)
    state = nest_faceid(read_state_dict(path))
    check_faceid(state, path, pipe.unet)
    pipe.load_ip_adapter(state, subfolder=None, weight_name=Path(path).name, image_encoder_folder=None)
    encoder = load_image_encoder(
        resolve_repo(image_encoder, weights_root, cache_dir=cache_dir, use_cache=True), dtype=pipe.unet.dtype,
        cache_dir=cache_dir
    ).to(pipe.device)
    pipe.register_modules(image_encoder=encoder)
    pipe.set_ip_adapter_scale(ip_scale)
    set_lora_scale(pipe, lora_scale)
    return pipe


def set_lora_scale(pipe, lora_scale: float) -> None:
    """Weight of the FaceID LoRA (adapter ``faceid_0``)."""
    if "faceid_0" not in pipe.get_list_adapters().get("unet", []):
        raise RuntimeError("adapter 'faceid_0' is not loaded: install peft and load FaceID-Plus-v2 first")
    pipe.set_adapters(["faceid_0"], adapter_weights=[float(lora_scale)])
