"""The Attention page's "balance" section (issue 27): how much of each decoupled block's output
comes from the ID term against the text term, per site and step for each run, and how AM1 / AM2
change it against the baseline run of the same ip scale, on the whole image and inside / outside
the generated face box.  Reads the balance view (scalars written with each sample) through
workbench/data/sql/balance.sql; charts: workbench/charts/balance.py.

Rendered in the last tab of views/attention.py; runs are labelled by what differs between them
(workbench.data.labels through queries.run_labels), what they share in one caption.
"""

import streamlit as st

from workbench.charts import balance as balance_charts
from workbench.data import export, queries

BRANCHES = ("text_id", "text", "id", "uncond")


def render(run_ids: list[str], meta: dict, labels=None) -> None:
    """``labels``: workbench.data.labels.RunLabels of ``run_ids`` (None: meta's labels)."""
    if labels is not None:
        meta = {r: {**meta[r], "label": labels.labels.get(r, meta[r].get("label", r))} for r in run_ids}
    st.caption("Per decoupled block z = Attention(Q, K, V) + λ·Ã V′: the ID share id / (id + text) of the mean "
               "per-query norms of the two terms (λ and AM included), averaged over samples."
               + (f" All runs: {labels.common}." if labels is not None and labels.common else ""))
    c = st.columns([1, 1, 2])
    branch = c[0].selectbox("Branch", BRANCHES, key="bal_branch")
    params = dict(run_ids=run_ids, branch=branch)
    df = queries.query("balance", **params)
    rank = {r: i for i, r in enumerate(run_ids)}  # the page's run order (baselines first) for legends
    df = df.assign(_o=df["run_id"].map(rank)).sort_values(["_o", "site", "step"], kind="stable").drop(columns="_o")
    if df.empty:
        st.info("The chosen runs recorded no balance for this branch: it is captured with every probe since "
                "the balance table exists (capture again; older runs have none).")
        return
    missing = [meta[r]["label"] for r in run_ids if r not in set(df["run_id"])]
    if missing:
        st.caption("No balance in: " + ", ".join(missing))
    fig = balance_charts.share_by_step(df, meta)
    export.show(fig, key="bal_steps", page="Attention statistics", provenance=queries.provenance("balance", **params),
                theme=None)
    changes = balance_charts.against_baseline(df, meta)
    if changes.empty:
        st.caption("No run pairs with a baseline run of the same ip scale among the chosen runs: "
                   "choose a baseline run beside AM1 / AM2 runs to see the change.")
    else:
        fig = balance_charts.change_bars(changes, meta)
        export.show(fig, key="bal_change", page="Attention statistics",
                    provenance=queries.provenance("balance", **params), theme=None)
        n_face = df.groupby("run_id")["n_face"].max()
        st.caption("Face box: samples with a detected generated face per run: " + ", ".join(
            f"{meta[r]['label']} {int(n)}" for r, n in n_face.items()) + " (the others are left out of the box split).")
    runs_here = list(dict.fromkeys(df["run_id"]))
    queries.keep_valid("bal_run", runs_here)
    run = c[1].selectbox("Run (heatmap)", runs_here, key="bal_run", format_func=lambda r: meta[r]["label"])
    region = c[2].radio("Region", list(balance_charts.REGIONS), key="bal_region", horizontal=True,
                        format_func=balance_charts.REGIONS.get)
    fig = balance_charts.share_heatmap(df, run, meta, value=region)
    export.show(fig, key="bal_heatmap", page="Attention statistics",
                provenance=queries.provenance("balance", **params), theme=None)
