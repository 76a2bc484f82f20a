"""`fastface evaluate` on a store written with StoreWriter: every metric row where it belongs,
known answers (the ID photo itself scores 1, a blank image is a face failure), incremental
(a second run writes nothing), resumable after an interruption, problems reported."""
from __future__ import annotations

import io
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from store.records import RunRecord, SampleRecord, sample_key  # noqa: E402



STYLE = "watercolor painting; Person in a garden"
REAL = "a photo of a person in a park"


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def build_store(path: Path) -> dict:
    """run r1: 0 = the ID photo itself (realistic), 1 = blank (stylistic), 2 = the ID photo
    (stylistic), 3 = failed generation, 4 = the ID photo with a missing ID path (realistic)."""
    from fastface.faces.photos import sample_photos
    from store.writer import StoreWriter

    astro = sample_photos()["astronaut"]
    photo = path.parent / "astronaut.png"
    photo.write_bytes(_png(astro))
    blank = np.full((128, 128, 3), 200, np.uint8)
    plan = [("astronaut", REAL, astro, str(photo)), ("astronaut", STYLE, blank, str(photo)),
            ("astronaut", STYLE + " 2", astro, str(photo)), ("astronaut", REAL + " 2", None, str(photo)),
            ("ghost", REAL, astro, str(path.parent / "missing.png"))]
    keys = []
    with StoreWriter(path, worker_id="t", durable=False) as w:
        w.begin_run(RunRecord(run_id="r1", config={"p": 1}, preset="baseline", checkpoint="hyper", ip_scale=0.8,
                              lora_scale=1.0, seed=50))
        for i, (ident, prompt, img, idp) in enumerate(plan):
            key = sample_key(ident, prompt, i)
            keys.append(key)
            cat = "stylistic" if ";" in prompt else "realistic"
            if img is None:
                rec = SampleRecord(sample_key=key, identity=ident, prompt=prompt, category=cat, seed=i,
                                   status="failed", error="synthetic failure", id_image_path=idp, sample_index=i)
            else:
                rec = SampleRecord(sample_key=key, identity=ident, prompt=prompt, category=cat, seed=i,
                                   image_png=_png(img), width=img.shape[1], height=img.shape[0], id_image_path=idp,
                                   sample_index=i)
            w.write_sample("r1", rec)
    return {"keys": keys, "photo": photo}


@pytest.fixture(scope="module")
def evaluator():
    from fastface.evaluation.evaluate import EvalConfig, Evaluator

    cfg = EvalConfig(tiny=True, device="cpu", batch_size=2)
    return cfg, Evaluator(cfg)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalstore")
    info = build_store(root / "store")
    return root / "store", info


def _copy(pristine, tmp_path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(pristine[0], dst)
    (tmp_path / "astronaut.png").write_bytes(pristine[1]["photo"].read_bytes())
    return dst


def _metrics(store) -> list[dict]:
    from store.db import connect_read_only

    con = connect_read_only(store)
    try:
        return con.execute("select sample_key, name, model, value from metrics order by all").df().to_dict("records")
    finally:
        con.close()


def _raw_metric_rows(store) -> list[tuple]:
    """Every metrics row in every live Parquet file (what the view de-duplicates, if it must);
    folders a compaction merged into a segment are hidden until their retention ends, and skipped."""
    from store.compact import merged_dir_names
    from store.layout import Layout

    layout = Layout(store)
    merged = {name for run_id in layout.run_ids() for name in merged_dir_names(layout, run_id)}
    rows = []
    for f in Path(store, "data").glob("run=*/*/metrics.parquet"):
        if f.parent.name in merged:
            continue
        t = pq.read_table(f, columns=["sample_key", "name", "model"])
        rows += list(zip(*(t.column(c).to_pylist() for c in ("sample_key", "name", "model"))))
    return rows


def test_evaluate_writes_every_metric_where_it_belongs(pristine, evaluator, tmp_path):
    from fastface.evaluation.runner import evaluate_store

    cfg, ev = evaluator
    store = _copy(pristine, tmp_path)
    keys = pristine[1]["keys"]
    s = evaluate_store(store, cfg, progress=False, evaluator=ev)
    assert s.n_samples == 4 and s.n_evaluated == 4 and s.n_complete == 0
    assert any("id-dlib skipped" in n for n in s.notes)
    # the sample with a missing ID photo: no id_sim, reported (and retried next time)
    assert sum(s.problems.values()) == 1 and "missing.png" in next(iter(s.problems))
    rows = _metrics(store)
    by = {(r["sample_key"], r["name"]): r for r in rows}
    face_m = ev.face_model
    assert face_m.startswith("dlib/") and face_m.endswith("#protocol=corrected")  # the default protocol
    assert all(r["model"].endswith("#protocol=corrected") for r in rows)
    per_sample = Counter(r["sample_key"] for r in rows)
    # id, ffc, face-size, clip, ae, ir, fsc (every prompt) = 7; 4: no id_sim = 6; 3 (failed): none
    assert per_sample == {keys[0]: 7, keys[1]: 7, keys[2]: 7, keys[4]: 6}
    assert by[(keys[0], "id_sim")]["value"] == pytest.approx(1.0, abs=1e-6)
    assert by[(keys[0], "face_detected")]["value"] == 1.0 and by[(keys[0], "id_sim")]["model"] == face_m
    assert 0.02 < by[(keys[0], "face_size")]["value"] < 0.05
    assert by[(keys[1], "face_detected")]["value"] == 0.0
    assert np.isnan(by[(keys[1], "id_sim")]["value"]) and np.isnan(by[(keys[1], "fsc")]["value"])
    assert 0.0 <= by[(keys[2], "fsc")]["value"] <= 1.0
    assert by[(keys[2], "fsc")]["model"] == f"{ev.clip.model_id}+{ev.face.model_id}#protocol=corrected"
    assert 0.0 <= by[(keys[0], "fsc")]["value"] <= 1.0  # a realistic prompt: the face crop vs the whole prompt
    assert (keys[4], "id_sim") not in by and by[(keys[4], "face_detected")]["value"] == 1.0
    for k in (keys[0], keys[1], keys[2], keys[4]):
        assert 0.0 <= by[(k, "clip_t")]["value"] <= 1.0
        assert np.isfinite(by[(k, "aesthetic")]["value"]) and np.isfinite(by[(k, "image_reward")]["value"])
    assert by[(keys[0], "clip_t")]["model"].startswith("tiny:openai/clip-vit-large-patch14@")
    assert by[(keys[0], "image_reward")]["model"].startswith("tiny:THUDM/ImageReward@")

    # incremental: a second run computes nothing new, the reported problem stays reported
    n_before = len(_raw_metric_rows(store))
    again = evaluate_store(store, cfg, progress=False, evaluator=ev)
    assert again.n_rows == 0 and again.n_complete == 3 and len(_raw_metric_rows(store)) == n_before
    assert sum(again.problems.values()) == 1
    raw = _raw_metric_rows(store)
    assert len(raw) == len(set(raw)) == len(rows)  # no duplicates, not even hidden ones

    # --id-photos repairs the missing reference: only that one row is added
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(tmp_path / "astronaut.png", photos / "ghost.png")
    from dataclasses import replace

    from fastface.evaluation.evaluate import Evaluator

    ev2 = Evaluator(replace(cfg, id_photos=str(photos), metrics=("id",)))
    fixed = evaluate_store(store, replace(cfg, metrics=("id",)), progress=False, evaluator=ev2)
    assert fixed.n_rows == 1 and not fixed.problems
    assert {(r["sample_key"], r["name"]) for r in _metrics(store)} - set(by) == {(keys[4], "id_sim")}


def test_evaluate_resumes_after_an_interruption(pristine, evaluator, tmp_path, monkeypatch):
    from fastface.evaluation.runner import evaluate_store
    from store.writer import StoreWriter

    cfg, ev = evaluator
    store = _copy(pristine, tmp_path)
    real = StoreWriter.add_metrics
    calls = {"n": 0}

    def flaky(self, run_id, key, metrics, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated Ctrl-C")
        return real(self, run_id, key, metrics, **kw)

    monkeypatch.setattr(StoreWriter, "add_metrics", flaky)
    with pytest.raises(KeyboardInterrupt):
        evaluate_store(store, cfg, progress=False, evaluator=ev)
    first = _metrics(store)
    assert len({r["sample_key"] for r in first}) == 1  # one sample committed, nothing half-written
    assert not any(Path(store, "tmp").iterdir())
    monkeypatch.setattr(StoreWriter, "add_metrics", real)
    rest = evaluate_store(store, cfg, progress=False, evaluator=ev)
    assert rest.n_evaluated == 3 and rest.n_complete == 1
    rows = _metrics(store)
    assert len(rows) == 7 + 7 + 7 + 6
    raw = _raw_metric_rows(store)
    assert len(raw) == len(set(raw)) == len(rows)


def test_second_opinion_and_dry_run(pristine, tmp_path):
    """Primary backend skimage (detection only) + the dlib second opinion (id_sim, face_detected)."""
    from fastface.evaluation.evaluate import EvalConfig, EvaluationError, Evaluator
    from fastface.evaluation.runner import evaluate_store

    store = _copy(pristine, tmp_path)
    keys = pristine[1]["keys"]
    cfg = EvalConfig(metrics=("ffc", "id-dlib"), face_backend="skimage", device="cpu")
    dry = evaluate_store(store, cfg, progress=False, dry_run=True)
    assert dry.n_rows == 0 and sum(dry.planned.values()) == 4 * 3 and not _metrics(store)
    s = evaluate_store(store, cfg, progress=False)
    rows = _metrics(store)
    models = {r["model"].split("@")[0] for r in rows}
    assert models == {"skimage/lbp_frontal_face", "dlib/face_recognition_resnet_model_v1"}
    dl = {(r["sample_key"], r["name"]): r["value"] for r in rows if r["model"].startswith("dlib/")}
    assert dl[(keys[0], "id_sim")] == pytest.approx(1.0, abs=1e-6) and dl[(keys[1], "face_detected")] == 0.0
    assert s.n_rows == len(rows) == 4 + 4 + 3  # ffc x4, dlib face_detected x4, dlib id_sim x3 (one photo missing)
    with pytest.raises(EvaluationError, match="no face embedding"):
        Evaluator(EvalConfig(metrics=("id",), face_backend="skimage", device="cpu"))
    with pytest.raises(EvaluationError, match="unknown run"):
        evaluate_store(store, cfg, runs=["nope"], progress=False)
