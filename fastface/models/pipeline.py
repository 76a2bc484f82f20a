"""FastFace assembled on diffusers' ``StableDiffusionXLPipeline``.

The stock ``__call__`` can only host two CFG branches (it ``chunk(2)``s the UNet output), so
this module runs one small denoising loop over the pipeline's own parts (``encode_prompt``,
``prepare_latents``, ``_get_add_time_ids``, ``encode_image``, scheduler, VAE) and
:mod:`fastface.method.guidance` for the three-branch DCG batch. Per step it runs exactly the
branches whose output matters (:func:`fastface.method.guidance.required_branches`) in one batched
UNet call.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from fastface.models.checkpoints import (
    BASE_ID, FACEID_FILE, CheckpointSpec, default_device, default_dtype, get_checkpoint,
    load_faceid, load_sdxl, set_lora_scale,
)
from fastface.method.config import FastFaceConfig, schedule_at
from fastface.method.guidance import LAYOUTS, BranchLayout, combine_branches, required_branches
from fastface.method.processor import AttentionObserver, StepContext, fastface_sites, install_processors

#: the channel orders in which the aligned ID crop can reach the CLIP image encoder
CROP_ORDERS = ("bgr", "rgb")

for _name in ("diffusers", "transformers"):
    logging.getLogger(_name).setLevel(logging.ERROR)


@dataclass
class Identity:
    """The conditioning of one ID photo (METHOD.md section 2)."""

    id_embed: torch.Tensor  # [1, D] face embedding (buffalo_l: 512, normed)
    clip_embeds: torch.Tensor  # [1, 1, N, C] CLIP penultimate hidden states of the aligned crop
    clip_negative: torch.Tensor  # [1, 1, N, C] the same for a zero image
    face: object | None = None  # fastface.faces.base.Face of the reference photo
    name: str = ""
    crop: np.ndarray | None = None  # the aligned 224x224 crop


@dataclass
class GenerationResult:
    image: object  # PIL.Image
    seed: int | None
    steps: int
    height: int
    width: int
    layouts: list[BranchLayout] = field(default_factory=list)
    unet_rows: int = 0
    seconds: float = 0.0
    unet_seconds: float = 0.0
    latents: object = None  # torch.Tensor: the final latents before decoding (on the pipeline's device and dtype)


class FastFacePipeline:
    """SDXL + a distilled checkpoint + FaceID-Plus-v2 + FastFace processors."""

    def __init__(self, pipe, checkpoint: CheckpointSpec, *, analyzer=None, resolution: int | None = None,
                 crop_order: str = "bgr"):
        if crop_order not in CROP_ORDERS:
            raise ValueError(f"crop_order={crop_order!r}: give one of {', '.join(CROP_ORDERS)}")
        self.pipe = pipe
        self.checkpoint = checkpoint
        self.analyzer = analyzer
        self.resolution = resolution or checkpoint.resolution
        self.crop_order = crop_order
        self.context = StepContext()
        self._original_processors = install_processors(pipe.unet, self.context)
        self.sites = fastface_sites(pipe.unet)
        self._scales: tuple[float, float] | None = None
        proj = pipe.unet.encoder_hid_proj.image_projection_layers[0]
        self.id_dim = proj.proj.net[0].proj.in_features

    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.unet.dtype

    # --- conditioning ------------------------------------------------------------------
    def encode_identity(self, photo, *, name: str | None = None, on_multiple: str = "error") -> Identity:
        """Detect, embed and align the face of an ID photo (path or RGB array)."""
        from fastface.faces.align import align_face
        from fastface.faces.photos import reference_face

        if self.analyzer is None:
            raise RuntimeError("this pipeline has no face analyzer: load it with a face backend (--face-backend "
                               "insightface|dlib, load_pipeline(face_backend=...))")
        image, face = reference_face(self.analyzer, photo, on_multiple=on_multiple, name=name, need_embedding=True)
        emb = np.asarray(face.embedding, dtype=np.float32)
        if emb.shape[-1] != self.id_dim:
            raise ValueError(
                f"the face backend {self.analyzer.name!r} gives {emb.shape[-1]}-d embeddings but the adapter "
                f"expects {self.id_dim}-d: use the backend the adapter was trained with "
                f"({'insightface' if self.id_dim == 512 else 'dlib'})"
            )
        crop = align_face(image, face.kps, image_size=224)
        return self.identity_from_arrays(emb, crop, face=face, name=name or str(photo if isinstance(photo, (str, Path)) else ""))

    @torch.no_grad()
    def identity_from_arrays(self, embedding: np.ndarray, crop: np.ndarray, *, face=None, name: str = "") -> Identity:
        """The conditioning of an embedding and an aligned RGB crop. The crop reaches the CLIP image
        encoder in ``self.crop_order``: ``"bgr"`` (the default on real weights) as the authors'
        release (``get_faceid_embeds``: ``norm_crop`` of the cv2 image), the diffusers IP-Adapter
        guide and the IP-Adapter README do, i.e. the BGR pixels read as RGB; ``"rgb"`` as the
        offline worlds were trained."""
        from PIL import Image

        shown = np.ascontiguousarray(crop[:, :, ::-1]) if self.crop_order == "bgr" else crop
        pos, neg = self.pipe.encode_image(Image.fromarray(shown), self.device, 1, output_hidden_states=True)
        id_embed = torch.as_tensor(embedding, dtype=self.dtype, device=self.device).reshape(1, -1)
        return Identity(id_embed, pos.unsqueeze(1).to(self.dtype), neg.unsqueeze(1).to(self.dtype), face, name, crop)

    def _set_scales(self, ip_scale: float, lora_scale: float) -> None:
        if self._scales != (ip_scale, lora_scale):
            self.pipe.set_ip_adapter_scale(ip_scale)
            set_lora_scale(self.pipe, lora_scale)
            self._scales = (ip_scale, lora_scale)

    # --- generation ----------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompt: str,
        identity: Identity,
        config: FastFaceConfig,
        *,
        seed: int | None = 0,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        height: int | None = None,
        width: int | None = None,
        observers: Sequence[AttentionObserver] = (),
        full_batch: bool = False,
        lowercase: bool = True,
        on_step: Callable[[int, int], None] | None = None,
    ) -> GenerationResult:
        """Generate one image. ``full_batch`` forces all three DCG branches at every step
        (e.g. to probe maps of every branch); otherwise only the branches that matter run."""
        pipe, spec = self.pipe, self.checkpoint
        start = time.perf_counter()
        num_steps = steps or spec.steps
        config.validate_for_steps(num_steps)
        guidance = config.guidance.resolved(spec.guidance_scale)
        height = height or self.resolution
        width = width or self.resolution
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed or 0))
        self._set_scales(config.ip_scale, config.lora_scale)
        prompt = prompt.lower() if lowercase else prompt

        pe, npe, ppe, nppe = pipe.encode_prompt(
            prompt=prompt, device=self.device, num_images_per_prompt=1, do_classifier_free_guidance=True,
            negative_prompt="",
        )
        proj_dim = pipe.text_encoder_2.config.projection_dim
        time_ids = pipe._get_add_time_ids((height, width), (0, 0), (height, width), dtype=pe.dtype,
                                          text_encoder_projection_dim=proj_dim).to(self.device)
        zero_id = torch.zeros_like(identity.id_embed)
        rows = {  # per branch: (text embeds, pooled, id embed, clip embeds)
            b.name: (pe if b.text else npe, ppe if b.text else nppe,
                     identity.id_embed if b.identity else zero_id,
                     identity.clip_embeds if b.identity else identity.clip_negative)
            for b in LAYOUTS[guidance.variant]
        }
        pipe.scheduler.set_timesteps(num_steps, device=self.device)
        timesteps = pipe.scheduler.timesteps
        if hasattr(pipe.scheduler, "set_begin_index"):
            pipe.scheduler.set_begin_index(0)
        latents = pipe.prepare_latents(1, pipe.unet.config.in_channels, height, width, pe.dtype, self.device,
                                       generator)
        extra = pipe.prepare_extra_step_kwargs(generator, 0.0)
        proj = pipe.unet.encoder_hid_proj.image_projection_layers[0]
        proj.shortcut = True  # FaceID-Plus v2
        ctx = self.context
        ctx.am, ctx.observers, ctx.num_steps = config.am, list(observers), num_steps
        ctx.prompt = prompt
        ctx.latent_hw = (latents.shape[-2], latents.shape[-1])
        result = GenerationResult(None, seed, num_steps, height, width)
        try:
            for i, t in enumerate(timesteps):
                a = schedule_at(guidance.alpha, i, num_steps, "guidance.alpha")
                b = schedule_at(guidance.beta, i, num_steps, "guidance.beta")
                coupled = full_batch or (config.am.kind == "am2" and config.am.am2.normalization == "batch"
                                         and any(config.am.applies(p, i) for p in config.am.parts))
                active = required_branches(guidance.variant, a, b, rescale=guidance.rescale, batch_coupled=coupled)
                layout = BranchLayout(guidance.variant, active, rows=1)
                ctx.step, ctx.timestep, ctx.layout = i, float(t), layout
                conds = [rows[name] for name in layout.names]
                k = len(conds)
                latent_in = pipe.scheduler.scale_model_input(torch.cat([latents] * k), t)
                proj.clip_embeds = torch.cat([c[3] for c in conds])
                u0 = time.perf_counter()
                out = pipe.unet(
                    latent_in, t,
                    encoder_hidden_states=torch.cat([c[0] for c in conds]),
                    added_cond_kwargs={
                        "text_embeds": torch.cat([c[1] for c in conds]),
                        "time_ids": time_ids.repeat(k, 1),
                        "image_embeds": [torch.cat([c[2] for c in conds]).unsqueeze(1)],
                    },
                    return_dict=False,
                )[0]
                result.unet_seconds += time.perf_counter() - u0
                result.unet_rows += k
                result.layouts.append(layout)
                preds = dict(zip(active, out.chunk(k)))
                noise = combine_branches(preds, a, b, variant=guidance.variant, rescale=guidance.rescale,
                                         rescale_mode=guidance.rescale_mode)
                latents = pipe.scheduler.step(noise, t, latents, **extra, return_dict=False)[0]
                if on_step is not None:
                    on_step(i, num_steps)
        finally:
            proj.clip_embeds = None
            ctx.observers = []
        result.latents = latents.detach()
        result.image = self.decode(latents)
        result.seconds = time.perf_counter() - start
        return result

    def decode(self, latents: torch.Tensor):
        vae = self.pipe.vae
        upcast = vae.dtype == torch.float16 and vae.config.force_upcast
        if upcast:
            vae.to(torch.float32)
        z = latents.to(vae.dtype) / vae.config.scaling_factor
        image = vae.decode(z, return_dict=False)[0]
        if upcast:
            vae.to(torch.float16)
        return self.pipe.image_processor.postprocess(image, output_type="pil")[0]

    def restore_processors(self) -> None:
        """Put diffusers' IP-Adapter processors back (undo the FastFace install)."""
        self.pipe.unet.set_attn_processor(self._original_processors)


def load_pipeline(
    checkpoint: str = "hyper",
    *,
    tiny: bool = False,
    weights_root: str | Path | None = None,
    base: str = BASE_ID,
    faceid_weight: str = FACEID_FILE,
    cache_dir: str | None = None,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    steps: int | None = None,
    face_backend: str | None = None,
    face_root: str | None = None,
    tiny_seed: int = 0,
    world: str = "random",
    crop_order: str | None = None,
    check_weights: bool = True,
) -> FastFacePipeline:
    """Load a full FastFace pipeline: real weights by Hub id/local path, or (``tiny=True``) an
    offline world: ``world="random"`` the tiny random-weight world, ``world="face"`` the trained
    face world (:mod:`fastface.models.faceworld`; 64x64 for every checkpoint).

    On real weights the face backend defaults to insightface (buffalo_l, the paper's) and the ID
    crop reaches the image encoder in BGR order as in the authors' release (``crop_order``); before
    anything loads, :func:`fastface.models.weights.ensure_weights` finds every file (``weights_root``,
    the Hugging Face cache, the Hub when online: missing files on the Hub are downloaded first)
    and raises :class:`fastface.models.weights.WeightsMissing` naming all that is missing."""
    spec = get_checkpoint(checkpoint)
    resolution = None
    if world not in ("random", "face"):
        raise ValueError(f"world={world!r}: give 'random' (the tiny random-weight world) or 'face' (the trained "
                         "face world)")
    if tiny:
        from fastface.models.tiny import build_tiny_world, tiny_resolution

        if world == "face":
            from fastface.models.faceworld.scenes import SIZE
            from fastface.models.faceworld.world import build_face_world

            weights_root = build_face_world() if weights_root is None else weights_root
            resolution = SIZE
        else:
            weights_root = build_tiny_world(seed=tiny_seed) if weights_root is None else weights_root
            resolution = tiny_resolution(spec.resolution)
        device = device or "cpu"
        face_backend = face_backend or "dlib"
        crop_order = crop_order or "rgb"  # as the offline worlds were trained
    else:
        face_backend = face_backend or "insightface"
        crop_order = crop_order or "bgr"
    device = device or default_device()
    dtype = dtype or default_dtype(device)
    backend = None if face_backend == "none" else face_backend
    if not tiny and check_weights:
        from fastface.models.weights import ensure_weights

        ensure_weights([spec.name], steps=steps, fp16=dtype == torch.float16, base=base, faceid_weight=faceid_weight,
                       face_backend=backend, weights_root=weights_root, cache_dir=cache_dir, face_root=face_root)
    if backend == "insightface":
        from fastface.models.weights import insightface_root_for

        face_root = insightface_root_for(face_root, None if tiny else weights_root)
    pipe = load_sdxl(spec, steps=steps, base=base, weights_root=weights_root, cache_dir=cache_dir,
                     device=device, dtype=dtype)
    load_faceid(pipe, weight_name=faceid_weight, weights_root=weights_root, cache_dir=cache_dir)
    analyzer = None
    if backend is not None:
        from fastface.faces.photos import make_analyzer

        analyzer = make_analyzer(backend, device=device, root=face_root)
    return FastFacePipeline(pipe, spec, analyzer=analyzer, resolution=resolution, crop_order=crop_order)
