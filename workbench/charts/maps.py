"""Decoding the maps on screen (pure functions; the page queries only the maps it shows)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.charts.attention import mean_map


def decode_row(row) -> np.ndarray | None:
    from store.encode import decode_map

    data = row["data"]
    if data is None or (isinstance(data, float) and np.isnan(data)):
        return None
    return decode_map(np.asarray(data, dtype=np.uint16), row["encoding"], row["scale"],
                      int(row["height"]), int(row["width"]))


def overlay_maps(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """run_id -> one map: per site the head-reduced map (head -1) or the mean over the stored
    heads, then the mean over sites (upsampled to the finest grid)."""
    out: dict[str, np.ndarray] = {}
    if rows.empty:
        return out
    for run_id, g in rows.groupby("run_id", sort=False):
        per_site = []
        for _, s in g.groupby("site", sort=True):
            reduced = s[s["head"] == -1]
            use = reduced if len(reduced) else s
            decoded = [decode_row(r) for _, r in use.iterrows()]
            m = mean_map([d for d in decoded if d is not None])
            if m is not None:
                per_site.append(m)
        m = mean_map(per_site)
        if m is not None:
            out[str(run_id)] = m
    return out


def token_label(token: int) -> str:
    return "all tokens (sum)" if int(token) == -1 else f"ID token {int(token)}"


def png_size(png: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG header, without decoding."""
    if not png or len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
