"""The FastFace attention processor: diffusers' IP-Adapter processor plus AM and observers.

:class:`FastFaceAttnProcessor` subclasses :class:`diffusers.models.attention_processor.
IPAdapterAttnProcessor2_0` and shares the loaded ``to_k_ip``/``to_v_ip`` modules of the
processor it replaces. At a site where nothing is asked of it (no AM at this step, no
observer that wants the map) it calls the parent unchanged (fused SDPA). Where AM applies or
an observer listens, it computes the decoupled attention explicitly::

    A  = softmax(Q K'^T / sqrt(d))                 # [batch, heads, queries, tokens]  "pre"
    A~ = transform(A)  (AM1 / AM2 [+ AdaIN])       # same shape                       "post"
    z  = Attention(Q, K, V) + lambda * (A~ V')     (+ AdaIN blend against A V' for AM2)

Observers (the probes) receive ``pre`` and ``post`` maps through :class:`AttentionObserver`.
Two optional observer hooks see the other half of the block (issue 27), both computed only
where an observer asks for them, so every other site keeps the fused path:

- ``wants_text`` / ``observe_text``: the text attention ``softmax(Q K^T / sqrt(d))``
  [batch, heads, queries, 77], computed explicitly beside the fused SDPA that still produces
  the output (the image is unchanged);
- ``wants_balance`` / ``observe_balance``: the two terms of ``z`` before ``to_out``, the text
  term ``Attention(Q, K, V)`` and the ID term ``lambda * A~ V'`` (after AM and the ip scale),
  each [batch, queries, heads * head_dim]; the ID term is zeros when lambda = 0.
All processors of a pipeline share one :class:`StepContext`, which the denoising loop
updates before every UNet call (step index, timestep, branch layout, latent size).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, IPAdapterAttnProcessor2_0

from fastface.method.config import AMConfig, schedule_at
from fastface.method.guidance import BranchLayout
from fastface.method.transforms import adain_blend, adain_blend_output, am2, scale_power

_SITE_RE = re.compile(r"^(down_blocks|mid_block|up_blocks)\.?(\d+)?")


def site_part(site: str) -> str:
    """UNet part of a site key: 'down', 'mid' or 'up'."""
    m = _SITE_RE.match(site)
    if not m:
        raise ValueError(f"{site!r} is not a UNet attention site (down_blocks/mid_block/up_blocks)")
    return {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[m.group(1)]


@dataclass
class StepContext:
    """What the denoising loop tells every processor before a UNet call."""

    step: int = 0
    num_steps: int = 1
    prompt: str = ""  # the (lower-cased) prompt of the current generation: word maps name its words
    timestep: float = 0.0
    layout: BranchLayout = field(default_factory=lambda: BranchLayout(2, (0, 1, 2)))
    latent_hw: tuple[int, int] = (0, 0)
    am: AMConfig = field(default_factory=AMConfig)
    observers: list["AttentionObserver"] = field(default_factory=list)

    def grid(self, queries: int) -> tuple[int, int]:
        """(height, width) of a site's query grid, from the latent size and the query count."""
        lh, lw = self.latent_hw
        if lh * lw == 0:
            side = int(math.isqrt(queries))
            return (side, queries // max(side, 1))
        factor = math.sqrt(lh * lw / queries)
        f = int(round(factor))
        return (max(lh // f, 1), max(lw // f, 1))


@runtime_checkable
class AttentionObserver(Protocol):
    """Receives decoupled attention maps. Maps are [batch, heads, queries, tokens] tensors on
    the compute device in the compute dtype; observers must not modify them in place."""

    def wants(self, site: str, ctx: StepContext) -> bool:
        """Whether this site at this step should be computed explicitly and observed."""

    def observe(self, site: str, ctx: StepContext, stage: str, attn: torch.Tensor) -> None:
        """``stage`` is 'pre' (softmax) or 'post' (the map actually multiplied with V')."""


class FastFaceAttnProcessor(IPAdapterAttnProcessor2_0):
    """IP-Adapter attention with FastFace AM and an observer hook at one site."""

    def __init__(self, site: str, base: IPAdapterAttnProcessor2_0, context: StepContext):
        with torch.device("meta"):  # no throw-away allocation of full-size ip projections
            super().__init__(base.hidden_size, base.cross_attention_dim, base.num_tokens,
                             list(base.scale) if isinstance(base.scale, list) else base.scale)
        self.to_k_ip = base.to_k_ip  # the loaded adapter weights, shared, not copied
        self.to_v_ip = base.to_v_ip
        self.site = site
        self.part = site_part(site)
        self.context = context

    # ----------------------------------------------------------------------------------
    def _am_active(self) -> bool:
        return self.context.am.applies(self.part, self.context.step)

    def _watchers(self) -> list[AttentionObserver]:
        return [o for o in self.context.observers if o.wants(self.site, self.context)]

    def _optional(self, hook: str) -> list:
        """Observers whose optional ``wants_<hook>`` says yes at this site and step."""
        return [o for o in self.context.observers
                if getattr(o, "wants_" + hook, None) is not None and getattr(o, "wants_" + hook)(self.site, self.context)]

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        scale: float = 1.0,
        ip_adapter_masks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        watchers = self._watchers()
        texts, balances = self._optional("text"), self._optional("balance")
        explicit = self._am_active() or bool(watchers) or bool(texts) or bool(balances)
        if not explicit or not isinstance(encoder_hidden_states, tuple):
            return super().__call__(
                attn, hidden_states, encoder_hidden_states, attention_mask, temb, scale, ip_adapter_masks
            )
        if ip_adapter_masks is not None:
            raise ValueError(
                f"{self.site}: ip_adapter_masks cannot be combined with FastFace AM or probes; "
                "run without masks or without AM/probes"
            )
        return self._explicit(attn, hidden_states, encoder_hidden_states, attention_mask, temb, watchers,
                              texts, balances)

    def _explicit(self, attn, hidden_states, encoder_hidden_states, attention_mask, temb, watchers,
                  texts=(), balances=()):
        residual = hidden_states
        encoder_hidden_states, ip_hidden_states = encoder_hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = encoder_hidden_states.shape
        if attention_mask is not None:
            attention_mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
            attention_mask = attention_mask.view(batch_size, attn.heads, -1, attention_mask.shape[-1])
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key = attn.to_k(encoder_hidden_states)
        value = attn.to_v(encoder_hidden_states)
        inner_dim = key.shape[-1]
        head_dim = inner_dim // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if texts:  # the text attention map, beside the fused output (which stays as it was)
            logits = (query @ key.transpose(-1, -2)).float() * (1.0 / math.sqrt(head_dim))
            if attention_mask is not None:
                logits = logits + attention_mask.float()
            text_probs = torch.softmax(logits, dim=-1).to(query.dtype)  # [B, H, Q, 77]
            for o in texts:
                o.observe_text(self.site, self.context, text_probs)
        hidden_states = F.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = hidden_states.to(query.dtype)
        text_term, id_term = hidden_states, None

        for index, (ip_states, ip_scale, to_k_ip, to_v_ip) in enumerate(
            zip(ip_hidden_states, self.scale, self.to_k_ip, self.to_v_ip)
        ):
            if ip_scale == 0 or (isinstance(ip_scale, list) and all(s == 0 for s in ip_scale)):
                continue
            if isinstance(ip_scale, list):
                raise ValueError(f"{self.site}: per-image IP scales need ip_adapter_masks; give one scale")
            ip_key = to_k_ip(ip_states).view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
            ip_value = to_v_ip(ip_states).view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
            if index > 0:  # only the first adapter (FaceID) is manipulated/observed
                ip_out = F.scaled_dot_product_attention(query, ip_key, ip_value)
            else:
                ip_out = self._decoupled(query, ip_key, ip_value, watchers)
            ip_out = ip_out.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim).to(query.dtype)
            scaled = ip_scale * ip_out
            hidden_states = hidden_states + scaled
            id_term = scaled if id_term is None else id_term + scaled
        for o in balances:
            o.observe_balance(self.site, self.context, text_term,
                              torch.zeros_like(text_term) if id_term is None else id_term)

        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _decoupled(self, query, ip_key, ip_value, watchers) -> torch.Tensor:
        """Explicit decoupled attention ``A~ V'`` with AM; emits pre/post maps to watchers."""
        if not watchers and not self._am_active():  # explicit for the balance only: fused
            return F.scaled_dot_product_attention(query, ip_key, ip_value)
        scale = 1.0 / math.sqrt(query.shape[-1])
        probs = torch.softmax((query @ ip_key.transpose(-1, -2)).float() * scale, dim=-1)  # [B,H,Q,T]
        probs = probs.to(query.dtype)
        for w in watchers:
            w.observe(self.site, self.context, "pre", probs)
        ctx = self.context
        if not self._am_active():
            # observed only: the output takes the parent's fused path, so attaching an
            # observer leaves the generated image bit-identical
            for w in watchers:
                w.observe(self.site, ctx, "post", probs)
            return F.scaled_dot_product_attention(query, ip_key, ip_value)
        am = ctx.am
        tokens = list(am.tokens) if am.tokens is not None else None
        if am.kind == "am1":
            cfg = am.am1
            transformed = scale_power(probs, scale=cfg.scale_for(self.part), power=cfg.power, max_value=cfg.max_value)
            adain_w = None
        else:
            cfg = am.am2
            groups = len(ctx.layout.active) if cfg.normalization == "branch" else 1
            step, n = ctx.step, ctx.num_steps
            transformed = am2(
                probs,
                steepness=schedule_at(cfg.steepness, step, n, "am.am2.steepness"),
                quantile=schedule_at(cfg.quantile, step, n, "am.am2.quantile"),
                scale=schedule_at(cfg.scale, step, n, "am.am2.scale"),
                invert_first_token=cfg.invert_first_token,
                batch_groups=groups,
                quantile_dtype=cfg.quantile_dtype,
            )
            adain_w = None if cfg.adain_weight is None else schedule_at(cfg.adain_weight, step, n, "am.am2.adain_weight")
            if adain_w is not None:
                transformed = adain_blend(transformed, probs, weight=adain_w, dim=-1)
        if tokens is not None:  # manipulate only the targeted ID tokens
            keep = torch.zeros(probs.shape[-1], dtype=torch.bool, device=probs.device)
            keep[[t for t in tokens if t < probs.shape[-1]]] = True
            transformed = torch.where(keep, transformed, probs)
        transformed = transformed.to(query.dtype)
        for w in watchers:
            w.observe(self.site, ctx, "post", transformed)
        out = transformed @ ip_value
        if adain_w is not None:
            out = adain_blend_output(out, probs @ ip_value, weight=adain_w, dim=-1)
        return out


def fastface_sites(unet) -> list[str]:
    """Sites (processor keys without '.processor') of the IP-Adapter attention blocks."""
    return [
        name[: -len(".processor")]
        for name, proc in unet.attn_processors.items()
        if isinstance(proc, IPAdapterAttnProcessor2_0)
    ]


def install_processors(unet, context: StepContext) -> dict[str, object]:
    """Replace every IP-Adapter processor with a FastFace one bound to ``context`` and sharing
    the loaded weights.

    Returns the original processors (pass them to ``unet.set_attn_processor`` to undo). The
    originals are never modified: where the UNet already has FastFace processors (another
    pipeline's, or an outer install), each gets a *new* FastFace processor on ``context``, so
    putting the originals back also puts back the context they read (issue 28: re-pointing the
    existing processors at ``context`` left their owner's denoising loop talking to a context
    no processor read after the restore, and AM silently off).
    """
    originals = dict(unet.attn_processors)
    if not any(isinstance(p, IPAdapterAttnProcessor2_0) for p in originals.values()):
        raise ValueError("the UNet has no IP-Adapter processors: load FaceID-Plus-v2 (load_ip_adapter) first")
    new = {}
    for name, proc in originals.items():
        if isinstance(proc, IPAdapterAttnProcessor2_0):  # FastFace processors included
            new[name] = FastFaceAttnProcessor(name[: -len(".processor")], proc, context)
        else:
            new[name] = proc
    unet.set_attn_processor(new)
    return originals
