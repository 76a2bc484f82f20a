"""The ID-versus-text balance of the decoupled blocks (issue 27): pure functions, data in
(rows of workbench/data/sql/balance.sql), ``go.Figure`` or DataFrame out.

- :func:`share_by_step`: the ID share per step, one line per run, one panel per UNet part;
- :func:`share_heatmap`: one run's ID share per site (rows) and step (columns);
- :func:`against_baseline`: each run's change of share against the baseline run of the same
  ip scale (AM1 and AM2 against baseline), overall and inside / outside the face box;
- :func:`change_bars`: that change per part, one bar per run and region.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.charts import style
from workbench.charts.attention import short_site

PARTS = ("down", "mid", "up")
REGIONS = {"id_share": "whole image", "id_share_in_box": "in face box", "id_share_out_box": "outside face box"}


def _legend_below(fig: go.Figure, plot_height: int) -> None:
    """A horizontal legend under the plot, 4 entries a row, the figure as tall as it needs: the
    legend never scrolls and never takes the plot's width, at any number of runs."""
    n = len({t.name for t in fig.data if t.showlegend is not False and t.name})
    rows = -(-n // 4)
    fig.update_layout(height=plot_height + 24 * rows, margin=dict(b=80 + 24 * rows),
                      legend=dict(orientation="h", x=0, xanchor="left", yref="container", y=0, yanchor="bottom",
                                  entrywidth=0.24, entrywidthmode="fraction"))


def _meta(run_meta: dict, run_id: str) -> dict:
    return run_meta.get(run_id) or {"preset": None, "ip_scale": None, "label": run_id}


def _weighted(g: pd.DataFrame, col: str) -> float:
    """Mean of ``col`` over sites, each site weighted by its samples (NaN rows left out)."""
    ok = g[col].notna()
    w = g.loc[ok, "n_face" if col != "id_share" else "n_samples"]
    return float(np.average(g.loc[ok, col], weights=w)) if ok.any() and w.sum() > 0 else float("nan")


def share_by_step(df: pd.DataFrame, run_meta: dict, *, title: str = "ID share of the block output per step") -> go.Figure:
    """Lines: x = step, y = mean ID share over the part's sites; one panel per part present."""
    parts = [p for p in PARTS if p in set(df["part"])]
    fig = make_subplots(rows=1, cols=max(len(parts), 1), shared_yaxes=True, subplot_titles=parts)
    for run_id, g in df.groupby("run_id", sort=False):
        m = _meta(run_meta, run_id)
        for k, part in enumerate(parts, start=1):
            gp = g[g["part"] == part]
            steps = sorted(gp["step"].unique())
            y = [_weighted(gp[gp["step"] == s], "id_share") for s in steps]
            fig.add_trace(go.Scatter(x=steps, y=y, mode="lines+markers", name=m["label"], legendgroup=run_id,
                                     showlegend=k == 1, line=dict(color=style.preset_color(m["preset"])),
                                     marker=dict(symbol=m.get("symbol", "circle"))),
                          row=1, col=k)
            fig.update_xaxes(title_text="step", dtick=1, row=1, col=k)
    fig.update_yaxes(title_text="id / (id + text)", row=1, col=1)
    _legend_below(fig, 380)
    fig.update_layout(title=title)
    return fig


def share_heatmap(df: pd.DataFrame, run_id: str, run_meta: dict, *, value: str = "id_share") -> go.Figure:
    """One run: site (rows, UNet order) x step (columns), colour = the ID share."""
    g = df[df["run_id"] == run_id]
    sites = list(dict.fromkeys(g["site"]))
    steps = sorted(g["step"].unique())
    z = g.pivot_table(index="site", columns="step", values=value, aggfunc="mean").reindex(index=sites, columns=steps)
    fig = go.Figure(go.Heatmap(z=z.values, x=[str(s) for s in steps], y=[short_site(s) for s in sites],
                               colorscale="Viridis", zmin=0, zmax=1, colorbar=dict(title="ID share"),
                               hovertemplate="%{y} step %{x}: %{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"ID share per site and step · {_meta(run_meta, run_id)['label']} · {REGIONS[value]}",
                      height=max(300, 20 * len(sites) + 140), xaxis=dict(title="step", type="category"),
                      yaxis=dict(type="category", dtick=1, autorange="reversed"))  # every step and site named
    return fig


def baseline_of(run_meta: dict, run_ids: list[str]) -> dict[str, str]:
    """run -> the baseline run with the same ip scale among ``run_ids`` (runs without one are left out)."""
    base = {_meta(run_meta, r)["ip_scale"]: r for r in run_ids if _meta(run_meta, r)["preset"] == "baseline"}
    return {r: base[_meta(run_meta, r)["ip_scale"]] for r in run_ids
            if _meta(run_meta, r)["preset"] != "baseline" and _meta(run_meta, r)["ip_scale"] in base}


def against_baseline(df: pd.DataFrame, run_meta: dict) -> pd.DataFrame:
    """Per run (not baseline), part and region: mean share, the baseline's, and the change.
    Columns: run_id, baseline, part, region, share, base_share, change."""
    pairs = baseline_of(run_meta, list(dict.fromkeys(df["run_id"])))
    rows = []
    for run_id, base_id in pairs.items():
        for part in PARTS:
            g, b = df[(df["run_id"] == run_id) & (df["part"] == part)], df[(df["run_id"] == base_id) & (df["part"] == part)]
            if g.empty or b.empty:
                continue
            for col in REGIONS:
                s, bs = _weighted(g, col), _weighted(b, col)
                rows.append({"run_id": run_id, "baseline": base_id, "part": part, "region": REGIONS[col],
                             "share": s, "base_share": bs, "change": s - bs})
    return pd.DataFrame(rows, columns=["run_id", "baseline", "part", "region", "share", "base_share", "change"])


def change_bars(changes: pd.DataFrame, run_meta: dict, *, title: str = "Change of the ID share against baseline") -> go.Figure:
    """Bars: x = part, y = change of share; one bar group per run, one panel per region."""
    regions = [r for r in REGIONS.values() if r in set(changes["region"])]
    fig = make_subplots(rows=1, cols=max(len(regions), 1), shared_yaxes=True, subplot_titles=regions)
    for run_id, g in changes.groupby("run_id", sort=False):
        m = _meta(run_meta, run_id)
        for k, region in enumerate(regions, start=1):
            gr = g[g["region"] == region]
            fig.add_trace(go.Bar(x=gr["part"], y=gr["change"], name=m["label"], legendgroup=run_id, showlegend=k == 1,
                                 marker_color=style.preset_color(m["preset"]),
                                 customdata=np.stack([gr["base_share"], gr["share"]], axis=1) if len(gr) else None,
                                 hovertemplate="%{x}: %{customdata[0]:.3f} -> %{customdata[1]:.3f} (%{y:+.3f})"
                                               "<extra></extra>"),
                          row=1, col=k)
    fig.add_hline(y=0, line_width=1, line_color="grey")
    fig.update_yaxes(title_text="Δ id / (id + text)", row=1, col=1)
    _legend_below(fig, 380)
    fig.update_layout(title=title, barmode="group")
    return fig
