"""On-device reductions of decoupled attention maps (pure torch; no host synchronisation).

Shapes: ``attn`` is the processor's map ``[batch, heads, queries, tokens]`` (B, H, Q, T);
a *stack of maps* is ``[N, h, w]`` (N maps on an h x w query grid, row-major: query
k is cell (k // w, k % w)). Everything runs on the device and dtype of its input; summaries
and reductions are computed in float32.

The numpy reference of every summary and encoding is :mod:`store.encode` (``summarise``,
``encode_map``, ``HIST_EDGES``); the definitions match it:

- ``std`` is the *population* standard deviation (ddof = 0, ``correction=0``), as in the store;
- ``entropy`` = -sum p ln p (nats) of the positive part, p = max(map, 0) / sum(max(map, 0)),
  0 ln 0 = 0; NaN (stored as null) only when that sum is 0 (no positive value);
- quantiles 0.5 / 0.9 / 0.99 use linear interpolation (``torch.quantile``'s and numpy's default);
- ``hist``: 34 counts, ``[v < 0] + 32 equal bins on [0, 1] (the last closed) + [v > 1]``;
- 'f16' data = IEEE binary16 bit patterns (round to nearest even); 'u8' data = ``rint(v / scale)``
  clipped to 0..255 with ``scale = max / 255`` (1.0 when max == 0), computed in float64 where the
  device has it, so the codes equal the reference bit for bit. Negative values (possible in
  AdaIN-blended 'post' maps) cannot be represented in 'u8' and are clamped to 0 there; the
  summaries (min, hist[0]) still describe the unclamped map.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from store.encode import HIST_BINS, HIST_EDGES

__all__ = [
    "SUMMARY_FIELDS", "QUANTILES", "select_branch_rows", "select_tokens", "reduce_heads", "as_maps",
    "target_size", "downsample", "summarise", "histogram", "quantise", "dequantise",
]

#: Columns of the [N, 8] summary matrix returned by :func:`summarise`.
SUMMARY_FIELDS = ("min", "mean", "std", "max", "entropy", "q50", "q90", "q99")
QUANTILES = (0.5, 0.9, 0.99)
_QUANTILE_MAX_NUMEL = 1 << 24  # torch.quantile refuses larger inputs


def select_branch_rows(attn: torch.Tensor, layout, branches: tuple[str, ...]) -> tuple[torch.Tensor, list[str], list[str]]:
    """Rows of the wanted branches, by name from a ``fastface.method.guidance.BranchLayout``.

    Returns ``(rows [Bn, H, Q, T], present names in layout order, missing names)``; only the
    first row of each branch is taken (one image per sample).
    """
    present = [n for n in layout.names if n in branches]
    missing = [n for n in branches if n not in layout.names]
    if not present:
        return attn[:0], present, missing
    starts = [layout.rows_of(n).start for n in present]
    if starts == list(range(starts[0], starts[0] + len(starts))) and layout.rows == 1:
        rows = attn[starts[0]: starts[0] + len(starts)]  # contiguous: a view, no copy
    else:
        rows = attn.index_select(0, torch.tensor(starts, device=attn.device))
    return rows, present, missing


def select_tokens(attn: torch.Tensor, tokens: tuple[int, ...]) -> torch.Tensor:
    """``[..., T] -> [..., len(tokens)]``; token -1 is the sum over all T tokens (in float32)."""
    parts = []
    ids = [t for t in tokens if t >= 0]
    if ids == list(range(attn.shape[-1])) and len(ids) == len(tokens):
        return attn.float()
    for t in tokens:
        parts.append(attn[..., t:t + 1].float() if t >= 0 else attn.float().sum(dim=-1, keepdim=True))
    return torch.cat(parts, dim=-1)


def reduce_heads(attn: torch.Tensor, how: str) -> torch.Tensor:
    """``[B, H, Q, T] -> [B, H', Q, T]`` float32: H' = 1 for 'mean'/'max', H for 'each'."""
    if how == "mean":
        return attn.mean(dim=1, keepdim=True, dtype=torch.float32)
    if how == "max":
        return attn.amax(dim=1, keepdim=True).float()
    if how == "each":
        return attn.float()
    raise ValueError(f"head reduction {how!r} is not 'mean', 'max' or 'each'")


def as_maps(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``[B, H', Q, T'] -> [B * H' * T', h, w]`` (order: branch, head, token), Q = h * w."""
    b, hh, q, t = x.shape
    h, w = grid
    if h * w != q:
        raise ValueError(f"query grid {h}x{w} does not hold {q} queries")
    return x.permute(0, 1, 3, 2).reshape(b * hh * t, h, w)


def target_size(h: int, w: int, resolution: int | None) -> tuple[int, int]:
    """Stored grid for a native h x w grid: the larger side becomes ``resolution`` (aspect kept,
    never upsampled); ``None`` = native."""
    if resolution is None or max(h, w) <= resolution:
        return h, w
    f = resolution / max(h, w)
    return max(1, round(h * f)), max(1, round(w * f))


def downsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area-average ``[N, h, w] -> [N, *size]`` (identity when the size is unchanged)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.adaptive_avg_pool2d(maps.unsqueeze(1), size).squeeze(1)


def histogram(values: torch.Tensor) -> torch.Tensor:
    """Counts per map on the store's bins: ``[N, n] -> [N, HIST_BINS]`` int32."""
    v = values.float()
    edges = torch.as_tensor(HIST_EDGES, dtype=torch.float32, device=v.device)  # k/32: exact in float32
    idx = torch.bucketize(v, edges, right=True).clamp_(max=HIST_BINS - 2)  # <0 -> 0, bins -> 1..32
    idx = torch.where(v > 1.0, torch.full_like(idx, HIST_BINS - 1), idx)
    counts = torch.zeros(v.shape[0], HIST_BINS, dtype=torch.int64, device=v.device)
    counts.scatter_add_(1, idx, torch.ones_like(idx))
    return counts.to(torch.int32)


def _quantiles(v: torch.Tensor) -> torch.Tensor:
    q = torch.tensor(QUANTILES, dtype=torch.float32, device=v.device)
    rows = max(1, _QUANTILE_MAX_NUMEL // max(v.shape[1], 1))
    chunks = [torch.quantile(c, q, dim=1) for c in v.split(rows)]  # each [3, n_chunk]
    return torch.cat(chunks, dim=1).T  # [N, 3]


def summarise(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched summaries of ``[N, h, w]`` (or ``[N, n]``) maps.

    Returns ``(stats [N, 8] float32 in SUMMARY_FIELDS order, hist [N, 34] int32)``; entropy is
    NaN where it is undefined (no positive value: the positive part sums to 0).
    """
    v = maps.reshape(maps.shape[0], -1).float().contiguous()
    lo, hi = v.amin(dim=1), v.amax(dim=1)
    mean = v.mean(dim=1)
    std = v.std(dim=1, correction=0)  # population std, as store.encode.summarise (np.std)
    pos = v.clamp(min=0)  # entropy of the positive part (AdaIN 'post' maps can be < 0)
    total = pos.sum(dim=1, keepdim=True)
    p = pos / total
    ent = -torch.special.xlogy(p, p).sum(dim=1)
    ent = torch.where(total.squeeze(1) <= 0, torch.full_like(ent, float("nan")), ent)
    stats = torch.cat([torch.stack([lo, mean, std, hi, ent], dim=1), _quantiles(v)], dim=1)
    return stats, histogram(v)


def quantise(maps: torch.Tensor, encoding: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode ``[N, h, w]`` maps for storage: ``(data [N, h*w], scale [N] float64 | None)``.

    'f16': data is float16 (its bit patterns are the stored uint16 values); 'u8': data is uint8
    codes with ``value ~ code * scale`` (per-map scale = max / 255, 1.0 for an all-zero map).
    Error bounds: f16 half an ulp (relative 2**-11); u8 ``scale / 2`` for values >= 0.
    """
    flat = maps.reshape(maps.shape[0], -1)
    if encoding == "f16":
        return flat.to(torch.float16), None
    if encoding != "u8":
        raise ValueError(f"encoding {encoding!r} is not 'f16' or 'u8'")
    wide = torch.float32 if flat.device.type == "mps" else torch.float64
    v = flat.to(wide)
    mx = v.amax(dim=1, keepdim=True)
    scale = torch.where(mx > 0, mx / 255.0, torch.ones_like(mx))
    codes = torch.round(v / scale).clamp_(0, 255).to(torch.uint8)
    return codes, scale.squeeze(1)


def dequantise(data: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    """Inverse of :func:`quantise` (float32), for tests and on-device consumers."""
    if scale is None:
        return data.float()
    return (data.double() * scale.double().unsqueeze(1)).float()
