"""The face world's refinement phase: what training adds after the first ``refine_from`` steps.

Three changes turn the plain diffusion objective of the first phase into one that fits how the
world is used (4-step distilled-style sampling, identity, attention analysis):

1. **Sampler timesteps.** Half of the steps draw t near the 4-step samplers' timesteps
   (999, 749, 499, 249, +-12: Hyper/Lightning trailing; LCM's 759/259 are inside the jitter), the
   other half uniformly, so the four UNet calls of a demo sample are the best-trained ones.
2. **Face-weighted loss.** The v-prediction error counts ``1 + face_weight`` times inside the
   pasted face box (latent cells, fractional at the border), normalised by the mean weight: the
   face, a small part of a wide shot, gets the model's capacity.
3. **Attention localisation** (as FastComposer's cross-attention localisation loss, on the
   decoupled ID attention): at every decoupled site, with the head-mean ``pre`` map
   ``A = softmax(Q K'^T / sqrt(d))`` over the 4 ID tokens, tokens 1-3 are pushed to attend more
   inside the face box than outside it, and token 0 the other way, mirroring the real
   FaceID-Plus-v2 whose first token attends to the background (METHOD.md section 4, AM2's
   first-token inversion). Loss per site and sample (ID not dropped):
   ``mean_{k=1..3}(bg_k - face_k) + (face_0 - bg_0)`` with ``face_k``/``bg_k`` the mask-weighted
   means of ``A_k`` inside/outside the box; averaged, times ``loc_weight``.

The maps come from the pipeline's own :class:`~fastface.method.processor.FastFaceAttnProcessor` with an
observer (the processors are installed for the phase and always restored), so the loss sees
exactly the maps the probes capture at inference.

After the UNet, :func:`refine_decoder` fine-tunes the autoencoder's decoder with a face-weighted
reconstruction loss (the encoder, and so the UNet's latent space, stays fixed).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch

#: the 4-step samplers' timesteps (trailing spacing of 1000 training steps)
SAMPLER_TIMESTEPS = (999, 749, 499, 249)
JITTER = 12
#: ID tokens trained to attend inside the face (+1) or outside it (-1)
TOKEN_SIGN = (-1.0, 1.0, 1.0, 1.0)


def box_mask(boxes: list[tuple[float, float, float, float]], grid: int, size: int) -> torch.Tensor:
    """[n, grid*grid] share of each cell (row-major) covered by each box (pixel coordinates of
    a ``size`` x ``size`` image)."""
    cell = size / grid
    edges = np.arange(grid + 1, dtype=np.float64) * cell
    out = np.zeros((len(boxes), grid, grid), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        ox = np.clip(np.minimum(edges[1:], x1) - np.maximum(edges[:-1], x0), 0, None) / cell
        oy = np.clip(np.minimum(edges[1:], y1) - np.maximum(edges[:-1], y0), 0, None) / cell
        out[i] = np.outer(oy, ox)
    return torch.from_numpy(out.reshape(len(boxes), grid * grid))


def sample_timesteps(n: int, num_train: int, share: float, gen: torch.Generator) -> torch.Tensor:
    """``n`` training timesteps: with probability ``share`` near a sampler timestep, else uniform."""
    focus = torch.rand(n, generator=gen) < share
    base = torch.tensor(SAMPLER_TIMESTEPS)[torch.randint(0, len(SAMPLER_TIMESTEPS), (n,), generator=gen)]
    near = (base + torch.randint(-JITTER, JITTER + 1, (n,), generator=gen)).clamp(0, num_train - 1)
    uniform = torch.randint(0, num_train, (n,), generator=gen)
    return torch.where(focus, near, uniform)


def face_weighted_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, face_weight: float) -> torch.Tensor:
    """MSE with weight ``1 + face_weight * mask`` per latent cell; ``mask`` is [n, h*w]."""
    n, _, h, w = pred.shape
    weight = 1.0 + face_weight * mask.view(n, 1, h, w)
    return ((pred - target) ** 2 * weight).mean() / weight.mean()


def localisation_loss(maps: dict[str, torch.Tensor], boxes, keep: torch.Tensor, grid_of, size: int) -> torch.Tensor:
    """The mean over sites of the signed face-vs-background attention gap (see module doc);
    ``maps[site]`` is [n, heads, queries, tokens], ``keep`` [n] bool (ID not dropped),
    ``grid_of(queries)`` the (h, w) of a site's query grid."""
    if not maps or not bool(keep.any()):
        return torch.zeros(())
    losses = []
    masks: dict[int, torch.Tensor] = {}
    for attn in maps.values():
        a = attn.float().mean(dim=1)[keep]  # [k, Q, T]
        q, tokens = a.shape[1], a.shape[2]
        h, w = grid_of(q)
        if h != w:
            raise ValueError(f"localisation loss expects square grids, got {h}x{w}")
        if h not in masks:
            masks[h] = box_mask([b for b, k in zip(boxes, keep.tolist()) if k], h, size)
        m = masks[h].unsqueeze(-1)  # [k, Q, 1]
        face = (a * m).sum(1) / m.sum(1).clamp_min(1e-6)
        bg = (a * (1 - m)).sum(1) / (1 - m).sum(1).clamp_min(1e-6)
        sign = torch.tensor(TOKEN_SIGN[:tokens])
        losses.append(((bg - face) * sign).mean())
    return torch.stack(losses).mean()


class MapCollector:
    """An :class:`~fastface.method.processor.AttentionObserver` keeping each site's ``pre`` map of the
    current UNet call (with its autograd graph)."""

    def __init__(self):
        self.maps: dict[str, torch.Tensor] = {}

    def wants(self, site, ctx) -> bool:
        return True

    def observe(self, site, ctx, stage, attn) -> None:
        if stage == "pre":
            self.maps[site] = attn

    def take(self) -> dict[str, torch.Tensor]:
        maps, self.maps = self.maps, {}
        return maps


@contextlib.contextmanager
def collecting_maps(unet, latent_hw: tuple[int, int]):
    """Install FastFace processors with a :class:`MapCollector` on ``unet``; always restore the
    original processors. Yields ``(collector, context)``."""
    from fastface.method.processor import StepContext, install_processors

    collector = MapCollector()
    context = StepContext(latent_hw=latent_hw, observers=[collector])
    originals = install_processors(unet, context)
    try:
        yield collector, context
    finally:
        unet.set_attn_processor(originals)


def cosine_lr(base: float, floor: float, step: int, start: int, end: int) -> float:
    """Cosine decay from ``base`` at ``start`` to ``floor * base`` at ``end``."""
    frac = min(max((step - start) / max(end - start, 1), 0.0), 1.0)
    return base * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * frac)))


# --- after the UNet: the decoder ---------------------------------------------------------------
def face_weighted_recon(rec: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, face_weight: float) -> torch.Tensor:
    """L1 + L2 reconstruction error with weight ``1 + face_weight * mask`` per pixel; ``mask`` is
    [n, h*w] (the share of each pixel inside the pasted face box)."""
    n, _, h, w = x.shape
    weight = 1.0 + face_weight * mask.view(n, 1, h, w)
    err = rec - x
    return ((err.abs() + err ** 2) * weight).mean()


def refine_decoder(vae, *, steps: int, lr: float, face_weight: float, batch: int, seed: int, progress=None,
                   flip: bool = True, geometry: str = "final") -> list[float]:
    """Fine-tune the autoencoder's decoder (and ``post_quant_conv``) on fresh scenes with the
    face-weighted reconstruction loss; the encoder stays frozen, so the latent space the UNet was
    trained in is unchanged (as Stable Diffusion's ft-MSE VAE was made). Small faces of wide
    shots come out sharper. Learning rate: cosine from ``lr`` to ``lr / 10``. ``flip``: faces
    mirrored at random and ``geometry`` the face sizes (as in :func:`fastface.models.faceworld.scenes.compose`).
    Returns the losses."""
    from fastface.models.faceworld import scenes

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    vae.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    vae.train()
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    try:
        for step in range(steps):
            x, _, boxes = scenes.batch_with_boxes(rng, batch, flip=flip, geometry=geometry)
            x = torch.from_numpy(x)
            with torch.no_grad():
                z = vae.encode(x).latent_dist.sample(gen)
            loss = face_weighted_recon(vae.decode(z).sample, x, box_mask(boxes, scenes.SIZE, scenes.SIZE), face_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            for g in opt.param_groups:
                g["lr"] = cosine_lr(lr, 0.1, step, 0, steps)
            losses.append(float(loss))
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    finally:
        vae.requires_grad_(False)
        vae.eval()
    return losses
