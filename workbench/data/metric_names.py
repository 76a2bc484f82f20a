"""Short, unique names of the metric series on the Compare page (pure functions, no Streamlit).

One metric name (``id_sim``) may be computed by several models in one store (the capture's
``dlib`` and the evaluation's ``dlib/face_recognition_resnet_model_v1@46ab12c9#protocol=corrected``);
their values are never averaged together.  Each (metric, model) is one *series*:

* by default one series per metric: the model ``fastface report`` would read -- a model tagged
  with an evaluation protocol before an untagged one (``corrected`` before ``release``), a
  versioned one (with ``@``) before an unversioned one, then the one covering most samples --
  named by the metric alone (``id_sim``);
* with every model shown, a metric with several models gets the shortest suffix that tells
  them apart: the model's family (``id_sim (dlib)``), then with the protocol
  (``id_sim (dlib, corrected)``), then the version, then the full model string.

The full model string goes into the page's details (``catalog``), never into the name.
"""

from __future__ import annotations

import pandas as pd

from fastface.evaluation.protocol import PROTOCOLS, protocol_of, strip_protocol


def family(model: str) -> str:
    """'insightface/buffalo_l@ab12#protocol=corrected' -> 'insightface'; 'tiny:openai/x' -> 'openai'."""
    m = strip_protocol(str(model)).split("+", 1)[0]
    m = m[len("tiny:"):] if m.startswith("tiny:") else m
    return m.split("@", 1)[0].split("/", 1)[0]


def _version(model: str) -> str:
    m = strip_protocol(str(model))
    return m.split("@", 1)[1] if "@" in m else ""


def _tags(model: str, level: int) -> str:
    proto = protocol_of(model)
    parts = [family(model)]
    if level >= 1 and proto:
        parts.append(proto)
    if level >= 2 and _version(model):
        parts.insert(1, "@" + _version(model))
    return ", ".join(parts) if level < 3 else str(model)


def short_names(models: list[str]) -> dict[str, str]:
    """model -> the shortest tag that tells the models of one metric apart."""
    models = list(dict.fromkeys(models))
    for level in range(4):
        tags = {m: _tags(m, level) for m in models}
        if len(set(tags.values())) == len(models):
            return tags
    return {m: m for m in models}


def preferred_model(counts: pd.Series) -> str:
    """The model ``fastface report`` reads for a metric, from {model: number of values}."""
    def rank(m):
        proto = protocol_of(m)
        return (PROTOCOLS[::-1].index(proto) if proto in PROTOCOLS else len(PROTOCOLS),
                "@" not in strip_protocol(m), -int(counts[m]), m)

    return sorted(counts.index, key=rank)[0]


def name_series(values: pd.DataFrame, every_model: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(values with ``name`` = the series' short name, catalog) from ``metric_values`` rows
    (run_id, name, model, identity, prompt, seed, value).  ``catalog``: one row per shown
    series: name, metric, model, n_values, n_models (models of the metric in the store), shown
    by default.  Without ``every_model`` only the preferred model of each metric is kept."""
    cols = ["name", "metric", "model", "n_values", "n_models", "preferred"]
    if values.empty:
        return values.copy(), pd.DataFrame(columns=cols)
    v = values.assign(model=values["model"].fillna("").astype(str))
    rows, keep = [], []
    for metric, g in v.groupby("name", sort=True):
        counts = g.groupby("model").size()
        best = preferred_model(counts)
        models = list(counts.index) if every_model else [best]
        tags = short_names(list(counts.index))
        for m in models:
            name = metric if (len(models) == 1) else f"{metric} ({tags[m]})"
            rows.append({"name": name, "metric": metric, "model": m, "n_values": int(counts[m]),
                         "n_models": len(counts), "preferred": m == best})
            keep.append((metric, m, name))
    key = pd.DataFrame(keep, columns=["name", "model", "series"])
    out = v.merge(key, on=["name", "model"], how="inner").drop(columns=["name"]).rename(columns={"series": "name"})
    return out, pd.DataFrame(rows, columns=cols)
