"""Face-mass charts of the Attention page: the mass in the generated face box across runs, per
UNet part and token group.  Pure functions: data in, ``go.Figure`` out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.charts import style

PARTS = ("down", "mid", "up")
#: token groups in a fixed colour order (not the presets' colours: presets are the rows)
TOKEN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
VALUES = {"ratio": "mass ÷ area share (1 = uniform)", "mass": "mass in the face box"}


def across_runs(df: pd.DataFrame, labels: dict[str, str], order: list[str], value: str = "ratio",
                title: str | None = None) -> go.Figure:
    """One panel per UNet part, one row per run (``order``, labelled by ``labels``), one bar per
    token group with its interval (``df``: workbench.data.face_mass.across_runs).  ``value``:
    'ratio' (mass / area share, a line at 1) or 'mass' (the area share as a black tick)."""
    parts = [p for p in PARTS if p in set(df["part"])] + sorted(set(df["part"].dropna()) - set(PARTS))
    parts = parts or list(PARTS)
    fig = make_subplots(rows=1, cols=len(parts), shared_yaxes=True, subplot_titles=parts,
                        horizontal_spacing=0.03)
    groups = list(dict.fromkeys(df["tokens"])) if not df.empty else []
    y_of = {r: labels.get(r, r) for r in order}
    for col, part in enumerate(parts, start=1):
        sub = df[df["part"] == part]
        for k, group in enumerate(groups):
            g = sub[sub["tokens"] == group].set_index("run_id").reindex([r for r in order if r in set(sub["run_id"])])
            g = g.dropna(subset=["tokens"])
            if g.empty:
                continue
            x, lo, hi = g[value], g[f"{value}_lo"], g[f"{value}_hi"]
            fig.add_trace(go.Bar(
                x=x, y=[y_of[r] for r in g.index], orientation="h", name=group, legendgroup=group,
                showlegend=col == 1, marker_color=TOKEN_COLORS[k % len(TOKEN_COLORS)],
                error_x=dict(type="data", symmetric=False, array=hi - x, arrayminus=x - lo, thickness=1.2,
                             width=3, color="#222222"),
                customdata=list(zip(g["mass"], g["share"], g["ratio"], g["n_samples"], g["n_maps"], lo, hi)),
                hovertemplate=(f"{part} · {group}<br>%{{y}}<br>mass %{{customdata[0]:.3f}} · area share "
                               "%{customdata[1]:.3f}<br>ratio %{customdata[2]:.2f}<br>interval %{customdata[5]:.3f}"
                               "–%{customdata[6]:.3f}<br>%{customdata[3]} samples, %{customdata[4]} maps"
                               "<extra></extra>")), row=1, col=col)
        if value == "mass" and not sub.empty:
            share = sub.groupby("run_id")["share"].mean().reindex([r for r in order if r in set(sub["run_id"])])
            fig.add_trace(go.Scatter(
                x=share, y=[y_of[r] for r in share.index], mode="markers", name="box area share",
                legendgroup="share", showlegend=col == 1,
                marker=dict(symbol="line-ns-open", size=18, color="black", line=dict(width=2.5)),
                hovertemplate="%{y}<br>box area share %{x:.3f}<extra></extra>"), row=1, col=col)
        elif value == "ratio":
            fig.add_vline(x=1.0, line=dict(color="#444444", dash="dash", width=1), row=1, col=col)
        fig.update_xaxes(title_text=VALUES[value] if col == (len(parts) + 1) // 2 else None, rangemode="tozero",
                         row=1, col=col)
    fig.update_yaxes(autorange="reversed", type="category",
                     categoryarray=[y_of[r] for r in order], categoryorder="array")
    n_rows = max(len(order), 1)
    fig.update_layout(barmode="group", bargap=0.25, height=style.rows_height(n_rows * max(len(groups), 1) / 2 + 1),
                      legend=dict(orientation="h", x=0, xanchor="left", yref="container", y=0, yanchor="bottom"),
                      margin=dict(b=100))
    return style.apply(fig, title or "Attention mass in the generated face box, per UNet part")
