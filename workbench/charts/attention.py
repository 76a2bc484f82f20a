"""Attention charts: value histograms (Fig. 6), face-mass heatmap, per-step statistics and the
attention overlay on a generated image.  Pure functions: data in, ``go.Figure`` out."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.charts import style

N_BINS = 34  # stored histogram: [<0] + 32 bins on [0, 1] + [>1]  (store.encode.HIST_EDGES)
_SITE_RE = re.compile(r"(down_blocks|mid_block|up_blocks)(?:\.(\d+))?\.attentions\.(\d+)"
                      r"\.transformer_blocks\.(\d+)\.(attn[12])")


def short_site(site: str) -> str:
    """'up_blocks.0.attentions.2.transformer_blocks.6.attn2' -> 'up0.a2.t6'."""
    m = _SITE_RE.fullmatch(site)
    if not m:
        return site
    part = {"down_blocks": "down", "mid_block": "mid", "up_blocks": "up"}[m[1]]
    return f"{part}{m[2] or ''}.a{m[3]}.t{m[4]}" + ("" if m[5] == "attn2" else ".self")


def bin_centres() -> np.ndarray:
    """x position of each stored bin (1-based bin i -> centres; under/overflow half a bin out)."""
    w = 1.0 / 32
    return np.concatenate([[-w / 2], (np.arange(32) + 0.5) * w, [1 + w / 2]])


def _meta(run_meta: dict, run_id: str) -> dict:
    return run_meta.get(run_id) or {"preset": None, "ip_scale": None, "label": run_id}


def hist_overlay(df: pd.DataFrame, run_meta: dict, *, log_y: bool = True,
                 title: str = "Attention value distribution, pre vs post") -> go.Figure:
    """Summed stored histograms as frequency curves, one per (run, stage).

    ``df``: run_id, stage, bin (1..34), count.  Colour = preset, dash = stage."""
    fig = go.Figure()
    x = bin_centres()
    for (run_id, stage), g in df.groupby(["run_id", "stage"], sort=True):
        counts = np.zeros(N_BINS)
        idx = g["bin"].to_numpy(dtype=int) - 1
        ok = (idx >= 0) & (idx < N_BINS)
        counts[idx[ok]] = g["count"].to_numpy(dtype=float)[ok]
        total = counts.sum()
        if total <= 0:
            continue
        freq = counts / total
        keep = np.ones(N_BINS, dtype=bool)
        keep[0], keep[-1] = counts[0] > 0, counts[-1] > 0  # show under/overflow only when used
        meta = _meta(run_meta, run_id)
        fig.add_trace(go.Scatter(
            x=x[keep], y=np.where(freq[keep] > 0, freq[keep], np.nan) if log_y else freq[keep],
            mode="lines+markers", line_shape="hvh",
            name=f"{meta['label']} · {stage}", legendgroup=run_id,
            line=dict(color=style.preset_color(meta["preset"]), dash=style.STAGE_DASH.get(stage, "solid"),
                      width=2),
            marker=dict(size=6, symbol=meta.get("symbol", "circle")),
            customdata=np.stack([counts[keep]], axis=-1),
            hovertemplate="value ≈ %{x:.3f}<br>fraction %{y:.3g}<br>count %{customdata[0]:.0f}<extra></extra>"))
    fig.update_xaxes(title_text="attention value (bins of 1/32; outer points: <0 and >1)")
    fig.update_yaxes(title_text="fraction of values", type="log" if log_y else "linear")
    if log_y:
        fig.update_yaxes(**log_ticks([y for t in fig.data for y in t.y]))
    return style.apply(fig, title)


def hist_facets(df: pd.DataFrame, run_meta: dict, labels: dict[str, str], order: list[str], *,
                log_y: bool = True, cols: int = 4, title: str = "Attention values pre vs post") -> go.Figure:
    """Summed stored histograms as frequency curves, one panel per run (``order``, titled by
    ``labels``; at most ``cols`` panels a row), pre and post in each (dash = stage).  The legend
    holds the two stages only, so it fits at any number of runs.

    ``df``: run_id, stage, bin (1..34), count."""
    runs = [r for r in order if r in set(df["run_id"])] if not df.empty else []
    n = max(len(runs), 1)
    ncols = min(cols, n)
    nrows = -(-n // ncols)
    fig = make_subplots(rows=nrows, cols=ncols, shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[labels.get(r, r) for r in runs] or None,
                        horizontal_spacing=0.03, vertical_spacing=min(0.08, 0.4 / nrows))
    x = bin_centres()
    values = []
    for i, run_id in enumerate(runs):
        row, col = i // ncols + 1, i % ncols + 1
        meta = _meta(run_meta, run_id)
        for stage, g in df[df["run_id"] == run_id].groupby("stage", sort=True):
            counts = np.zeros(N_BINS)
            idx = g["bin"].to_numpy(dtype=int) - 1
            ok = (idx >= 0) & (idx < N_BINS)
            counts[idx[ok]] = g["count"].to_numpy(dtype=float)[ok]
            if counts.sum() <= 0:
                continue
            freq = counts / counts.sum()
            keep = np.ones(N_BINS, dtype=bool)
            keep[0], keep[-1] = counts[0] > 0, counts[-1] > 0
            y = np.where(freq[keep] > 0, freq[keep], np.nan) if log_y else freq[keep]
            values.extend(y)
            fig.add_trace(go.Scatter(
                x=x[keep], y=y, mode="lines", line_shape="hvh", name=stage, legendgroup=stage,
                showlegend=False, line=dict(color=style.preset_color(meta["preset"]),
                                            dash=style.STAGE_DASH.get(stage, "solid"), width=2),
                customdata=np.stack([counts[keep]], axis=-1),
                hovertemplate=(f"{labels.get(run_id, run_id)} · {stage}<br>value ≈ %{{x:.3f}}<br>"
                               "fraction %{y:.3g}<br>count %{customdata[0]:.0f}<extra></extra>")),
                row=row, col=col)
    for stage in ("pre", "post"):  # legend: the stages, in a neutral colour
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=stage, legendgroup=stage,
                                 line=dict(color="#444444", dash=style.STAGE_DASH[stage], width=2)))
    fig.update_xaxes(title_text=None)
    fig.update_xaxes(title_text="attention value", row=nrows)
    fig.update_yaxes(type="log" if log_y else "linear")
    fig.update_yaxes(title_text="fraction", col=1)
    if log_y:
        fig.update_yaxes(**log_ticks(values))
    fig.update_layout(height=160 + 220 * nrows, margin=dict(b=90),
                      legend=dict(orientation="h", x=0, xanchor="left", yref="container", y=0, yanchor="bottom"))
    fig.update_annotations(font_size=12)
    return style.apply(fig, title)


def log_ticks(values) -> dict:
    """Tick spacing of a log axis over values: labels at the decades only when they span one
    decade or more (plotly's default labels every digit, 2..9, which overlap on short
    charts), else at 1, 2 and 5."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size and np.log10(v.max() / v.min()) >= 1.0:
        return {"dtick": 1}
    return {"dtick": "D2"}


def face_mass_heatmap(df: pd.DataFrame, value: str = "mass_in_box",
                      title: str = "Attention mass inside the generated face") -> go.Figure:
    """Site x step heatmap of a face-mass column (``df``: site, step, <value>)."""
    fig = go.Figure()
    if not df.empty:
        pivot = df.pivot_table(index="site", columns="step", values=value, aggfunc="mean")
        order = sorted(pivot.index, key=_site_order)
        pivot = pivot.loc[order]
        fig.add_trace(go.Heatmap(
            z=pivot.to_numpy(), x=[str(c) for c in pivot.columns], y=[short_site(s) for s in pivot.index],
            colorscale=style.SEQUENTIAL, zmin=0, zmax=1, colorbar=dict(title=dict(text=value.replace("_", " "))),
            hovertemplate="site %{y}<br>step %{x}<br>" + value + " %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="denoising step", type="category")
    fig.update_yaxes(title_text="site (UNet order)", autorange="reversed")
    return style.apply(fig, title)


def _site_order(site: str):
    m = _SITE_RE.fullmatch(site)
    if not m:
        return (9, site)
    part = {"down_blocks": 0, "mid_block": 1, "up_blocks": 2}[m[1]]
    return (part, int(m[2] or 0), int(m[3]), int(m[4]), m[5])


def step_lines(df: pd.DataFrame, run_meta: dict, y: str = "entropy",
               title: str | None = None, y_title: str | None = None) -> go.Figure:
    """A per-step statistic, one panel per UNet part, one line per (run, stage).

    ``df``: run_id, step, part, stage, <y>."""
    parts = [p for p in ("down", "mid", "up") if p in set(df["part"])] if not df.empty else []
    parts += sorted(set(df["part"].dropna()) - set(parts)) if not df.empty else []
    fig = make_subplots(rows=1, cols=max(len(parts), 1), shared_yaxes=True,
                        subplot_titles=parts or None, horizontal_spacing=0.04)
    shown = set()
    for col, part in enumerate(parts, start=1):
        sub = df[df["part"] == part]
        for (run_id, stage), g in sub.groupby(["run_id", "stage"], sort=True):
            g = g.sort_values("step")
            meta = _meta(run_meta, run_id)
            name = f"{meta['label']} · {stage}"
            fig.add_trace(go.Scatter(
                x=g["step"], y=g[y], mode="lines+markers", name=name, legendgroup=name,
                showlegend=name not in shown,
                line=dict(color=style.preset_color(meta["preset"]), dash=style.STAGE_DASH.get(stage, "solid")),
                marker=dict(symbol=meta.get("symbol", "circle"), size=7),
                hovertemplate=f"{part} step %{{x}}<br>{y} %{{y:.4g}}<extra>{name}</extra>"), row=1, col=col)
            shown.add(name)
        fig.update_xaxes(title_text="step", dtick=1, row=1, col=col)
    fig.update_yaxes(title_text=y_title or y, row=1, col=1)
    legend_rows = -(-len(shown) // 3)  # a horizontal legend under the plot, 3 entries a row: never scrolls
    fig.update_layout(height=style.HEIGHT + 24 * legend_rows, margin=dict(b=80 + 24 * legend_rows),
                      legend=dict(orientation="h", x=0, xanchor="left", yref="container", y=0, yanchor="bottom",
                                  entrywidth=0.32, entrywidthmode="fraction"))
    return style.apply(fig, title or f"{y_title or y} per denoising step")


# ---------------------------------------------------------------- overlay
def upsample(m: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D map to shape (exact block repeat for integer ratios)."""
    h, w = m.shape
    H, W = shape
    if (h, w) == (H, W):
        return m
    if H % h == 0 and W % w == 0:
        return np.kron(m, np.ones((H // h, W // w), dtype=m.dtype))
    rows = np.minimum((np.arange(H) + 0.5) * h / H, h - 1).astype(int)
    cols = np.minimum((np.arange(W) + 0.5) * w / W, w - 1).astype(int)
    return m[np.ix_(rows, cols)]


def mean_map(maps: list[np.ndarray]) -> np.ndarray | None:
    """Mean of maps of possibly different resolutions (upsampled to the largest grid)."""
    maps = [np.asarray(m, dtype=np.float64) for m in maps if m is not None]
    if not maps:
        return None
    shape = max((m.shape for m in maps), key=lambda s: s[0] * s[1])
    return np.mean([upsample(m, shape) for m in maps], axis=0)


def attention_overlay(image: np.ndarray | bytes | None, amap: np.ndarray | None, *, opacity: float = 0.55,
                      threshold: float = 0.0, box: tuple[float, float, float, float] | None = None,
                      title: str | None = None, width: int | None = None, height: int | None = None,
                      zmax: float | None = None, image_size: tuple[int, int] | None = None) -> go.Figure:
    """The generated image with an attention map on top and the detected face box.

    ``image``: (H, W, 3) uint8 array, or PNG bytes with ``image_size`` = (W, H) (embedded as
    a data URI: small figures), or None (the map alone on a 64 x 64 canvas).
    ``amap``: (h, w) map in any grid; cells are stretched over the image.  Cells below
    ``threshold`` x max are transparent.  ``box``: x0, y0, x1, y1 in image pixels."""
    fig = go.Figure()
    if isinstance(image, (bytes, bytearray, memoryview)):
        if image_size is None:
            raise ValueError("PNG bytes need image_size=(width, height)")
        W, H = int(image_size[0]), int(image_size[1])
        uri = "data:image/png;base64," + base64.b64encode(bytes(image)).decode("ascii")
        # x0/y0 are the centre of the first pixel: 0.5 puts the image on [0, W] x [0, H], where the
        # map's cells and the face box are (x0=0 drew it half a pixel left of and above them)
        fig.add_trace(go.Image(source=uri, x0=0.5, y0=0.5, dx=1, dy=1, hoverinfo="skip", name="image"))
    elif image is not None:
        H, W = image.shape[:2]
        fig.add_trace(go.Image(z=image, x0=0.5, y0=0.5, dx=1, dy=1, hoverinfo="skip", name="image"))
    else:
        H, W = (amap.shape if amap is not None else (64, 64))
    if amap is not None:
        a = np.asarray(amap, dtype=np.float64)
        h, w = a.shape
        top = float(np.nanmax(a)) if zmax is None else float(zmax)
        shown = np.where(a >= threshold * top, a, np.nan) if threshold > 0 else a
        fig.add_trace(go.Heatmap(
            z=shown, x0=W / w / 2, dx=W / w, y0=H / h / 2, dy=H / h, opacity=opacity,
            colorscale=style.ATTENTION_SCALE, zmin=0, zmax=top if top > 0 else None,
            colorbar=dict(orientation="h", thickness=8, len=0.9, x=0.5, xanchor="center", y=-0.02,
                          yanchor="top", title=dict(text="attention", side="top", font=dict(size=11)),
                          tickfont=dict(size=10)),
            hovertemplate="x %{x:.0f} y %{y:.0f}<br>value %{z:.4g}<extra></extra>", name="attention"))
    if box is not None and all(v is not None and np.isfinite(v) for v in box):
        x0, y0, x1, y1 = box
        fig.add_shape(type="rect", x0=x0, y0=y0, x1=x1, y1=y1,
                      line=dict(color=style.FACE_BOX_COLOR, width=2))
    fig.update_xaxes(visible=False, range=[0, W], constrain="domain")
    fig.update_yaxes(visible=False, range=[H, 0], scaleanchor="x", constrain="domain")
    style.apply(fig, title)
    fig.update_layout(margin=dict(l=4, r=4, t=36 if title else 4, b=4), showlegend=False,
                      width=width, height=height, plot_bgcolor="white")
    return fig
