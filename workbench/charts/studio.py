"""The Studio's charts (pure: data in, ``go.Figure`` out): the difference of two attention maps,
the pre/post value histograms of base and edit (the paper's Fig. 6), the image grid of a
parameter grid (its Figs. 15-16) and a metric along a grid axis.

The attention overlay of one image is :func:`workbench.charts.attention.attention_overlay`.
"""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.charts import style
from workbench.charts.attention import N_BINS, attention_overlay, bin_centres, log_ticks, upsample

#: the two images of a Generate: the base preset and the edited config
VARIANT_COLORS = {"base": "#7f7f7f", "edited": "#D55E00"}
DIFF_SCALE = "RdBu_r"
#: the height a horizontal colour bar (with its title and ticks) takes under a map
COLORBAR_PX = 62


def map_height(column_px: int, image_size: tuple[int, int]) -> int:
    """The height of a map figure that fills a column ``column_px`` wide: the image at the
    column's width (its aspect kept) plus the colour bar under it."""
    W, H = max(int(image_size[0]), 1), max(int(image_size[1]), 1)
    return int(round((column_px - 8) * H / W)) + COLORBAR_PX


def overlay(png: bytes | None, amap: np.ndarray | None, image_size: tuple[int, int], *, height: int,
            opacity: float = 0.5, box=None, zmax: float | None = None) -> go.Figure:
    """:func:`attention_overlay` for a narrow column: the image at the top of the figure (spare
    height, if any, goes between the image and its colour bar, never above the image)."""
    fig = attention_overlay(png, amap, opacity=opacity, box=box, image_size=image_size, height=height, zmax=zmax)
    fig.update_yaxes(constraintoward="top")
    return fig


def shared_zmax(*maps: np.ndarray | None) -> float | None:
    """One colour-scale top for maps shown side by side (the largest finite value)."""
    tops = [float(np.nanmax(m)) for m in maps if m is not None and np.isfinite(m).any()]
    return max(tops) if tops else None


def difference(edited: np.ndarray | None, base: np.ndarray | None) -> np.ndarray | None:
    """edited - base on the finer of the two grids (None when either is missing)."""
    if edited is None or base is None:
        return None
    shape = max(edited.shape, base.shape, key=lambda s: s[0] * s[1])
    return upsample(np.asarray(edited, float), shape) - upsample(np.asarray(base, float), shape)


def difference_map(diff: np.ndarray | None, image_size: tuple[int, int], *, title: str | None = None,
                   height: int | None = None) -> go.Figure:
    """A map of edited - base on the image's frame, diverging colours centred on 0 (red: the
    edit attends more)."""
    fig = go.Figure()
    W, H = int(image_size[0]), int(image_size[1])
    if diff is not None:
        h, w = diff.shape
        top = float(np.nanmax(np.abs(diff))) or 1.0
        fig.add_trace(go.Heatmap(
            z=diff, x0=W / w / 2, dx=W / w, y0=H / h / 2, dy=H / h, colorscale=DIFF_SCALE, zmin=-top, zmax=top,
            colorbar=dict(orientation="h", thickness=8, len=0.9, x=0.5, xanchor="center", y=-0.02, yanchor="top",
                          title=dict(text="edited − base", side="top", font=dict(size=11)),
                          tickfont=dict(size=10)),
            hovertemplate="x %{x:.0f} y %{y:.0f}<br>edited − base %{z:.4g}<extra></extra>"))
    fig.update_xaxes(visible=False, range=[0, W], constrain="domain")
    fig.update_yaxes(visible=False, range=[H, 0], scaleanchor="x", constrain="domain", constraintoward="top")
    style.apply(fig, title)
    fig.update_layout(margin=dict(l=4, r=4, t=36 if title else 4, b=4), showlegend=False, height=height,
                      plot_bgcolor="white")
    return fig


def value_histograms(hists: dict[tuple[str, str], np.ndarray], *, log_y: bool = True,
                     title: str = "Attention values, pre vs post (Fig. 6)") -> go.Figure:
    """Frequency curves of summed stored histograms, one per (variant, stage): colour = variant
    (base / edited), dash = stage. ``hists``: (variant, stage) -> counts over the 34 stored bins."""
    fig = go.Figure()
    x = bin_centres()
    for (variant, stage), counts in hists.items():
        counts = np.asarray(counts, dtype=float)
        if counts.shape != (N_BINS,) or counts.sum() <= 0:
            continue
        freq = counts / counts.sum()
        keep = np.ones(N_BINS, dtype=bool)
        keep[0], keep[-1] = counts[0] > 0, counts[-1] > 0  # under/overflow only when used
        fig.add_trace(go.Scatter(
            x=x[keep], y=np.where(freq[keep] > 0, freq[keep], np.nan) if log_y else freq[keep],
            mode="lines+markers", line_shape="hvh", name=f"{variant} · {stage}",
            line=dict(color=VARIANT_COLORS.get(variant, style.preset_color(variant)),
                      dash=style.STAGE_DASH.get(stage, "solid"), width=2),
            marker=dict(size=5), customdata=counts[keep],
            hovertemplate="value ≈ %{x:.3f}<br>fraction %{y:.3g}<br>count %{customdata:.0f}<extra></extra>"))
    fig.update_xaxes(title_text="attention value (bins of 1/32; end points: < 0 and > 1)")
    fig.update_yaxes(title_text="fraction of values", type="log" if log_y else "linear")
    if log_y:
        fig.update_yaxes(**log_ticks([y for t in fig.data for y in t.y]))
    style.apply(fig, title)
    fig.update_layout(height=400, margin=dict(l=64, r=16, t=84, b=56),
                      legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom"))
    return fig


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(bytes(png)).decode("ascii")


def image_grid(cells: list[dict], row_values: list[str], col_values: list[str], *, row_title: str = "",
               col_title: str = "", title: str | None = None, zmax: float | None = None,
               opacity: float = 0.5, cell_px: int = 190) -> go.Figure:
    """Rows x columns of images as the paper draws its ablations: each column headed with
    ``col_title = value``, each row with ``row_title = value`` (rotated, on the left), each image
    titled with its own label (its metrics; ``<br>`` for a second line), optionally with an
    attention map on top (one colour scale for the whole grid).  The images are ``cell_px``
    square (their aspect kept), with no spare space around them.

    ``cells``: dicts with row, col (indices), png (bytes or None), size (W, H), label, and
    optionally amap (2-D array) and box (x0, y0, x1, y1)."""
    n_rows, n_cols = max(len(row_values), 1), max(len(col_values), 1)
    titles = [""] * (n_rows * n_cols)
    for c in cells:
        titles[c["row"] * n_cols + c["col"]] = c.get("label", "")
    maps = [c.get("amap") for c in cells if c.get("amap") is not None]
    top = zmax if zmax is not None else shared_zmax(*maps)
    shown_bar = bool(maps)
    # pixels: the cells' labels sit in the gaps above each row, the column headers above those
    label_px = 8 + 15 * max([t.count("<br>") + 1 for t in titles if t] or [0])
    gap_x = 12
    head_px = 26 if col_title else 0
    left = 34 if row_title else 10
    right = 110 if shown_bar else 10
    top_px = (40 if title else 8) + head_px + label_px
    plot_w = n_cols * cell_px + (n_cols - 1) * gap_x
    plot_h = n_rows * cell_px + (n_rows - 1) * label_px
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles,
                        horizontal_spacing=gap_x / plot_w if n_cols > 1 else 0.0,
                        vertical_spacing=label_px / plot_h if n_rows > 1 else 0.0)
    for c in cells:
        r, k = c["row"] + 1, c["col"] + 1
        W, H = (int(c["size"][0]), int(c["size"][1])) if c.get("size") else (64, 64)
        if c.get("png") is not None:
            fig.add_trace(go.Image(source=_uri(c["png"]), x0=0.5, y0=0.5, dx=1, dy=1, hoverinfo="skip"),
                          row=r, col=k)
        amap = c.get("amap")
        if amap is not None:
            h, w = amap.shape
            fig.add_trace(go.Heatmap(
                z=amap, x0=W / w / 2, dx=W / w, y0=H / h / 2, dy=H / h, opacity=opacity, coloraxis="coloraxis",
                hovertemplate="value %{z:.4g}<extra></extra>"), row=r, col=k)
        box = c.get("box")
        if box is not None and all(v is not None and np.isfinite(v) for v in box):
            fig.add_shape(type="rect", x0=box[0], y0=box[1], x1=box[2], y1=box[3],
                          line=dict(color=style.FACE_BOX_COLOR, width=1.5), row=r, col=k)
        n = (r - 1) * n_cols + k
        fig.update_xaxes(visible=False, range=[0, W], constrain="domain", row=r, col=k)
        fig.update_yaxes(visible=False, range=[H, 0], scaleanchor=f"x{'' if n == 1 else n}", constrain="domain",
                         constraintoward="top", row=r, col=k)
    if shown_bar:
        fig.update_layout(coloraxis=dict(colorscale=style.ATTENTION_SCALE, cmin=0, cmax=top,
                                         colorbar=dict(title=dict(text="attention", side="right"), thickness=10,
                                                       len=min(1.0, 320 / plot_h), y=1.0, yanchor="top")))
    style.apply(fig, title)
    for a in fig.layout.annotations:  # the subplot titles: the cells' labels, small
        a.font = dict(size=11)
    fig.update_layout(height=int(top_px + plot_h + 10), width=int(left + plot_w + right),
                      margin=dict(l=left, r=right, t=top_px, b=10, autoexpand=False), showlegend=False)
    if title:
        fig.update_layout(title=dict(x=0, xref="paper", y=1.0, yref="container", yanchor="top", pad=dict(t=8)))
    # headers: the value of each column above it, of each row beside it
    if head_px:
        for j, v in enumerate(col_values):
            dom = fig.layout[f"xaxis{'' if j == 0 else j + 1}"].domain
            fig.add_annotation(text=f"<b>{col_title} = {v}</b>", xref="paper", yref="paper",
                               x=(dom[0] + dom[1]) / 2, xanchor="center", y=1.0, yshift=label_px + 2, yanchor="bottom",
                               showarrow=False, font=dict(size=12))
    if row_title:
        for i, v in enumerate(row_values):
            dom = fig.layout[f"yaxis{'' if i == 0 else i * n_cols + 1}"].domain
            fig.add_annotation(text=f"<b>{row_title} = {v}</b>",
                               xref="paper", yref="paper", x=0, xshift=-6, xanchor="right",
                               y=(dom[0] + dom[1]) / 2, yanchor="middle", textangle=-90, showarrow=False,
                               font=dict(size=12))
    return fig


def metric_along_axis(summary: pd.DataFrame, axis: str, metric: str, by: str | None = None, *,
                      title: str | None = None) -> go.Figure:
    """Mean of a metric per value of a grid axis, one line per value of ``by``, with the interval
    [lo, hi] as error bars where it exists (two or more samples).

    ``summary``: the columns of :func:`fastface.studio.grid.along_axis` (axis, [by], mean, lo, hi,
    n, n_missing)."""
    fig = go.Figure()
    groups = [(None, summary)] if not by else list(summary.groupby(by, sort=False))
    for i, (name, g) in enumerate(groups):
        err = g["hi"] - g["mean"]
        has_err = np.isfinite(err.to_numpy(dtype=float)).any()
        fig.add_trace(go.Scatter(
            x=g[axis].astype(str), y=g["mean"], mode="lines+markers",
            name=metric if name is None else f"{by} = {name}",
            line=dict(color=style.SPARE_COLORS[i % len(style.SPARE_COLORS)] if name is not None else "#D55E00"),
            error_y=dict(type="data", symmetric=False, array=err, arrayminus=g["mean"] - g["lo"],
                         visible=bool(has_err)),
            customdata=np.stack([g["n"], g["n_missing"]], axis=-1),
            hovertemplate=f"{axis} %{{x}}<br>{metric} %{{y:.4g}}<br>n %{{customdata[0]}} "
                          "(missing %{customdata[1]})<extra></extra>"))
    fig.update_xaxes(title_text=axis, type="category")
    fig.update_yaxes(title_text=metric)
    style.apply(fig, title or f"{metric} along {axis}")
    fig.update_layout(height=360, margin=dict(l=64, r=16, t=84, b=56),
                      legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom"))
    return fig
