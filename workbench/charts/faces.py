"""Face charts (paper Fig. 18): face-size and similarity distributions per run (box + every point), similarity vs
face size, face-fail counts.  Pure functions: data in, ``go.Figure`` out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from workbench.charts import style

LABELS = {"area_ratio": "generated face size (bbox area / image area)",
          "similarity": "ID similarity (cosine to reference)"}


def _meta(run_meta: dict, run_id: str) -> dict:
    return run_meta.get(run_id) or {"preset": None, "ip_scale": None, "label": run_id}


def tick_label(run_id: str, meta: dict) -> str:
    """Axis label of a run: ``meta['short']`` (what differs between the runs shown, e.g.
    'ff-am2 · λ=0.8') when the page gave one, else preset and scale over the run id."""
    return meta.get("short") or style.run_tick(run_id, meta.get("preset"), meta.get("ip_scale"))


def _per_run_layout(fig: go.Figure, n_runs: int) -> None:
    """Runs as rows (first on top), one ROW_HEIGHT each: two-line run labels never overlap,
    however many runs and however narrow the column."""
    fig.update_yaxes(autorange="reversed", automargin=True, type="category")
    fig.update_layout(height=style.rows_height(n_runs))


def _ordered_runs(df: pd.DataFrame, run_meta: dict) -> list[str]:
    runs = list(dict.fromkeys(df["run_id"])) if not df.empty else []
    return sorted(runs, key=lambda r: style.run_order(r, _meta(run_meta, r)["preset"], _meta(run_meta, r)["ip_scale"]))


def distribution(df: pd.DataFrame, run_meta: dict, column: str = "area_ratio",
                 title: str | None = None) -> go.Figure:
    """Box (quartiles, mean dashed) with every value as a point, per run (detected generated
    faces only); runs are rows, values along x.  No density smoothing: a face size that takes a
    few discrete values (one box per identity in the face world) shows as a few columns of
    points, with the number of samples at each value in the hover, not as a smeared band."""
    fig = go.Figure()
    d = df[df["detected"].fillna(False).astype(bool)] if "detected" in df else df
    runs = _ordered_runs(d, run_meta)
    for run_id in runs:
        g = d[d["run_id"] == run_id]
        vals = g[column].dropna()
        if vals.empty:
            continue
        meta = _meta(run_meta, run_id)
        color = style.preset_color(meta["preset"])
        tick = tick_label(run_id, meta)
        same = vals.round(6).map(vals.round(6).value_counts())  # samples sharing each value
        fig.add_trace(go.Box(
            x=vals, y=[tick] * len(vals), orientation="h", name=meta.get("short") or meta["label"],
            boxpoints="all", jitter=0.6, pointpos=0, boxmean=True, line=dict(color=color, width=1.5),
            fillcolor="rgba(0,0,0,0)", marker=dict(color=color, size=6, opacity=0.65, line=dict(width=0)),
            customdata=np.stack([same.to_numpy()], axis=-1),
            hovertemplate=f"{column} %{{x:.3f}} (%{{customdata[0]}} samples at this value)"
                          f"<extra>{meta.get('short') or meta['label']}</extra>"))
    fig.update_xaxes(title_text=style.wrap(LABELS.get(column, column)))
    fig.update_yaxes(title_text="")
    _per_run_layout(fig, len(runs))
    fig.update_layout(showlegend=False, boxgap=0.3)
    return style.apply(fig, title or f"{LABELS.get(column, column).split(' (')[0]} per run")


def similarity_vs_size(df: pd.DataFrame, run_meta: dict,
                       title: str = "ID similarity vs generated face size") -> go.Figure:
    """Scatter of similarity against face size, one trace per run; each point carries
    (run_id, sample_key) in customdata so a selection can open the sample."""
    fig = go.Figure()
    d = df[df["detected"].fillna(False).astype(bool)] if "detected" in df else df
    d = d.dropna(subset=["area_ratio", "similarity"])
    for run_id in _ordered_runs(d, run_meta):
        g = d[d["run_id"] == run_id]
        meta = _meta(run_meta, run_id)
        custom = np.stack([g["run_id"].astype(str), g["sample_key"].astype(str),
                           g.get("identity", pd.Series([""] * len(g), index=g.index)).astype(str),
                           g.get("prompt", pd.Series([""] * len(g), index=g.index)).astype(str)], axis=-1)
        fig.add_trace(go.Scatter(
            x=g["area_ratio"], y=g["similarity"], mode="markers", name=meta.get("short") or meta["label"],
            marker=dict(color=style.preset_color(meta["preset"]), size=10, symbol=meta.get("symbol", "circle"),
                        line=dict(width=0.5, color="white")),
            customdata=custom,
            hovertemplate=("size %{x:.3f}<br>similarity %{y:.3f}<br>%{customdata[2]}: %{customdata[3]}"
                           f"<extra>{meta.get('short') or meta['label']}</extra>")))
    fig.update_xaxes(title_text=style.wrap(LABELS["area_ratio"]))
    fig.update_yaxes(title_text=style.wrap(LABELS["similarity"]))
    return style.apply(fig, title)


def ffc_bars(counts: pd.DataFrame, run_meta: dict, title: str = "Face fail count (FFC) per run") -> go.Figure:
    """Horizontal bars of ffc per run (runs as rows), annotated 'ffc / evaluated'.
    ``counts``: face_summary rows."""
    fig = go.Figure()
    order = {r: i for i, r in enumerate(_ordered_runs(counts, run_meta))}
    for r in sorted(counts.itertuples(index=False), key=lambda r: order[r.run_id]):
        meta = _meta(run_meta, r.run_id)
        fig.add_trace(go.Bar(
            y=[tick_label(r.run_id, meta)], x=[r.ffc], orientation="h", name=meta["label"],
            marker_color=style.preset_color(meta["preset"]),
            text=[f"{r.ffc} / {r.n_evaluated}"], textposition="outside", cliponaxis=False,
            hovertemplate=f"FFC %{{x}} of {r.n_evaluated} evaluated<extra>{meta['label']}</extra>"))
    top = float(counts["ffc"].max()) if len(counts) else 0.0
    fig.update_xaxes(title_text="samples without a detected face", range=[0, max(top, 1.0) * 1.25])
    fig.update_yaxes(title_text="")
    _per_run_layout(fig, len(counts))
    fig.update_layout(showlegend=False)
    return style.apply(fig, title)
