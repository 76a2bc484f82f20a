"""Attention manipulation (AM) as pure tensor functions (METHOD.md section 4).

Every ``attn`` argument is an attention map of the decoupled (ID) cross-attention with
shape ``[batch, heads, queries, tokens]`` (``tokens`` = the adapter's ID tokens, 4 for
FaceID-Plus-v2). Nothing here knows about the UNet; the attention processor calls these.

- :func:`scale_power`  AM1, Eq. 8: ``min(s * A**p, max_value)``.
- :func:`soft_mask`    AM2 step 2 alone: ``norm(sigmoid(d * (norm(A) - q)))``.
- :func:`am2`          AM2 steps 1-3: first-token inversion, soft mask, scale + clamp.
- :func:`adain_blend`  AdaIN blend ``w*x + (1-w)*AdaIN(x, reference)`` over one axis.

``norm(X) = (X - min) / (max - min)`` takes min and max per token over all batch rows, heads
and queries together (the release's choice: the result then depends on which rows share a
batch). ``batch_groups`` splits the batch into that many equal, contiguous groups and
normalises each on its own: with the branch-major DCG layout, ``batch_groups`` = number of
branches gives the per-branch normalisation option.

AM2 follows the release's formulas but not all of its rounding: the soft mask works in
float32, while the release rounds the quantile ``q`` to float16 (``.half()``) before it is
compared with ``norm(A)``. That moves ``q`` by up to half a float16 step (at most 2**-12 for
q < 1) and the block output by up to about 3.7e-3 (issue 12). ``quantile_dtype="float16"``
reproduces that rounding (config ``am.am2.quantile_dtype``); the default ``"float32"`` keeps q
in float32, so the default AM2 is the release's formulas, not its float16 rounding.
"""
from __future__ import annotations

import torch

__all__ = ["scale_power", "minmax_norm", "soft_mask", "am2", "adain_blend", "adain_blend_output"]

_EPS_STD = 1e-6
_MIN_QUANTILE = 1e-6
QUANTILE_DTYPES = ("float32", "float16")


def scale_power(attn: torch.Tensor, *, scale: float, power: float, max_value: float = 10.0) -> torch.Tensor:
    """AM1 (Eq. 8): ``min(scale * attn**power, max_value)``, elementwise."""
    return torch.clamp(scale * attn.pow(power), max=max_value)


def minmax_norm(x: torch.Tensor, *, batch_groups: int = 1) -> torch.Tensor:
    """Min-max normalise per token over (batch rows, heads, queries) [B, H, Q, T].

    With ``batch_groups = g`` the batch is viewed as ``g`` contiguous groups of ``B/g`` rows,
    each normalised on its own. A constant token map (max == min) maps to 0, not NaN.
    """
    b = x.shape[0]
    if batch_groups < 1 or b % batch_groups:
        raise ValueError(f"batch_groups={batch_groups} must divide the batch size {b}")
    g = x.reshape(batch_groups, b // batch_groups, *x.shape[1:])  # [G, B/G, H, Q, T]
    lo = g.amin(dim=(1, 2, 3), keepdim=True)
    hi = g.amax(dim=(1, 2, 3), keepdim=True)
    out = (g - lo) / (hi - lo).clamp_min(torch.finfo(x.dtype).tiny)
    return out.reshape(x.shape)


def soft_mask(
    attn: torch.Tensor, *, steepness: float, quantile: float, batch_groups: int = 1,
    quantile_dtype: str = "float32",
) -> torch.Tensor:
    """AM2 step 2: ``T = norm(sigmoid(d * (norm(A) - q)))``.

    ``q`` is the ``quantile``-th quantile of the *raw* ``attn`` over queries, per (batch row,
    head, token), clamped to at least 1e-6, and compared with the normalised map (as the
    release does). The work is float32; ``quantile_dtype="float16"`` rounds the clamped ``q``
    to float16 (nearest even) before the comparison, as the release's ``.half()`` does.
    """
    if quantile_dtype not in QUANTILE_DTYPES:
        raise ValueError(f"quantile_dtype {quantile_dtype!r} is not one of {QUANTILE_DTYPES}")
    work = attn.float()
    q = torch.quantile(work, quantile, dim=2, keepdim=True).clamp_min(_MIN_QUANTILE)  # [B, H, 1, T]
    if quantile_dtype == "float16":
        q = q.half().float()
    t = torch.sigmoid(steepness * (minmax_norm(work, batch_groups=batch_groups) - q))
    return minmax_norm(t, batch_groups=batch_groups).to(attn.dtype)


def am2(
    attn: torch.Tensor,
    *,
    steepness: float,
    quantile: float,
    scale: float,
    invert_first_token: bool = True,
    max_value: float = 10.0,
    batch_groups: int = 1,
    quantile_dtype: str = "float32",
) -> torch.Tensor:
    """AM2 steps 1-3 (Eqs. 9-10 as released; ``quantile_dtype``: see :func:`soft_mask`).

    1. token 0 (attention mostly on the background) is replaced by ``1 - A0``;
    2. :func:`soft_mask`;
    3. ``min(scale * T, max_value)``;
    then token 0 is turned back by ``max_q(T0) - T0`` (max over queries per row and head).
    """
    a = attn
    if invert_first_token:
        a = attn.clone()
        a[..., 0] = 1.0 - attn[..., 0]
    t = soft_mask(a, steepness=steepness, quantile=quantile, batch_groups=batch_groups,
                  quantile_dtype=quantile_dtype)
    t = torch.clamp(scale * t, max=max_value)
    if invert_first_token:
        t0 = t[..., 0]
        t = t.clone()
        t[..., 0] = t0.amax(dim=2, keepdim=True) - t0
    return t


def adain_blend(x: torch.Tensor, reference: torch.Tensor, *, weight: float, dim: int) -> torch.Tensor:
    """``weight * x + (1 - weight) * AdaIN(x, reference)`` with mean/std over ``dim``.

    ``AdaIN(x, r) = (x - mean_x) / (std_x + 1e-6) * std_r + mean_r``; stds are sample stds
    (n - 1), torch's default. On attention maps use ``dim=-1`` (the token axis).
    """
    mean_x = x.mean(dim=dim, keepdim=True)
    std_x = x.std(dim=dim, keepdim=True)
    mean_r = reference.mean(dim=dim, keepdim=True)
    std_r = reference.std(dim=dim, keepdim=True)
    normalised = (x - mean_x) / (std_x + _EPS_STD) * std_r + mean_r
    return weight * x + (1.0 - weight) * normalised


def adain_blend_output(h: torch.Tensor, h0: torch.Tensor, *, weight: float, dim: int = -1) -> torch.Tensor:
    """AdaIN blend of a block output against the untransformed output; if the blend produces
    NaN anywhere (e.g. a zero-variance row), the unblended ``h`` is kept (as released)."""
    out = adain_blend(h, h0, weight=weight, dim=dim)
    return torch.where(torch.isnan(out).any(), h, out)
