"""workbench.data.metric_names: one short unique name per metric series (hand-written names)."""

import pandas as pd

from workbench.data.metric_names import name_series, short_names

EVAL = "dlib/face_recognition_resnet_model_v1@46ab12c9#protocol=corrected"


def values():
    rows = []
    for u in range(3):
        rows += [("r", "id_sim", "dlib", u, 0.1), ("r", "id_sim", EVAL, u, 0.2), ("r", "id_sim", EVAL, u + 10, 0.2),
                 ("r", "clip_t", "clip-l@1", u, 0.3), ("r", "face_similarity", "dlib", u, 0.4)]
    df = pd.DataFrame(rows, columns=["run_id", "name", "model", "seed", "value"])
    return df.assign(identity="i", prompt="p")


def test_one_series_per_metric_by_default_the_reports_model():
    v, cat = name_series(values())
    assert sorted(v["name"].unique()) == ["clip_t", "face_similarity", "id_sim"]
    assert set(v.loc[v["name"] == "id_sim", "value"]) == {0.2}  # the protocol-tagged evaluation, not 'dlib'
    row = cat.set_index("name").loc["id_sim"]
    assert row["model"] == EVAL and row["n_models"] == 2 and row["n_values"] == 6


def test_every_model_gets_the_shortest_distinguishing_tag():
    v, cat = name_series(values(), every_model=True)
    assert sorted(cat["name"]) == ["clip_t", "face_similarity", "id_sim (dlib)", "id_sim (dlib, corrected)"]
    assert len(v) == len(values())  # nothing dropped
    assert short_names(["insightface/buffalo_l@a1", "insightface/buffalo_l@b2"]) == {
        "insightface/buffalo_l@a1": "insightface, @a1", "insightface/buffalo_l@b2": "insightface, @b2"}
    assert short_names(["dlib", "insightface/x@1"]) == {"dlib": "dlib", "insightface/x@1": "insightface"}
