"""The tiny world: random-weight models laid out exactly like the real checkpoints.

:func:`build_tiny_world` writes, under one folder that mirrors the Hub (``<org>/<name>/...``):

- ``stabilityai/stable-diffusion-xl-base-1.0``: an SDXL-architecture pipeline
  (``save_pretrained`` layout): a tiny UNet with the ``text_time`` addition embedding and
  SDXL's block structure (cross-attention in down_blocks.1-2, mid_block, up_blocks.0-1), two
  CLIP text encoders, a VAE, offline CLIP tokenizers built from an in-memory vocabulary;
- ``ByteDance/Hyper-SD/Hyper-SDXL-4steps-lora.safetensors`` and
  ``latent-consistency/lcm-lora-sdxl/pytorch_lora_weights.safetensors``: LoRA files
  (diffusers format) for ``load_lora_weights``;
- ``ByteDance/SDXL-Lightning/sdxl_lightning_4step_unet.safetensors``: a full UNet state dict;
- ``stabilityai/sdxl-turbo``: ``unet/`` and ``scheduler/`` subfolders;
- ``h94/IP-Adapter-FaceID/ip-adapter-faceid-plusv2_sdxl.bin`` (and ``.safetensors``): a
  FaceID-Plus-v2 checkpoint with exactly the real file's keys (``image_proj`` = ProjPlusModel
  with its FacePerceiverResampler, ``ip_adapter`` = ``{i}.to_k_ip``/``to_v_ip`` for every
  cross-attention and ``{i}.to_{q,k,v,out}_lora.{down,up}`` for every attention processor);
- ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``: a tiny ``CLIPVisionModelWithProjection``.

The pipeline then loads these through the same loaders as the real weights
(:func:`fastface.models.checkpoints.load_sdxl`, :func:`fastface.models.checkpoints.load_faceid`) with
``weights_root`` pointing at the folder. Everything is deterministic from the seed. The ID
embedding size defaults to 128 so that the offline dlib face embedder can condition it; the
real adapter takes buffalo_l's 512-d embedding.

What the tiny world is not: its images are noise-like and carry no identity; it exists to run
every code path (loading, DCG, AM, probes, store, workbench) end to end on a CPU.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from fastface.models.checkpoints import BASE_ID, FACEID_FILE, FACEID_ID, IMAGE_ENCODER_ID

TINY_VERSION = 2  # 2: the base scheduler carries SDXL's full config (clip_sample False)
TINY_SCALE = 16  # tiny images are resolution // 16 (64 px for SDXL's 1024, 32 px for Turbo's 512)
CROSS_DIM = 64  # 32 + 32 (two text encoders); a multiple of 64 as the FaceID resampler needs
TEXT_DIM = 32
VISION_DIM = 32


def default_root(seed: int = 0, id_dim: int = 128) -> Path:
    cache = Path(os.environ.get("FASTFACE_CACHE", Path.home() / ".cache" / "fastface"))
    return cache / f"tiny-v{TINY_VERSION}-seed{seed}-id{id_dim}"


def tiny_resolution(resolution: int) -> int:
    return max(resolution // TINY_SCALE, 16)


def _vocab() -> dict[str, int]:
    chars = [chr(c) for c in range(33, 127)]
    tokens = ["<|startoftext|>", "<|endoftext|>"] + chars + [c + "</w>" for c in chars]
    return {t: i for i, t in enumerate(tokens)}


def tiny_tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=_vocab(), merges=[], model_max_length=77)


# The tiny UNet: SDXL's block structure (17 decoupled cross-attention sites) at toy widths.
TINY_UNET = {"block_out_channels": (32, 64, 64), "attention_head_dim": (2, 4, 4), "norm_num_groups": 8}
TINY_VAE = {"block_out_channels": (16, 32), "norm_num_groups": 8}


def tiny_unet(seed: int, sizes: dict | None = None):
    """A UNet with SDXL's structure; ``sizes`` overrides the widths (:data:`TINY_UNET`)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        mid_block_type="UNetMidBlock2DCrossAttn",
        transformer_layers_per_block=(1, 1, 2),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + TEXT_DIM,
        cross_attention_dim=CROSS_DIM,
        **{**TINY_UNET, **(sizes or {})},
    )


def _text_encoders(seed: int):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = CLIPTextConfig(
        hidden_size=TEXT_DIM, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=len(_vocab()) + 8, max_position_embeddings=77, projection_dim=TEXT_DIM,
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_act="gelu",
    )
    torch.manual_seed(seed + 1)
    te1 = CLIPTextModel(cfg)
    torch.manual_seed(seed + 2)
    te2 = CLIPTextModelWithProjection(cfg)
    return te1, te2


def tiny_vae(seed: int, sizes: dict | None = None):
    """A two-level AutoencoderKL (factor 2, 4 latent channels); ``sizes`` overrides :data:`TINY_VAE`."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed + 3)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64, **{**TINY_VAE, **(sizes or {})},
    )


#: SDXL 1.0 base's ``scheduler/scheduler_config.json``. Its DDPM-family keys matter: a DDIM or
#: LCM scheduler made ``from_config`` of it (Hyper, LCM) reads ``clip_sample`` (default True:
#: x0 clipped to [-1, 1], which distorts latents) and ``set_alpha_to_one`` from here.
SDXL_SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
    "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "timestep_spacing": "leading", "trained_betas": None, "use_karras_sigmas": False,
}


def base_scheduler(prediction_type: str = "epsilon"):
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler.from_config({**SDXL_SCHEDULER_CONFIG, "prediction_type": prediction_type})


def _save_lora(unet: "torch.nn.Module", lora_seed: int, folder: Path, weight_name: str, *, scale: float = 0.1) -> None:
    """A LoRA file (diffusers format) for ``unet``'s layout; ``scale=0`` writes a no-op LoRA."""
    from diffusers import StableDiffusionXLPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = copy.deepcopy(unet)
    torch.manual_seed(lora_seed)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                init_lora_weights=False))
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.mul_(scale)
    state = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionXLPipeline.save_lora_weights(folder, unet_lora_layers=state, weight_name=weight_name,
                                                safe_serialization=True)


def faceid_plusv2_state_dict(unet, *, id_dim: int, clip_dim: int, seed: int, lora_rank: int = 4) -> dict:
    """A FaceID-Plus-v2 state dict with the real file's key names for ``unet``'s layout."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, std=0.05):
        return torch.randn(*shape, generator=g) * std

    d = unet.config.cross_attention_dim  # ProjPlusModel: cross_attention_dim = resampler dim
    heads, dim_head, tokens = d // 64, 64, 4
    inner = heads * dim_head
    proj = {
        "proj.0.weight": rnd(id_dim * 2, id_dim), "proj.0.bias": rnd(id_dim * 2),
        "proj.2.weight": rnd(d * tokens, id_dim * 2), "proj.2.bias": rnd(d * tokens),
        "norm.weight": torch.ones(d), "norm.bias": torch.zeros(d),
        "perceiver_resampler.proj_in.weight": rnd(d, clip_dim), "perceiver_resampler.proj_in.bias": rnd(d),
        "perceiver_resampler.proj_out.weight": rnd(d, d), "perceiver_resampler.proj_out.bias": rnd(d),
        "perceiver_resampler.norm_out.weight": torch.ones(d), "perceiver_resampler.norm_out.bias": torch.zeros(d),
    }
    for i in range(4):  # FacePerceiverResampler depth 4: [PerceiverAttention, FeedForward]
        p = f"perceiver_resampler.layers.{i}."
        proj.update({
            p + "0.norm1.weight": torch.ones(d), p + "0.norm1.bias": torch.zeros(d),
            p + "0.norm2.weight": torch.ones(d), p + "0.norm2.bias": torch.zeros(d),
            p + "0.to_q.weight": rnd(inner, d), p + "0.to_kv.weight": rnd(inner * 2, d),
            p + "0.to_out.weight": rnd(d, inner),
            p + "1.0.weight": torch.ones(d), p + "1.0.bias": torch.zeros(d),
            p + "1.1.weight": rnd(d * 4, d), p + "1.3.weight": rnd(d, d * 4),
        })
    ip = {}
    for key_id, (name, module) in enumerate(_attention_modules(unet)):
        hidden = module.to_q.in_features
        ctx = module.to_k.in_features
        for lin, (din, dout) in {"to_q": (hidden, hidden), "to_k": (ctx, hidden), "to_v": (ctx, hidden),
                                 "to_out": (hidden, hidden)}.items():
            ip[f"{key_id}.{lin}_lora.down.weight"] = rnd(lora_rank, din, std=0.02)
            ip[f"{key_id}.{lin}_lora.up.weight"] = rnd(dout, lora_rank, std=0.02)
        if name.endswith("attn2"):
            ip[f"{key_id}.to_k_ip.weight"] = rnd(hidden, d, std=0.2)
            ip[f"{key_id}.to_v_ip.weight"] = rnd(hidden, d, std=0.2)
    return {"image_proj": proj, "ip_adapter": ip}


def _attention_modules(unet):
    """(site, Attention) in the order of ``unet.attn_processors`` (the adapter's key ids)."""
    modules = dict(unet.named_modules())
    return [(k[: -len(".processor")], modules[k[: -len(".processor")]]) for k in unet.attn_processors]


def build_tiny_world(root: str | os.PathLike | None = None, *, seed: int = 0, id_dim: int = 128,
                     force: bool = False, trained: dict | None = None, meta: dict | None = None) -> Path:
    """Write the tiny world under ``root`` (default: a cache folder) and return ``root``.

    Idempotent: an existing complete world (marker file written last, equal ``meta``) is reused.
    ``trained``/``meta``: the face world's sizes and weights and its identity (see
    :func:`fastface.models.faceworld.world.build_face_world`).
    """
    root = Path(root) if root is not None else default_root(seed, id_dim)
    meta = meta or {"version": TINY_VERSION, "seed": seed, "id_dim": id_dim}
    return write_once(root, "tiny_world.json", meta, lambda tmp: _write_world(tmp, seed=seed, id_dim=id_dim,
                                                                               trained=trained), force=force)


def write_once(root: Path, marker_name: str, meta: dict, write, *, force: bool = False) -> Path:
    """Write a folder of model files once: ``write(tmp)`` fills a temporary sibling folder, the
    marker file (``meta`` as JSON) is written last and the folder renamed into place, so an
    interrupted build is never taken for a complete one. An existing folder whose marker equals
    ``meta`` is reused (unless ``force``)."""
    marker = root / marker_name
    if marker.exists() and not force and json.loads(marker.read_text()) == meta:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        write(tmp)
        (tmp / marker_name).write_text(json.dumps(meta))
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _write_world(root: Path, *, seed: int, id_dim: int, trained: dict | None = None) -> None:
    """Write a world. ``trained`` (the face world, :mod:`fastface.models.faceworld.world`) gives sizes,
    trained state dicts and settings; without it every weight is random from ``seed``."""
    from diffusers import EulerAncestralDiscreteScheduler, StableDiffusionXLPipeline
    from safetensors.torch import save_file
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    trained = trained or {}
    weights = trained.get("weights", {})
    te1, te2 = _text_encoders(seed)
    unet = tiny_unet(seed, trained.get("unet_sizes"))
    vae = tiny_vae(seed, trained.get("vae_sizes"))
    if "vae_scaling_factor" in trained:
        vae.register_to_config(scaling_factor=float(trained["vae_scaling_factor"]))
    for module, key in ((te1, "text_encoder"), (te2, "text_encoder_2"), (unet, "unet"), (vae, "vae")):
        if key in weights:
            module.load_state_dict(weights[key])
    scheduler = base_scheduler(trained.get("prediction_type", "epsilon"))
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tiny_tokenizer(),
        tokenizer_2=tiny_tokenizer(), unet=unet, scheduler=scheduler,
    )
    pipe.save_pretrained(root / BASE_ID)

    # distilled checkpoints: random LoRAs / UNets, or (trained world) the trained UNet itself
    lora_scale = 0.0 if trained else 0.1
    _save_lora(unet, seed + 10, root / "ByteDance/Hyper-SD", "Hyper-SDXL-4steps-lora.safetensors", scale=lora_scale)
    _save_lora(unet, seed + 11, root / "latent-consistency/lcm-lora-sdxl", "pytorch_lora_weights.safetensors",
               scale=lora_scale)
    lightning = root / "ByteDance/SDXL-Lightning"
    lightning.mkdir(parents=True)
    light = unet if trained else tiny_unet(seed + 20)
    save_file({k: v.contiguous() for k, v in light.state_dict().items()},
              lightning / "sdxl_lightning_4step_unet.safetensors")
    turbo = root / "stabilityai/sdxl-turbo"
    (unet if trained else tiny_unet(seed + 30)).save_pretrained(turbo / "unet")
    EulerAncestralDiscreteScheduler.from_config(scheduler.config, timestep_spacing="trailing").save_pretrained(
        turbo / "scheduler")

    torch.manual_seed(seed + 40)
    vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=VISION_DIM, intermediate_size=37, num_attention_heads=4, num_hidden_layers=3,
        image_size=224, patch_size=32, projection_dim=VISION_DIM, hidden_act="gelu",
    ))
    if "image_encoder" in weights:
        vision.load_state_dict(weights["image_encoder"])
    vision.save_pretrained(root / IMAGE_ENCODER_ID)

    sd = weights.get("faceid") or faceid_plusv2_state_dict(unet, id_dim=id_dim, clip_dim=VISION_DIM, seed=seed + 50)
    faceid = root / FACEID_ID
    faceid.mkdir(parents=True)
    torch.save(sd, faceid / FACEID_FILE)
    flat = {f"{group}.{k}": v.contiguous() for group, part in sd.items() for k, v in part.items()}
    save_file(flat, faceid / FACEID_FILE.replace(".bin", ".safetensors"))
