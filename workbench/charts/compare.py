"""Compare charts: paired deltas with confidence intervals, and similarity fronts over
IP-Adapter scales.  Pure functions: data in, ``go.Figure`` out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench.charts import style


def _meta(run_meta: dict, run_id: str) -> dict:
    return run_meta.get(run_id) or {"preset": None, "ip_scale": None, "label": run_id}


def delta_forest(table: pd.DataFrame, run_meta: dict, metric: str, baseline: str | None = None,
                 title: str | None = None) -> go.Figure:
    """Mean paired delta (run - its baseline) with its bootstrap CI, one row per compared run.

    ``table``: workbench.data.stats.paired_deltas output; a row whose run is its own baseline
    (``baseline_id``, or the ``baseline`` run) is left out.  ``baseline``: the one baseline
    run, or None when each run has its own (named in the hover text and the subtitle)."""
    fig = go.Figure()
    t = table[table["name"] == metric].dropna(subset=["delta"])
    own = t["baseline_id"] if "baseline_id" in t else pd.Series([baseline] * len(t), index=t.index)
    t = t[t["run_id"] != own]
    t = t.loc[sorted(t.index, key=lambda i: style.run_order(
        t.at[i, "run_id"], _meta(run_meta, t.at[i, "run_id"])["preset"], _meta(run_meta, t.at[i, "run_id"])["ip_scale"]))]
    for r, base_id in zip(t.itertuples(index=False), own[t.index]):
        meta = _meta(run_meta, r.run_id)
        tick = style.run_tick(r.run_id, meta["preset"], meta["ip_scale"])
        fig.add_trace(go.Scatter(
            x=[r.delta], y=[tick], mode="markers", name=meta["label"],
            marker=dict(color=style.preset_color(meta["preset"]), size=11, symbol=meta.get("symbol", "circle")),
            error_x=dict(type="data", symmetric=False, array=[r.hi - r.delta], arrayminus=[r.delta - r.lo],
                         thickness=2, width=6),
            hovertemplate=(f"Δ %{{x:.4f}} [{r.lo:.4f}, {r.hi:.4f}]<br>pairs {r.n_pairs}"
                           f"<br>vs {_meta(run_meta, base_id)['label']}<extra>{meta['label']}</extra>")))
    fig.add_vline(x=0, line=dict(color="#444444", width=1, dash="dot"))
    fig.update_xaxes(title_text=style.wrap(f"Δ {metric}, run − baseline (95% CI)"))
    fig.update_yaxes(title_text="", automargin=True, autorange="reversed", type="category")
    sub = (f"baseline: {_meta(run_meta, baseline)['label']}" if baseline
           else "each run against the baseline run at its checkpoint and scales")
    fig.update_layout(showlegend=False, height=style.rows_height(len(t), chrome=170))
    style.apply(fig, title or f"Paired difference in {metric}")
    fig.update_layout(title=dict(subtitle=dict(text=sub)), margin=dict(t=80))
    return fig


def fronts(per_run: pd.DataFrame, x: str, y: str, run_meta: dict | None = None,
           title: str | None = None, x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """Trade-off fronts: one line per preset through its runs ordered by ip_scale.

    ``per_run``: run_id, preset, ip_scale, <x>, <y> (one row per run)."""
    fig = go.Figure()
    d = per_run.dropna(subset=[x, y])
    for preset, g in d.groupby(d["preset"].fillna(style.UNKNOWN_PRESET), sort=True):
        g = g.sort_values("ip_scale", na_position="last")
        labels = [("λ=" + f"{v:g}") if pd.notna(v) else "" for v in g["ip_scale"]]
        fig.add_trace(go.Scatter(
            x=g[x], y=g[y], mode="lines+markers+text", name=str(preset), text=labels,
            textposition="top center", line=dict(color=style.preset_color(preset), width=2),
            marker=dict(size=9), customdata=g[["run_id"]].to_numpy(),
            hovertemplate=f"{x} %{{x:.4g}}<br>{y} %{{y:.4g}}<br>%{{text}} · %{{customdata[0]}}<extra>{preset}</extra>"))
    fig.update_xaxes(title_text=style.wrap(x_title or x))
    fig.update_yaxes(title_text=style.wrap(y_title or y))
    return style.apply(fig, title or f"{y_title or y} vs {x_title or x} over IP-Adapter scales")
