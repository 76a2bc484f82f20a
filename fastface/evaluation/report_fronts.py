"""Fronts of ``fastface report``: per (checkpoint, lora_scale), ID similarity against CLIP / AE /
IR, one line per preset through its IP-Adapter scales, and the Pareto-optimal runs (no other run
of the group is at least as good on both axes and better on one)."""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

FRONT_X = ("clip", "ae", "ir")


def pareto_mask(x: Sequence[float], y: Sequence[float]) -> list[bool]:
    """Non-dominated points when maximising both x and y (NaN points are never optimal)."""
    pts = list(zip(x, y))
    out = []
    for i, (xi, yi) in enumerate(pts):
        if any(math.isnan(v) for v in (xi, yi)):
            out.append(False)
            continue
        dominated = any(j != i and not math.isnan(xj) and not math.isnan(yj) and xj >= xi and yj >= yi
                        and (xj > xi or yj > yi) for j, (xj, yj) in enumerate(pts))
        out.append(not dominated)
    return out


def fronts_table(joint: pd.DataFrame) -> pd.DataFrame:
    """Per (checkpoint, lora_scale) and x in CLIP/AE/IR: the runs' (x, ID) with Pareto flags."""
    cols = ["checkpoint", "lora_scale", "x_metric", "run_id", "preset", "ip_scale", "x", "id", "n_x", "n_id", "pareto"]
    if joint.empty or "id_mean" not in joint:
        return pd.DataFrame(columns=cols)
    rows = []
    for (ck, lora), g in joint.groupby([joint["checkpoint"].fillna(""), joint["lora_scale"].fillna(-1.0)], sort=True):
        for xk in FRONT_X:
            if f"{xk}_mean" not in g or g[f"{xk}_mean"].isna().all() or g["id_mean"].isna().all():
                continue
            flags = pareto_mask(g[f"{xk}_mean"].tolist(), g["id_mean"].tolist())
            for (_, r), p in zip(g.iterrows(), flags):
                rows.append({"checkpoint": ck, "lora_scale": None if lora == -1.0 else lora, "x_metric": xk,
                             "run_id": r["run_id"], "preset": r["preset"], "ip_scale": r["ip_scale"],
                             "x": r[f"{xk}_mean"], "id": r["id_mean"], "n_x": r[f"{xk}_n"], "n_id": r["id_n"],
                             "pareto": p})
    return pd.DataFrame(rows, columns=cols)


def front_figures(fronts: pd.DataFrame, titles: dict[str, str], protocol: str = "corrected"
                  ) -> list[tuple[str, object]]:
    """(name, plotly figure) per (checkpoint, lora_scale, x metric)."""
    from workbench.charts.compare import fronts as fronts_chart
    from workbench.charts.style import run_label, run_symbols

    out = []
    if fronts.empty:
        return out
    for (ck, lora, xk), g in fronts.groupby(["checkpoint", fronts["lora_scale"].fillna(-1.0), "x_metric"], sort=True):
        per_run = g.rename(columns={"x": titles[xk], "id": titles["id"]})
        syms = run_symbols([(r.run_id, r.preset, r.ip_scale) for r in g.itertuples()])
        meta = {r.run_id: {"preset": r.preset, "ip_scale": r.ip_scale, "symbol": syms[r.run_id],
                           "label": run_label(r.run_id, r.preset, r.ip_scale)} for r in g.itertuples()}
        lora_txt = "" if lora == -1.0 else f", LoRA {lora:g}"
        fig = fronts_chart(per_run, x=titles[xk], y=titles["id"], run_meta=meta,
                           title=f"{titles['id']} vs {titles[xk]} over IP-Adapter scales ({ck}{lora_txt}; "
                                 f"{protocol} protocol)")
        pareto = g[g["pareto"]]
        if len(pareto):
            import plotly.graph_objects as go

            fig.add_trace(go.Scatter(x=pareto["x"], y=pareto["id"], mode="markers", name="Pareto-optimal",
                                     marker=dict(symbol="circle-open", size=17, color="#222222", line=dict(width=2)),
                                     hoverinfo="skip"))
        lora_name = "" if lora == -1.0 else f"_lora{lora:g}"
        out.append((f"front_{ck or 'unknown'}{lora_name}_{xk}", fig))
    return out
