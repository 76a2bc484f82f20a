"""Reference (numpy) encoding and summaries of attention maps.

The probes compute the same things on the GPU in torch; these functions are the
definition they are tested against.  Definitions:

* A map is a finite 2-D array (height, width); values are flattened row-major:
  element k is cell (k // width, k % width).
* encode 'f16': data = IEEE-754 binary16 bit patterns (uint16) of the values
  (round to nearest even, as ``astype(float16)``); scale is None.
* encode 'u8': scale = max / 255 (1.0 when max <= 0); q = clip(rint(value / scale), 0, 255)
  (round half to even, like torch.round; computed in float64), stored as uint16; decoded
  value = float32(q * scale) with the product in float64.  Negative values cannot be
  represented and are clamped to 0 (the summaries still describe the unclamped map); store
  signed maps as 'f16'.
* encode 'none': no data (None, None); only the summaries are stored.
* summaries are computed in float64 on the original (not encoded) values:
  min, mean, std (population, ddof=0), max, q50/q90/q99 (linear interpolation,
  numpy's default), entropy = -sum p ln p (nats) of the map's positive part:
  p = max(value, 0) / sum(max(values, 0)), 0 ln 0 = 0; None only when that sum is 0 (no
  positive value).  Attention weights are >= 0; negative values come only from AdaIN-blended
  'post' maps (AM2), and the positive part is also what a 'u8' map decodes to (store/VIEWS.md,
  "Maps with negative values"); hist = counts over
  HIST_BINS bins (see HIST_EDGES); n_values = height * width.
"""

from __future__ import annotations

import numpy as np

ENCODINGS = ("f16", "u8", "none")

#: Regular histogram bin edges: 32 equal bins on [0, 1].  The stored histogram has
#: HIST_BINS = 34 counts: [value < 0] + 32 regular bins + [value > 1].  Regular bin i
#: (i = 0..31) holds HIST_EDGES[i] <= v < HIST_EDGES[i + 1], the last one also v == 1;
#: i.e. stored index = 1 + min(floor(32 * v), 31) for 0 <= v <= 1 (floor of an exact product:
#: torch.bucketize(v, HIST_EDGES, right=True) - 1 gives the same bins).
HIST_EDGES = np.linspace(0.0, 1.0, 33)
HIST_BINS = len(HIST_EDGES) + 1


def _as_map(map2d) -> np.ndarray:
    m = np.asarray(map2d)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"expected a non-empty 2-D map, got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("map has non-finite values")
    return m


def histogram(values: np.ndarray) -> np.ndarray:
    """Counts of values on the stored bins (int32, length HIST_BINS)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    idx = np.empty(v.shape, dtype=np.int64)
    below, above = v < 0, v > 1
    inside = ~(below | above)
    idx[below] = 0
    idx[above] = HIST_BINS - 1
    idx[inside] = 1 + np.minimum(np.searchsorted(HIST_EDGES, v[inside], side="right") - 1, 31)
    return np.bincount(idx, minlength=HIST_BINS).astype(np.int32)


def entropy(values: np.ndarray) -> float | None:
    """-sum p ln p (nats) of p = max(v, 0) / sum(max(v, 0)); None when no value is > 0."""
    v = np.maximum(np.asarray(values, dtype=np.float64).reshape(-1), 0.0)
    total = v.sum()
    if total <= 0:
        return None
    p = v[v > 0] / total
    return float(-(p * np.log(p)).sum()) + 0.0  # (+ 0.0: no -0.0 for a one-cell peak)


def summarise(map2d) -> dict:
    """Summaries of a 2-D map (the stored maps columns): see the module docstring."""
    m = _as_map(map2d)
    v = m.astype(np.float64).reshape(-1)
    q50, q90, q99 = np.quantile(v, [0.5, 0.9, 0.99])
    return {
        "min": float(v.min()), "mean": float(v.mean()), "std": float(v.std()), "max": float(v.max()),
        "entropy": entropy(v), "q50": float(q50), "q90": float(q90), "q99": float(q99),
        "hist": histogram(v), "n_values": int(v.size),
    }


def encode_map(map2d, encoding: str) -> tuple[np.ndarray | None, float | None]:
    """Encode a 2-D map: returns (uint16 data, row-major, or None; scale or None)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; expected one of {ENCODINGS}")
    m = _as_map(map2d)
    if encoding == "none":
        return None, None
    if encoding == "f16":
        return np.ascontiguousarray(m, dtype=np.float16).view(np.uint16).reshape(-1), None
    v = m.astype(np.float64).reshape(-1)
    mx = float(v.max())
    scale = mx / 255.0 if mx > 0 else 1.0
    return np.clip(np.rint(v / scale), 0, 255).astype(np.uint16), scale


def decode_map(data, encoding: str, scale: float | None, height: int, width: int) -> np.ndarray | None:
    """Inverse of encode_map (float32, shape (height, width)); None for 'none'."""
    if encoding == "none" or data is None:
        return None
    d = np.asarray(data, dtype=np.uint16).reshape(height, width)
    if encoding == "f16":
        return d.view(np.float16).astype(np.float32)
    if encoding == "u8":
        return (d.astype(np.float64) * float(scale)).astype(np.float32)
    raise ValueError(f"unknown encoding {encoding!r}")


def max_abs_error(map2d, encoding: str) -> float:
    """Worst-case absolute decode error bound of encode_map for this map (tests, docs);
    for 'u8' it holds for values >= 0 (negative values are clamped to 0)."""
    m = np.abs(np.asarray(map2d, dtype=np.float64))
    if encoding == "f16":  # half an ulp: 2**-11 relative for normals, 2**-25 absolute for subnormals
        return float(max(m.max() * 2.0 ** -11, 2.0 ** -25))
    if encoding == "u8":
        return float(m.max() / 255.0 / 2.0 * (1 + 1e-9)) + 1e-7 * float(m.max())
    return 0.0
