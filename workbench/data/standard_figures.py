"""The Figures page's standard figures: each one runs its own query for the chosen runs (the
same queries and chart functions as the pages that show it), so a fresh session shows all of
them without visiting those pages first.

``build(run_ids, run_meta, model=None)`` returns one :class:`Standard` per figure, in the
page's order; a figure whose data is missing has ``fig=None`` and a ``note`` that says why and
what makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go

from workbench.charts import attention as attention_charts
from workbench.charts import faces as faces_charts
from workbench.charts import figures as figure_charts
from workbench.data import binning, queries

PROTOCOL_TAG = "#protocol="
N_BINS = 5


@dataclass
class Standard:
    key: str
    title: str
    fig: go.Figure | None
    provenance: dict = field(default_factory=dict)
    note: str = ""


def score_models(df: pd.DataFrame) -> list[str]:
    """Models that scored both id_sim and face_size of some sample, those of ``fastface
    evaluate`` (tagged '#protocol=') first, then the capture's own scorer."""
    both = df.dropna(subset=["id_sim", "face_size"])
    models = sorted(set(both["model"]))
    return sorted(models, key=lambda m: (PROTOCOL_TAG not in m, m))


def short_model(model: str) -> str:
    """'dlib/face_recognition_resnet_model_v1@46ab12c9#protocol=corrected' -> 'dlib (evaluate,
    protocol corrected)'; a capture scorer's name is kept."""
    base, _, proto = model.partition(PROTOCOL_TAG)
    head = base.split("/")[0].split("@")[0]
    return f"{head} (evaluate, protocol {proto})" if proto else f"{head} (capture)"


def id_sim_face_size(run_ids: list[str], run_meta: dict, model: str | None = None) -> Standard:
    title = "ID similarity vs generated face size"
    df = queries.query("id_sim_face_size", run_ids=run_ids)
    prov = queries.provenance("id_sim_face_size", run_ids=run_ids)
    models = score_models(df)
    if not models:
        return Standard("std_id_sim_size", title, None, prov,
                        "No sample has both id_sim and face_size yet: `fastface evaluate --store STORE "
                        "--metrics id,face-size` writes them (the demo does, after its capture).")
    model = model if model in models else models[0]
    d = df[df["model"] == model]
    ok = d.dropna(subset=["id_sim", "face_size"])
    left_out = len(d) - len(ok)
    edges = binning.bin_edges(ok["face_size"], N_BINS)
    binned = binning.binned_means(ok, "face_size", "id_sim", "run_id", edges)
    scales = sorted({run_meta.get(r, {}).get("ip_scale") for r in ok["run_id"]}, key=lambda v: (v is None, v))
    sub = (f"{short_model(model)} · {len(ok)} samples in {N_BINS} size bins, mean ± 95% CI"
           + (f" · {left_out} without a detected face left out" if left_out else "")
           + (f" · λ = {scales[0]:g}" if len(scales) == 1 and scales[0] is not None else ""))
    fig = figure_charts.id_sim_vs_face_size(ok, binned, run_meta, title=title, subtitle=sub)
    prov = prov | {"model": model, "bins": [float(e) for e in edges], "n_samples": int(len(ok)),
                   "n_left_out": int(left_out)}
    return Standard("std_id_sim_size", title, fig, prov, sub)


#: panels per row of the histogram figure at each journal column width (panel titles stay apart)
HIST_COLS = {"single": 3, "double": 4}


def attention_hist(run_ids: list[str], run_meta: dict, column: str = "single") -> Standard:
    params = dict(run_ids=run_ids, part=None, block=None, step=None, token=None, branch=None)
    hist = queries.query("hist_sum", **params)
    prov = queries.provenance("hist_sum", **params)
    if hist.empty:
        return Standard("std_hist", "Attention values pre vs post", None, prov,
                        "No attention histograms in the chosen runs (captured with `--capture summaries_only` "
                        "or later, or no sample yet).")
    labels = {r: (run_meta.get(r) or {}).get("short") or (run_meta.get(r) or {}).get("label") or r for r in run_ids}
    order = [r for r in run_ids if r in set(hist["run_id"])]
    fig = attention_charts.hist_facets(hist, run_meta, labels, order, cols=HIST_COLS.get(column, 4))  # one panel per run
    return Standard("std_hist", _title(fig, "Attention values pre vs post"), fig, prov)


def faces(run_ids: list[str], run_meta: dict) -> list[Standard]:
    rows = queries.query("faces_generated", run_ids=run_ids)
    prov = queries.provenance("faces_generated", run_ids=run_ids)
    none = "No generated-face rows in the chosen runs yet (the capture's face scorer writes them per sample)."
    out = []
    for key, column, title in (("std_face_size", "area_ratio", "Generated face size per run"),
                               ("std_face_sim", "similarity", "ID similarity per run")):
        detected = rows[rows["detected"].fillna(False).astype(bool)] if not rows.empty else rows
        if detected.empty or detected[column].dropna().empty:
            out.append(Standard(key, title, None, prov, none))
            continue
        fig = faces_charts.distribution(rows, run_meta, column)
        out.append(Standard(key, _title(fig, title), fig, prov))
    counts = queries.query("face_counts", run_ids=run_ids)
    prov = queries.provenance("face_counts", run_ids=run_ids)
    if counts.empty:
        out.append(Standard("std_ffc", "Face fail count (FFC) per run", None, prov, none))
    else:
        fig = faces_charts.ffc_bars(counts, run_meta)
        out.append(Standard("std_ffc", _title(fig, "Face fail count (FFC) per run"), fig, prov))
    return out


def _title(fig: go.Figure, default: str) -> str:
    t = fig.layout.title.text if fig.layout.title and fig.layout.title.text else default
    return str(t).replace("<br>", " ")


def build(run_ids: list[str], run_meta: dict, model: str | None = None, column: str = "single") -> list[Standard]:
    """Every standard figure of the chosen runs, in the Figures page's order."""
    return [id_sim_face_size(run_ids, run_meta, model), *faces(run_ids, run_meta),
            attention_hist(run_ids, run_meta, column)]


def models_of(run_ids: list[str]) -> list[str]:
    """The scoring models the ID-similarity figure can use (for the page's choice)."""
    return score_models(queries.query("id_sim_face_size", run_ids=run_ids))
