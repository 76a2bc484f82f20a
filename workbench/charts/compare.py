"""Compare charts: paired deltas with Student-t intervals and sign-flip marks, and similarity fronts over
IP-Adapter scales.  Pure functions: data in, ``go.Figure`` out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench.charts import style


def _meta(run_meta: dict, run_id: str) -> dict:
    return run_meta.get(run_id) or {"preset": None, "ip_scale": None, "label": run_id}


def _marked(r) -> bool:
    return bool(getattr(r, "significant", False))


def _p_text(r) -> str:
    p = getattr(r, "p", float("nan"))
    return "—" if pd.isna(p) else f"{p:.3g}"


def delta_forest(table: pd.DataFrame, run_meta: dict, metric: str, baseline: str | None = None,
                 title: str | None = None, labels: dict[str, str] | None = None) -> go.Figure:
    """Mean paired delta (run - its baseline) with its Student-t 95 % interval, one row per
    compared run; a filled marker where the sign-flip test marks the difference (p <= 0.05 with
    at least 6 pairs), an open one where it does not.

    ``table``: workbench.data.stats.paired_deltas output; a row whose run is its own baseline
    (``baseline_id``, or the ``baseline`` run) is left out.  ``baseline``: the one baseline
    run, or None when each run has its own (named in the hover text and the subtitle).
    ``labels``: run_id -> its axis label (e.g. what differs between the runs); default: preset
    and scale over the run id."""
    fig = go.Figure()
    t = table[table["name"] == metric].dropna(subset=["delta"])
    own = t["baseline_id"] if "baseline_id" in t else pd.Series([baseline] * len(t), index=t.index)
    t = t[t["run_id"] != own]
    t = t.loc[sorted(t.index, key=lambda i: style.run_order(
        t.at[i, "run_id"], _meta(run_meta, t.at[i, "run_id"])["preset"], _meta(run_meta, t.at[i, "run_id"])["ip_scale"]))]
    for r, base_id in zip(t.itertuples(index=False), own[t.index]):
        meta = _meta(run_meta, r.run_id)
        tick = (labels or {}).get(r.run_id) or style.run_tick(r.run_id, meta["preset"], meta["ip_scale"])
        fig.add_trace(go.Scatter(
            x=[r.delta], y=[tick], mode="markers", name=meta["label"],
            marker=dict(color=style.preset_color(meta["preset"]), size=11,
                        symbol=meta.get("symbol", "circle") + ("" if _marked(r) else "-open"),
                        line=dict(width=2, color=style.preset_color(meta["preset"]))),
            error_x=dict(type="data", symmetric=False, array=[r.hi - r.delta], arrayminus=[r.delta - r.lo],
                         thickness=2, width=6),
            hovertemplate=(f"Δ %{{x:.4f}} [{r.lo:.4f}, {r.hi:.4f}]<br>pairs {r.n_pairs}, p {_p_text(r)}"
                           f"<br>vs {_meta(run_meta, base_id)['label']}<extra>{meta['label']}</extra>")))
    fig.add_vline(x=0, line=dict(color="#444444", width=1, dash="dot"))
    fig.update_xaxes(title_text=style.wrap(f"Δ {metric}, run − baseline (95% t-interval)", 48))
    fig.update_yaxes(title_text="", automargin=True, autorange="reversed", type="category")
    sub = (f"baseline: {_meta(run_meta, baseline)['label']}" if baseline
           else "each run against the baseline run at its checkpoint and scales")
    sub += " · filled marker: sign-flip p ≤ 0.05 with ≥ 6 pairs"
    fig.update_layout(showlegend=False, height=style.rows_height(len(t), chrome=170))
    style.apply(fig, title or f"Paired difference in {metric}")
    fig.update_layout(title=dict(subtitle=dict(text=sub)), margin=dict(t=80))
    return fig


#: line dashes of the presets of one fronts chart, in turn: two presets on the same values still
#: both show (a dashed line over a solid one), and the markers of the IP scales differ too
FRONT_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SCALE_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")


def fronts(per_run: pd.DataFrame, x: str, y: str, run_meta: dict | None = None,
           title: str | None = None, x_title: str | None = None, y_title: str | None = None) -> go.Figure:
    """Trade-off fronts: one line per preset through its runs ordered by ip_scale.

    ``per_run``: run_id, preset, ip_scale, <x>, <y> (one row per run).  No text on the points
    (labels of presets that reach similar values overlap): the IP scale is the marker's symbol
    (its key in the legend, and in the hover), the preset the colour and the dash; later
    presets draw thinner lines on top, so a line on the same values as another still shows."""
    fig = go.Figure()
    d = per_run.dropna(subset=[x, y])
    scales = sorted({float(v) for v in d["ip_scale"].dropna()}) if "ip_scale" in d else []
    symbol = {v: SCALE_SYMBOLS[i % len(SCALE_SYMBOLS)] for i, v in enumerate(scales)}
    groups = sorted(d.groupby(d["preset"].fillna(style.UNKNOWN_PRESET), sort=False),
                    key=lambda kv: style.run_order("", kv[0], None))
    for i, (preset, g) in enumerate(groups):
        g = g.sort_values("ip_scale", na_position="last")
        labels = [("λ=" + f"{v:g}") if pd.notna(v) else "λ ?" for v in g["ip_scale"]]
        width = max(4.5 - 1.0 * i, 1.5)
        fig.add_trace(go.Scatter(
            x=g[x], y=g[y], mode="lines+markers", name=str(preset), text=labels,
            line=dict(color=style.preset_color(preset), width=width, dash=FRONT_DASHES[i % len(FRONT_DASHES)]),
            marker=dict(size=12 - min(i, 4), symbol=[symbol.get(float(v), "circle-open") if pd.notna(v)
                                                   else "circle-open" for v in g["ip_scale"]],
                        line=dict(width=1, color="white")),
            customdata=g[["run_id"]].to_numpy(),
            hovertemplate=f"{x} %{{x:.4g}}<br>{y} %{{y:.4g}}<br>%{{text}} · %{{customdata[0]}}<extra>{preset}</extra>"))
    for v in scales:  # the key of the markers: one legend entry per IP scale
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"λ={v:g}", legendgroup="scales",
                                 marker=dict(size=10, symbol=symbol[v], color="#666666"), hoverinfo="skip"))
    fig.update_xaxes(title_text=style.wrap(x_title or x))
    fig.update_yaxes(title_text=style.wrap(y_title or y))
    return style.apply(fig, title or f"{y_title or y} vs {x_title or x} over IP-Adapter scales")
