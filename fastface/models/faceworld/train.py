"""Reproducible training of the face world (``fastface face-world --train``), offline, on CPU.

1. The autoencoder (a two-level ``AutoencoderKL``, factor 2) learns to reconstruct 64x64
   scenes (:mod:`fastface.models.faceworld.scenes`); its latent scale is measured afterwards.
2. A random world with the face world's sizes is written in the real layouts and loaded with
   :func:`fastface.models.pipeline.load_pipeline`, so the UNet trains with FaceID-Plus-v2 loaded by
   ``load_ip_adapter`` exactly as at inference (decoupled attention, ``faceid_0`` LoRA,
   FacePerceiver projection with the v2 shortcut).
3. UNet, adapter (``to_k_ip``/``to_v_ip``, projection, LoRA) and both text encoders train
   jointly on v-prediction with condition dropout (text and ID dropped independently, so every
   DCG branch eps(0,0), eps(text,0), eps(0,id), eps(text,id) is trained) and a random IP-adapter
   scale per step; an EMA of the weights is exported.
4. The export writes the base UNet, the adapter in the real file's keys, the text encoders, the
   (frozen, random) CLIP vision tower and the autoencoder as one float16 file.

From step ``refine_from`` on, training refines (:mod:`fastface.models.faceworld.refine`): timesteps
near the 4-step samplers', a face-weighted loss, an attention-localisation loss on the ID
tokens and a cosine learning-rate decay. Faces are never mirrored (``mirror_faces=False``): each
identity comes from one photo, and a condition that does not say which way a face looks makes a
few-step sampler draw a blend of the face and its mirror image. After the UNet, the autoencoder's
decoder is fine-tuned with a face-weighted loss (:func:`fastface.models.faceworld.refine.refine_decoder`;
the encoder, and so the UNet's latent space, stays fixed).

These phases are stage 1 of the recipe, on the smaller faces of scene geometry ``"first"``;
stage 2 (:mod:`fastface.models.faceworld.stages`) trains its export on the world's final, larger faces.

Everything is seeded; on the same machine and thread count two runs give the same weights.
Checkpoints in ``workdir`` let an interrupted run resume.
"""
from __future__ import annotations

import contextlib
import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fastface.models.faceworld import refine, scenes
from fastface.models.faceworld import world as fw


@dataclass(frozen=True)
class TrainSettings:
    seed: int = 0
    ae_steps: int = 700
    unet_steps: int = 4800
    batch: int = 16
    lr: float = 4e-4
    ae_lr: float = 1e-3
    warmup: int = 200
    ema: float = 0.998
    drop_text: float = 0.15
    drop_id: float = 0.15
    ip_scale_min: float = 0.6
    threads: int = 2
    checkpoint_every: int = 250
    max_minutes: float = 0.0  # 0: no limit; else stop (and export) after this long
    # refinement phase (steps >= refine_from): see fastface.models.faceworld.refine
    refine_from: int = 3000
    refine_lr_floor: float = 0.1
    face_weight: float = 2.0
    loc_weight: float = 0.05
    sampler_t_share: float = 0.5
    # mirror the pasted faces at random (half of the scenes); False draws every face as in its photo
    mirror_faces: bool = False
    # after the UNet: decoder fine-tuning (see fastface.models.faceworld.refine.refine_decoder); 0 skips it
    dec_steps: int = 1000
    dec_lr: float = 3e-4
    dec_face_weight: float = 4.0
    # stage 2 (see train_stage2): the final, larger faces; 0 UNet steps: stage 1 is the whole recipe
    stage2_unet_steps: int = 2000
    stage2_lr: float = 1.5e-4
    stage2_decoder_steps: int = 500

    def __post_init__(self):
        for name in ("ae_steps", "unet_steps", "batch", "threads", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainSettings.{name} must be >= 1")
        if not 0 <= self.drop_text < 1 or not 0 <= self.drop_id < 1:
            raise ValueError("TrainSettings.drop_text/drop_id must be in [0, 1)")
        if self.dec_steps < 0 or self.dec_lr <= 0 or self.dec_face_weight < 0:
            raise ValueError("TrainSettings: dec_steps and dec_face_weight must be >= 0 and dec_lr > 0")
        if self.stage2_unet_steps < 0 or self.stage2_decoder_steps < 0 or self.stage2_lr <= 0:
            raise ValueError("TrainSettings: stage2_unet_steps and stage2_decoder_steps must be >= 0 and "
                             "stage2_lr > 0")
        if self.refine_from < 0 or not 0 <= self.sampler_t_share <= 1 or self.face_weight < 0 or self.loc_weight < 0:
            raise ValueError("TrainSettings: refine_from, face_weight, loc_weight must be >= 0 and "
                             "sampler_t_share in [0, 1]")


def _progress(total: int, desc: str, initial: int = 0):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="it", dynamic_ncols=True)


FIRST, FINAL = "first", "final"  # the scene geometries of stage 1 and stage 2 (scenes.PASTE)


# --- 1. autoencoder -------------------------------------------------------------------------
def train_autoencoder(s: TrainSettings, workdir: Path):
    from fastface.models.tiny import tiny_vae

    path = workdir / "vae.pt"
    vae = tiny_vae(s.seed, fw.VAE_SIZES)
    if path.is_file():
        state = torch.load(path)
        vae.load_state_dict(state["vae"])
        return vae, state["scaling"]
    rng = np.random.default_rng(s.seed + 1)
    torch.manual_seed(s.seed + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=s.ae_lr, weight_decay=0.0)
    bar = _progress(s.ae_steps, "autoencoder")
    for step in range(s.ae_steps):
        x = torch.from_numpy(scenes.batch(rng, s.batch, geometry=FIRST)[0])
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        kl = post.kl().mean() / x[0].numel()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + 1e-4 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for g in opt.param_groups:
            g["lr"] = s.ae_lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * (step + 1) / s.ae_steps)))
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()
    with torch.no_grad():
        x = torch.from_numpy(scenes.batch(np.random.default_rng(s.seed + 2), 256, geometry=FIRST)[0])
        scaling = float(1.0 / vae.encode(x).latent_dist.mean.std())
    torch.save({"vae": vae.state_dict(), "scaling": scaling}, path)
    return vae, scaling


# --- 2. the training pipeline ---------------------------------------------------------------
def training_pipeline(s: TrainSettings, vae_state: dict, scaling: float, workdir: Path):
    """A random face-world-sized world (with the trained AE) loaded as at inference, and the
    map from the FaceID file's keys to the loaded UNet's parameters."""
    from fastface.models.pipeline import load_pipeline
    from fastface.models.tiny import build_tiny_world, faceid_plusv2_state_dict, tiny_unet

    probe = fw.randomised(faceid_plusv2_state_dict(tiny_unet(s.seed, fw.UNET_SIZES), id_dim=fw.ID_DIM,
                                                   clip_dim=32, seed=s.seed + 50), s.seed + 60)
    spec = {"weights": {"vae": vae_state, "faceid": probe}, "unet_sizes": fw.UNET_SIZES, "vae_sizes": fw.VAE_SIZES,
            "vae_scaling_factor": scaling, "prediction_type": "v_prediction"}
    root = build_tiny_world(workdir / "init-world", seed=s.seed, id_dim=fw.ID_DIM, force=True, trained=spec,
                            meta={"init": True, "seed": s.seed})
    fp = load_pipeline("hyper", tiny=True, weights_root=root, face_backend="none", device="cpu")
    key_map = fw.adapter_key_map(fp.pipe.unet, probe)
    return fp, key_map


def identity_conditions(fp):
    """Per identity: dlib embeddings of the reference photo and of its mirror image, and the CLIP
    hidden states of its aligned crop (what :meth:`FastFacePipeline.encode_identity` computes)."""
    from fastface.faces.align import align_face
    from fastface.faces.dlib import DlibAnalyzer

    analyzer = DlibAnalyzer()
    embeds, clips = [], []
    negative = None
    for face in scenes.identities():
        found = face.face
        mirror = analyzer.detect(np.ascontiguousarray(face.photo[:, ::-1]))[0]
        ident = fp.identity_from_arrays(found.embedding, align_face(face.photo, found.kps, image_size=224))
        embeds.append(torch.stack([torch.as_tensor(found.embedding), torch.as_tensor(mirror.embedding)]))
        clips.append(ident.clip_embeds[0])
        negative = ident.clip_negative[0]
    return torch.stack(embeds).float(), torch.stack(clips).float(), negative.float()


# --- 3. UNet + adapter + text encoders --------------------------------------------------------
def _trainables(pipe) -> list[torch.nn.Module]:
    return [pipe.unet, pipe.text_encoder, pipe.text_encoder_2]


def train_unet(s: TrainSettings, fp, workdir: Path, started: float, geometry: str = FIRST,
               label: str = "unet + adapter"):
    from diffusers import DDPMScheduler

    pipe = fp.pipe
    modules = _trainables(pipe)
    for m in modules:
        m.train()
        for p in m.parameters():
            p.requires_grad_(True)
    pipe.vae.requires_grad_(False)
    pipe.image_encoder.requires_grad_(False)
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=s.lr, betas=(0.9, 0.99), weight_decay=0.01)
    ema = [copy.deepcopy(m).eval().requires_grad_(False) for m in modules]
    sched = DDPMScheduler.from_config(pipe.scheduler.config)
    embeds, clips, clip_neg = identity_conditions(fp)
    proj = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    proj.shortcut = True
    time_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]])
    rng = np.random.default_rng(s.seed + 3)
    gen = torch.Generator().manual_seed(s.seed + 4)
    start, prior_minutes = 0, 0.0
    ckpt = workdir / "unet.pt"
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        for m, e, sd, esd in zip(modules, ema, state["modules"], state["ema"]):
            m.load_state_dict(sd)
            e.load_state_dict(esd)
        opt.load_state_dict(state["opt"])
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["gen"])
        start = state["step"]
        prior_minutes = state.get("minutes", _logged_minutes(workdir))
    bar = _progress(s.unet_steps, label, initial=start)
    losses: list[float] = []
    locs: list[float] = []
    done = start
    phases = contextlib.ExitStack()
    collector = context = None
    try:
        for step in range(start, s.unet_steps):
            refining = step >= s.refine_from
            if refining and collector is None:
                side = scenes.SIZE // pipe.vae_scale_factor
                collector, context = phases.enter_context(refine.collecting_maps(pipe.unet, (side, side)))
                _check_ema_order(modules, ema)
            loss, loc = _train_step(s, pipe, proj, sched, rng, gen, embeds, clips, clip_neg, time_ids,
                                    collector if refining else None, context, geometry)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            for g in opt.param_groups:
                g["lr"] = learning_rate(s, step)
            opt.step()
            decay = min(s.ema, (step + 1) / (step + 10))
            with torch.no_grad():
                for m, e in zip(modules, ema):
                    for pe_, pm in zip(e.parameters(), m.parameters()):
                        pe_.lerp_(pm, 1 - decay)
            losses.append(loss.item() - s.loc_weight * loc)
            if refining:
                locs.append(loc)
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", **({"loc": f"{np.mean(locs[-50:]):.3f}"} if locs else {}))
            done = step + 1
            out_of_time = s.max_minutes > 0 and (time.time() - started) / 60 > s.max_minutes
            if done % s.checkpoint_every == 0 or done == s.unet_steps or out_of_time:
                torch.save({"modules": [m.state_dict() for m in modules], "ema": [e.state_dict() for e in ema],
                            "opt": opt.state_dict(), "rng": rng.bit_generator.state, "gen": gen.get_state(),
                            "step": done, "minutes": prior_minutes + (time.time() - started) / 60}, ckpt)
                record = {"step": done, "loss": float(np.mean(losses[-s.checkpoint_every:])),
                          "minutes": prior_minutes + (time.time() - started) / 60}
                if locs:
                    record["loc"] = float(np.mean(locs[-s.checkpoint_every:]))
                with open(workdir / "loss.log", "a") as f:
                    f.write(json.dumps(record) + "\n")
            if out_of_time:
                break
    finally:
        phases.close()
    bar.close()
    proj.clip_embeds = None
    return ema, done, prior_minutes + (time.time() - started) / 60


def learning_rate(s: TrainSettings, step: int) -> float:
    """Warm-up then constant; from ``refine_from`` a cosine to ``refine_lr_floor * lr`` at the last step."""
    if step >= s.refine_from:
        return refine.cosine_lr(s.lr, s.refine_lr_floor, step, s.refine_from, s.unet_steps)
    return s.lr * min(1.0, (step + 1) / s.warmup)


def _check_ema_order(modules, ema) -> None:
    """The EMA update pairs parameters by position: installing processors must not reorder them."""
    for m, e in zip(modules, ema):
        if [n for n, _ in m.named_parameters()] != [n for n, _ in e.named_parameters()]:
            raise RuntimeError("face world training: the model's parameters no longer match its EMA copy")


def _train_step(s: TrainSettings, pipe, proj, sched, rng, gen, embeds, clips, clip_neg, time_ids,
                collector, context, geometry: str):
    """One batch: the loss (with its graph) and the localisation term's value (0 before refining)."""
    # the draws of scenes.batch, plus the boxes
    x, specs, boxes = scenes.batch_with_boxes(rng, s.batch, flip=s.mirror_faces, geometry=geometry)
    n = len(specs)
    keep_text = rng.random(n) >= s.drop_text
    keep_id = rng.random(n) >= s.drop_id
    mirror = rng.integers(0, 2, size=n)
    ip_scale = float(rng.uniform(s.ip_scale_min, 1.0))
    with torch.no_grad():
        latents = pipe.vae.encode(torch.from_numpy(x)).latent_dist.sample(gen) * pipe.vae.config.scaling_factor
    noise = torch.randn(latents.shape, generator=gen)
    if collector is not None:
        t = refine.sample_timesteps(n, sched.config.num_train_timesteps, s.sampler_t_share, gen)
    else:
        t = torch.randint(0, sched.config.num_train_timesteps, (n,), generator=gen)
    noisy = sched.add_noise(latents, noise, t)
    target = sched.get_velocity(latents, noise, t)
    prompts = [sp.prompt if k else "" for sp, k in zip(specs, keep_text)]
    pe, _, ppe, _ = pipe.encode_prompt(prompt=prompts, device="cpu", num_images_per_prompt=1,
                                       do_classifier_free_guidance=False)
    ids = torch.tensor([sp.identity for sp in specs])
    kid = torch.from_numpy(keep_id.astype(np.float32))
    id_embed = embeds[ids, torch.from_numpy(mirror)] * kid[:, None]
    proj.clip_embeds = torch.where(torch.from_numpy(keep_id)[:, None, None, None], clips[ids], clip_neg)
    pipe.set_ip_adapter_scale(ip_scale)
    pred = pipe.unet(noisy, t, encoder_hidden_states=pe,
                     added_cond_kwargs={"text_embeds": ppe, "time_ids": time_ids.repeat(n, 1),
                                        "image_embeds": [id_embed.unsqueeze(1)]}, return_dict=False)[0]
    if collector is None:
        return F.mse_loss(pred, target), 0.0
    mask = refine.box_mask(boxes, latents.shape[-1], scenes.SIZE)
    loc = refine.localisation_loss(collector.take(), boxes, torch.from_numpy(keep_id), context.grid, scenes.SIZE)
    return refine.face_weighted_mse(pred, target, mask, s.face_weight) + s.loc_weight * loc, float(loc)


def _logged_minutes(workdir: Path) -> float:
    """Minutes of training so far, from the loss log (checkpoints of older runs lack them)."""
    log = workdir / "loss.log"
    lines = log.read_text().splitlines() if log.is_file() else []
    return float(json.loads(lines[-1])["minutes"]) if lines else 0.0


# --- 4. the decoder -------------------------------------------------------------------------
def train_decoder(s: TrainSettings, vae, workdir: Path, minutes: float, geometry: str = FIRST) -> float:
    """Fine-tune ``vae``'s decoder in place (or load the finished result from ``workdir``); returns
    the total training minutes including this phase."""
    path = workdir / "vae_decoder.pt"
    if path.is_file():
        state = torch.load(path)
        vae.load_state_dict(state["vae"])
        return minutes + float(state["phase_minutes"])
    if s.dec_steps == 0:
        return minutes
    started = time.time()
    bar = _progress(s.dec_steps, "decoder" if geometry == FIRST else "stage 2: decoder")
    losses = refine.refine_decoder(vae, steps=s.dec_steps, lr=s.dec_lr, face_weight=s.dec_face_weight, batch=s.batch,
                                   seed=s.seed + 5, progress=bar, flip=s.mirror_faces, geometry=geometry)
    bar.close()
    phase = (time.time() - started) / 60
    total = minutes + phase
    torch.save({"vae": vae.state_dict(), "phase_minutes": phase}, path)
    with open(workdir / "loss.log", "a") as f:
        f.write(json.dumps({"decoder_steps": s.dec_steps, "decoder_loss": float(np.mean(losses[-250:])),
                            "minutes": total}) + "\n")
    return total


# --- 5. export --------------------------------------------------------------------------------
def export(fp, ema_modules, key_map, vae, scaling: float, s: TrainSettings, steps_done: int, minutes: float) -> dict:
    from fastface.models.tiny import tiny_unet

    unet, te1, te2 = ema_modules
    weights = {
        "unet": fw.export_base_unet(unet, tiny_unet(s.seed, fw.UNET_SIZES)),
        "vae": {k: v.detach().clone() for k, v in vae.state_dict().items()},
        "text_encoder": {k: v.detach().clone() for k, v in te1.state_dict().items()},
        "text_encoder_2": {k: v.detach().clone() for k, v in te2.state_dict().items()},
        "image_encoder": {k: v.detach().clone() for k, v in fp.pipe.image_encoder.state_dict().items()},
        "faceid": fw.export_adapter(unet, key_map),
    }
    meta = {
        "version": fw.FACE_WORLD_VERSION, "seed": s.seed, "unet_sizes": fw.UNET_SIZES, "vae_sizes": fw.VAE_SIZES,
        "vae_scaling_factor": scaling, "prediction_type": "v_prediction", "resolution": scenes.SIZE,
        "identities": [f.name for f in scenes.identities()], "prompts": scenes.all_prompts(),
        "training": {**asdict(s), "unet_steps_done": steps_done, "minutes": round(minutes, 1),
                     "torch": torch.__version__},
    }
    return {"weights": weights, "meta": meta}


def verify_export(fp, ema_modules, path: Path, workdir: Path, tolerance: float = 0.02) -> float:
    """Load the exported file as a world (the real loaders) and generate one image with it and
    with the trained (EMA) model: they must agree up to the float16 rounding of the export."""
    from fastface.method.config import load_preset
    from fastface.faces.align import align_face
    from fastface.models.pipeline import load_pipeline

    for module, trained in zip(_trainables(fp.pipe), ema_modules):
        module.load_state_dict(trained.state_dict())
        module.eval()
    reloaded = load_pipeline("hyper", tiny=True, weights_root=fw.build_face_world(workdir / "check-world", weights=path,
                                                                                   force=True),
                             face_backend="none", device="cpu")
    face = scenes.identities()[0]
    found = face.face
    crop = align_face(face.photo, found.kps, image_size=224)
    images = []
    for pipe in (fp, reloaded):
        ident = pipe.identity_from_arrays(found.embedding, crop)
        images.append(np.asarray(pipe.generate(scenes.all_prompts()[0], ident, load_preset("baseline"), seed=0).image,
                                 dtype=np.float32) / 255.0)
    diff = float(np.abs(images[0] - images[1]).mean())
    if not diff < tolerance:
        raise RuntimeError(f"face world export: the reloaded world differs from the trained model "
                           f"(mean |pixel diff| {diff:.4f} >= {tolerance})")
    return diff
