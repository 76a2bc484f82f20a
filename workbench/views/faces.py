"""Faces: generated face size and ID similarity per run (Fig. 18), similarity vs size (click a
point to open its sample), and the face fail count per run."""

import streamlit as st

from workbench.charts import faces as faces_charts
from workbench.data import export, queries

st.title("Faces")
path, all_runs, run_ids, meta = queries.chosen_runs_or_stop()
faces = queries.query("faces_generated", run_ids=run_ids)
counts = queries.query("face_counts", run_ids=run_ids)
# runs labelled by what differs between them (preset, IP scale, ...): every chart and table
shown = queries.run_labels(run_ids, all_runs)
meta = {r: dict(m, short=shown.labels[r]) if r in shown.labels else m for r, m in meta.items()}
label_of = lambda r: meta.get(r, {}).get("short") or meta.get(r, {"label": r})["label"]  # noqa: E731
if shown.common:
    st.caption(f"Runs labelled by what differs between them; all share: {shown.common}.")


def open_sample(run_id: str, sample_key: str) -> None:
    row = faces[(faces["run_id"] == run_id) & (faces["sample_key"] == sample_key)]
    if row.empty:
        return
    r = row.iloc[0]
    st.session_state[queries.STATE_FOCUS] = {"run_id": run_id, "sample_key": sample_key, "identity": r["identity"],
                                             "prompt": r["prompt"], "seed": int(r["seed"])}
    st.switch_page("views/samples.py")


st.subheader("Face fail count")
table = counts[["run_id", "n_ok", "n_evaluated", "n_faces_detected", "ffc", "ffc_rate", "mean_similarity"]].copy()
table.insert(1, "run", [label_of(r) for r in table["run_id"]])
st.dataframe(table.drop(columns=["run_id"]), hide_index=True, width="stretch", key="faces_ffc_table",
             column_config={"ffc": st.column_config.NumberColumn("FFC (no face)"),
                            "ffc_rate": st.column_config.NumberColumn("FFC rate", format="percent"),
                            "mean_similarity": st.column_config.NumberColumn("mean similarity", format="%.3f"),
                            "n_evaluated": st.column_config.NumberColumn("evaluated"),
                            "n_faces_detected": st.column_config.NumberColumn("faces found"),
                            "n_ok": st.column_config.NumberColumn("ok samples")})
if faces.empty:
    st.info("No face detection results in the chosen runs: faces are detected when samples are "
            "written (`fastface capture ...` with a face backend).")
    st.stop()

prov = queries.provenance("faces_generated", run_ids=run_ids)
if "detected" in faces and not faces["detected"].fillna(False).astype(bool).any():
    st.warning(f"No face was detected in any of the {len(faces)} generated images of these runs (FFC = 100%), "
               "so there are no face sizes or similarities to plot. Images of the tiny world (`--tiny`, "
               "`fastface demo`) are random-weight noise and never contain faces; real checkpoints do.")
    export.show(faces_charts.ffc_bars(counts, meta), key="faces_ffc", page="Faces",
                provenance=queries.provenance("face_counts", run_ids=run_ids), theme=None)
    st.stop()
c1, c2 = st.columns(2)
with c1:
    export.show(faces_charts.distribution(faces, meta, "area_ratio"), key="faces_size", page="Faces",
                provenance=prov, theme=None)
with c2:
    export.show(faces_charts.distribution(faces, meta, "similarity"), key="faces_sim", page="Faces",
                provenance=prov, theme=None)

# full width: the legend names every run, and one row per run in the bars
event = export.show(faces_charts.similarity_vs_size(faces, meta), key="faces_scatter", page="Faces",
                    provenance=prov, theme=None, on_select="rerun", selection_mode="points")
points = (event.get("selection", {}) or {}).get("points", []) if event else []
if points:
    cd = points[0].get("customdata")
    if cd:
        open_sample(str(cd[0]), str(cd[1]))
st.caption("Click a point to open that sample on the Samples page.")
export.show(faces_charts.ffc_bars(counts, meta), key="faces_ffc", page="Faces",
            provenance=queries.provenance("face_counts", run_ids=run_ids), theme=None)

with st.expander("Open a sample by name"):
    options = [(r.run_id, r.sample_key) for r in faces.itertuples(index=False)]
    labels = {(r.run_id, r.sample_key): f"{label_of(r.run_id)} · {r.identity} · "
              f"{r.prompt} · seed {r.seed}" + ("" if r.detected else " · no face")
              for r in faces.itertuples(index=False)}
    queries.keep_valid("faces_open", options)
    pick = st.selectbox("Sample", options, key="faces_open", format_func=lambda k: labels[k])
    if st.button("Open in Samples", key="faces_open_btn"):
        open_sample(*pick)
