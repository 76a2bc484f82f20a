"""`fastface import`: a folder of generations with a missing file, an extra file and a corrupt
PNG becomes a run: clear errors, the rest imported, nothing half-written, a rerun resumes."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))



PROMPTS_REAL = ["a photo of a person in a park", "a close-up portrait of a person"]
PROMPTS_STYLE = ["watercolor painting; Person in a garden", "comic book style; Person as a superhero"]


def _png(arr) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture()
def folders(tmp_path):
    """dataset: 1 identity x 4 prompts.  images: 0 = the ID photo, 1 missing, 2 truncated PNG,
    3 = blank (no face), plus extra files 7.png and notes.txt."""
    from fastface.method.config import load_preset
    from fastface.faces.photos import sample_photos

    astro = sample_photos()["astronaut"]
    ds = tmp_path / "dataset"
    (ds / "id_photos").mkdir(parents=True)
    (ds / "id_photos" / "astronaut.png").write_bytes(_png(astro))
    (ds / "prompts_nostyle.txt").write_text("\n".join(PROMPTS_REAL) + "\n")
    (ds / "prompts_style.txt").write_text("\n".join(PROMPTS_STYLE) + "\n")
    imgs = tmp_path / "gens"
    imgs.mkdir()
    (imgs / "0.png").write_bytes(_png(astro))
    good = _png(np.full((96, 96, 3), 90, np.uint8))
    (imgs / "2.png").write_bytes(_png(astro)[: len(_png(astro)) // 2])  # truncated mid-IDAT
    (imgs / "3.png").write_bytes(good)
    (imgs / "7.png").write_bytes(good)
    (imgs / "notes.txt").write_text("not an image")
    cfg = tmp_path / "ff-am2.json"
    cfg.write_text(load_preset("ff-am2").with_scales(0.65).to_json())
    return {"dataset": ds, "images": imgs, "config": cfg, "store": tmp_path / "store"}


def _cli(argv):
    from fastface.cli.evaluate import main

    return main(argv)


def _samples(store, run_id=None):
    from store.db import connect_read_only

    con = connect_read_only(store)
    try:
        df = con.execute("select run_id, sample_key, sample_index, status, error, width, prompt, category, seed "
                         "from samples order by sample_index").df()
        return df if run_id is None else df[df["run_id"] == run_id]
    finally:
        con.close()


def test_import_folder_with_missing_extra_and_corrupt_files(folders, capsys):
    from fastface.evaluation.face_scores import face_model_string
    from store.db import connect_read_only
    from store.queries import contract_violations

    args = ["import", "--store", str(folders["store"]), "--images", str(folders["images"]), "--config",
            str(folders["config"]), "--dataset", str(folders["dataset"]), "--checkpoint", "hyper",
            "--face-backend", "dlib", "--no-progress"]
    assert _cli(args) == 0
    out = capsys.readouterr().out
    assert "imported 2 ok + 2 failed" in out
    assert "extra files ignored (2): 7.png, notes.txt" in out
    s = _samples(folders["store"])
    assert s["status"].tolist() == ["ok", "failed", "failed", "ok"]
    assert "image file missing" in s.loc[1, "error"] and "1.png" in s.loc[1, "error"]
    assert "image file unreadable" in s.loc[2, "error"] and "2.png" in s.loc[2, "error"]
    assert s["seed"].tolist() == [50] * 4 and s.loc[0, "width"] == 512
    assert s["category"].tolist() == ["realistic", "realistic", "stylistic", "stylistic"]
    run_id = s.loc[0, "run_id"]
    assert run_id.startswith("import-hyper-ff-am2-ip0.65-lora1-")
    con = connect_read_only(folders["store"])
    try:
        run = con.execute("select preset, checkpoint, ip_scale, status, n_done, n_failed, n_total from runs").fetchone()
        assert run == ("ff-am2", "hyper", 0.65, "completed", 4, 2, 4)
        faces = con.execute("select sample_key, role, detected, similarity from faces order by all").fetchall()
        assert len(faces) == 4 and sum(1 for f in faces if f[1] == "generated" and f[2]) == 1
        sims = [f[3] for f in faces if f[1] == "generated" and f[2]]
        assert sims[0] == pytest.approx(1.0, abs=1e-6)  # the ID photo itself
        m = con.execute("select s.sample_index, m.name, m.model, m.value from metrics m join samples s "
                        "using (run_id, sample_key)").fetchall()
        assert {x[2] for x in m} == {face_model_string("dlib") + "#protocol=corrected"}  # the default protocol
        v = {(x[0], x[1]): x[3] for x in m}
        assert set(v) == {(i, n) for i in (0, 3) for n in ("face_detected", "face_size", "id_sim")}
        assert v[(0, "face_detected")] == 1.0 and v[(0, "id_sim")] == pytest.approx(1.0, abs=1e-6)
        assert 0.02 < v[(0, "face_size")] < 0.05
        assert v[(3, "face_detected")] == 0.0 and v[(3, "id_sim")] is None and v[(3, "face_size")] is None
        assert not contract_violations(con)
    finally:
        con.close()
    assert not any(Path(folders["store"], "tmp").iterdir())

    # rerun: resumes, nothing new
    assert _cli(args) == 0
    assert "imported 0 ok + 0 failed; 4 already in the store" in capsys.readouterr().out
    assert len(_samples(folders["store"])) == 4

    # the face metrics of the import are the ones `evaluate` would write: it skips them
    from fastface.evaluation.evaluate import EvalConfig
    from fastface.evaluation.runner import evaluate_store

    summary = evaluate_store(folders["store"], EvalConfig(metrics=("id", "ffc", "face-size"), face_backend="dlib",
                                                          device="cpu"), progress=False)
    assert summary.n_rows == 0 and summary.n_complete == 2


def test_import_is_atomic_per_sample_and_resumes(folders):
    from fastface.sweeps.dataset import load_dataset
    from fastface.evaluation.importer import import_folder
    from store.writer import StoreWriter

    ds = load_dataset(folders["dataset"])
    writer = StoreWriter(folders["store"], worker_id="t", durable=False)
    seen = {"n": 0}

    def crash(tmp):  # the second sample dies after its files are built, before the rename
        seen["n"] += 1
        if seen["n"] == 3:  # 1 = run.parquet, 2 = sample 0, 3 = sample 1
            raise KeyboardInterrupt("killed")

    writer._before_publish = crash
    kw = dict(checkpoint="hyper", face_backend="dlib", progress=False, seed_mode="per-sample")
    with pytest.raises(KeyboardInterrupt):
        import_folder(folders["store"], folders["images"], folders["config"], ds, writer=writer, **kw)
    writer.close()
    s = _samples(folders["store"])
    assert s["sample_index"].tolist() == [0]  # only the committed sample; nothing half-written
    assert not any(Path(folders["store"], "tmp").iterdir())
    from store.db import connect_read_only

    con = connect_read_only(folders["store"])
    assert con.execute("select status from runs").fetchone()[0] == "interrupted"
    con.close()
    summary = import_folder(folders["store"], folders["images"], folders["config"], ds, **kw)
    assert (summary.n_ok, summary.n_failed, summary.n_skipped) == (1, 2, 1)
    s = _samples(folders["store"])
    assert s["sample_index"].tolist() == [0, 1, 2, 3] and s["sample_key"].is_unique
    assert s["seed"].tolist() == [50, 51, 52, 53]  # per-sample seeds


def test_import_input_errors(folders, tmp_path, capsys):
    base = ["import", "--store", str(folders["store"]), "--images", str(folders["images"]), "--dataset",
            str(folders["dataset"]), "--face-backend", "dlib", "--no-progress"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"guidance": {"variant": 9}}))
    assert _cli(base + ["--config", str(bad)]) == 2
    assert "variant" in capsys.readouterr().err
    assert _cli(base + ["--config", str(folders["config"]), "--pattern", "{nope}.png"]) == 2
    assert "--pattern" in capsys.readouterr().err
    assert _cli(base + ["--config", str(folders["config"]), "--pattern", "x.png"]) == 2
    assert "same file name" in capsys.readouterr().err
    # a `fastface generate` sidecar works as --config and names the checkpoint
    sidecar = tmp_path / "gen.json"
    sidecar.write_text(json.dumps({"checkpoint": {"name": "lightning"},
                                   "config": json.loads(folders["config"].read_text())}))
    assert _cli(base + ["--config", str(sidecar)]) == 0
    assert "import-lightning-ff-am2" in capsys.readouterr().out


def test_import_order_pairing_check_and_both_protocols_end_to_end(tmp_path, capsys):
    """Images generated in the order (t1_far_left, astronaut, t1_centre) — a listdir order — are
    imported with --order sorted (wrong: a loud warning, 0 of 6 faces closer to their own photo)
    and with --order FILE (right: 6 of 6); then both protocols run end to end on the import:
    evaluate --tiny and report, each report header naming its protocol."""
    from fastface.method.config import load_preset
    from fastface.faces.photos import sample_photos

    photos = sample_photos(group_crops=True)
    order = ["t1_far_left", "astronaut", "t1_centre"]
    ds = tmp_path / "dataset"
    (ds / "id_photos").mkdir(parents=True)
    for name in order:
        (ds / "id_photos" / f"{name}.png").write_bytes(_png(photos[name]))
    (ds / "prompts_nostyle.txt").write_text(PROMPTS_REAL[0] + "\n")
    (ds / "prompts_style.txt").write_text(PROMPTS_STYLE[0] + "\n")
    gens = tmp_path / "gens"
    gens.mkdir()
    for k, name in enumerate(order):  # each "generated" image is its identity's photo: similarity 1 to its own
        for j in range(2):
            (gens / f"{2 * k + j}.png").write_bytes(_png(photos[name]))
    cfg = tmp_path / "ff-am2.json"
    cfg.write_text(load_preset("ff-am2").to_json())
    store = tmp_path / "store"
    base = ["import", "--store", str(store), "--images", str(gens), "--config", str(cfg), "--dataset", str(ds),
            "--checkpoint", "hyper", "--face-backend", "dlib", "--no-progress"]
    assert _cli(base + ["--run-id", "sorted"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: pairing check (--order sorted): 0/6 generated faces (0%)" in out
    assert "probably paired with the wrong ID photos" in out
    listing = tmp_path / "generating-machine-listdir.txt"
    listing.write_text("\n".join(f"{n}.png" for n in order) + "\n")
    assert _cli(base + ["--run-id", "listed", "--order", str(listing), "--protocol", "release"]) == 0
    out = capsys.readouterr().out
    assert f"pairing check (--order {listing}): 6/6 generated faces (100%)" in out and "WARNING" not in out
    s = _samples(store, "listed")
    assert [i for i in s["sample_index"]] == list(range(6))

    from store.db import connect_read_only

    con = connect_read_only(store)
    try:
        rows = con.execute("select s.identity, m.name, m.model, m.value from metrics m join samples s "
                           "using (run_id, sample_key) where m.run_id = 'listed'").fetchall()
    finally:
        con.close()
    assert {r[2].rsplit("#", 1)[1] for r in rows} == {"protocol=release"}
    assert all(r[3] == pytest.approx(1.0, abs=1e-6) for r in rows if r[1] == "id_sim")  # paired right
    # release face size: the unclipped box of faces[0] over the image (dlib has no det sizes)
    assert all(0 < r[3] < 1 for r in rows if r[1] == "face_size")

    for protocol in ("release", "corrected"):
        assert _cli(["evaluate", "--store", str(store), "--run", "listed", "--tiny", "--device", "cpu",
                     "--protocol", protocol, "--metrics", "id,ffc,face-size,clip,ae,fsc", "--no-progress"]) == 0
        out = capsys.readouterr().out
        # the import wrote release face metrics: evaluate --protocol release adds clip, ae, fsc only
        per_sample = 3 if protocol == "release" else 6
        assert f"metric rows written: {6 * per_sample}" in out, out
        rep = tmp_path / f"report-{protocol}"
        assert _cli(["report", "--store", str(store), "--out", str(rep), "--run", "listed", "--no-figures",
                     "--protocol", protocol]) == 0
        md = (rep / "report.md").read_text()
        assert f"**Evaluation protocol: {protocol}**" in md
        assert "1.000 [n=6/6, FFC=0]" in md  # ID of the correctly paired import, under either protocol
    assert "ava+logos-l14-linearMSE.pth@" in (tmp_path / "report-release" / "report.md").read_text()
    assert "sac+logos+ava1-l14-linearMSE.pth@" in (tmp_path / "report-corrected" / "report.md").read_text()
