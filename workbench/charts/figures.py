"""Charts made for the Figures page's standard set (pure: data in, ``go.Figure`` out).

- :func:`id_sim_vs_face_size`: ID similarity against generated face size, per run: the samples
  as faint points and the binned means with their 95 % intervals as lines; one panel per
  IP-Adapter scale (λ), one colour per preset, so each line reads "preset at λ".
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.charts import style

X_TITLE = "generated face size (bbox area / image area)"
X_SHORT = "face size (bbox / image area)"
Y_TITLE = "ID similarity"


def _meta(run_meta: dict, run_id: str) -> dict:
    return run_meta.get(run_id) or {"preset": None, "ip_scale": None, "label": run_id}


def _scale_text(ip) -> str:
    return "λ = ?" if ip is None or pd.isna(ip) else f"λ = {ip:g}"


def id_sim_vs_face_size(points: pd.DataFrame, binned: pd.DataFrame, run_meta: dict,
                        title: str = "ID similarity vs generated face size",
                        subtitle: str | None = None) -> go.Figure:
    """``points``: run_id, face_size, id_sim (one row per sample with both); ``binned``:
    workbench.data.binning.binned_means(points, 'face_size', 'id_sim', 'run_id', edges).
    One panel per ip_scale of the runs (shared y), presets coloured as everywhere; a legend
    entry per preset (the panel names the scale)."""
    runs = sorted(set(points["run_id"]) | set(binned["run_id"]),
                  key=lambda r: style.run_order(r, _meta(run_meta, r)["preset"], _meta(run_meta, r)["ip_scale"]))
    scales = sorted({_meta(run_meta, r)["ip_scale"] for r in runs},
                    key=lambda v: float("inf") if v is None else float(v))
    cols = max(len(scales), 1)
    fig = make_subplots(rows=1, cols=cols, shared_yaxes=True, horizontal_spacing=0.04 if cols > 1 else 0.0,
                        subplot_titles=[_scale_text(s) for s in scales] if cols > 1 else None)
    shown: set[str] = set()
    for run_id in runs:
        meta = _meta(run_meta, run_id)
        preset = meta["preset"] or style.UNKNOWN_PRESET
        col = scales.index(meta["ip_scale"]) + 1 if scales else 1
        color = style.preset_color(meta["preset"])
        label = style.run_label(run_id, meta["preset"], meta["ip_scale"])
        p = points[points["run_id"] == run_id]
        fig.add_trace(go.Scatter(
            x=p["face_size"], y=p["id_sim"], mode="markers", name=preset, legendgroup=preset, showlegend=False,
            marker=dict(color=color, size=5, opacity=0.35, symbol=meta.get("symbol", "circle")),
            hovertemplate=f"size %{{x:.3f}}<br>similarity %{{y:.3f}}<extra>{label}</extra>"), row=1, col=col)
        b = binned[binned["run_id"] == run_id].sort_values("x_mean")
        if b.empty:
            continue
        fig.add_trace(go.Scatter(
            x=b["x_mean"], y=b["y_mean"], mode="lines+markers", name=preset, legendgroup=preset,
            showlegend=preset not in shown, line=dict(color=color, width=2), marker=dict(color=color, size=7),
            error_y=dict(type="data", symmetric=False, array=(b["hi"] - b["y_mean"]).fillna(0),
                         arrayminus=(b["y_mean"] - b["lo"]).fillna(0), thickness=1.2, width=3, color=color),
            customdata=b[["n", "lo", "hi", "x_lo", "x_hi"]].to_numpy(),
            hovertemplate=("size %{customdata[3]:.3f}–%{customdata[4]:.3f} (mean %{x:.3f})<br>"
                           "mean similarity %{y:.3f} [%{customdata[1]:.3f}, %{customdata[2]:.3f}]"
                           f"<br>n %{{customdata[0]}}<extra>{label}</extra>")), row=1, col=col)
        shown.add(preset)
    fig.update_xaxes(title_text=style.wrap(X_TITLE, 40) if cols == 1 else style.wrap(X_SHORT, 18))
    fig.update_yaxes(title_text=Y_TITLE, row=1, col=1)
    fig.update_layout(showlegend=True, legend=dict(title=dict(text="preset")))
    style.apply(fig, title)
    if subtitle:
        fig.update_layout(title=dict(subtitle=dict(text=subtitle)), margin=dict(t=80))
    return fig
