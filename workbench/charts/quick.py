"""The generic charts: the SQL page's quick chart of a query result and the Runs page's progress
fraction (pure: data in, ``plotly.graph_objects.Figure`` out)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench.charts import style

QUICK_KINDS = ("scatter", "line", "bar")


def quick_chart(df: pd.DataFrame, x: str, y: str, kind: str = "scatter", color: str | None = None,
                title: str | None = None) -> go.Figure:
    """A quick chart of a query result: y against x, optionally one trace per value of color.

    A 'preset' colour column uses the presets' fixed colours."""
    if kind not in QUICK_KINDS:
        raise ValueError(f"kind must be one of {QUICK_KINDS}")
    fig = go.Figure()
    groups = [(None, df)] if not color else list(df.groupby(df[color].astype(str), sort=True))
    for name, g in groups:
        if kind == "line":
            g = g.sort_values(x)
        common = dict(x=g[x], y=g[y], name=str(name) if name is not None else y)
        if color == "preset":
            common["marker"] = dict(color=style.preset_color(name))
        if kind == "bar":
            fig.add_trace(go.Bar(**common))
        else:
            fig.add_trace(go.Scatter(mode="lines+markers" if kind == "line" else "markers", **common))
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    fig.update_layout(showlegend=bool(color))
    return style.apply(fig, title or f"{y} vs {x}")


def progress_fraction(n_done, n_total) -> float | None:
    """Fraction done of a run for a progress bar (None when unknown), clipped to [0, 1]."""
    try:
        done, total = float(n_done), float(n_total)
    except (TypeError, ValueError):
        return None
    if not total or total != total or done != done:
        return None
    return max(0.0, min(1.0, done / total))
