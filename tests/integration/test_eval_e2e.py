"""End to end through the `fastface` command line: a tiny capture, `evaluate --tiny` (all
metrics), a second `evaluate` that writes nothing, and `report` on the result."""
from __future__ import annotations

import pytest




@pytest.fixture()
def fastface_main(monkeypatch):
    """fastface.cli.main with evaluate/import/report registered (the command group
    fastface.cli.evaluate in fastface.cli.COMMAND_GROUPS)."""
    import argparse

    import fastface.cli as base
    from fastface.cli import evaluate

    sub = next(a for a in base.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "evaluate" not in sub.choices:  # not registered in fastface/cli/__init__.py
        monkeypatch.setattr(base, "COMMAND_GROUPS", (*base.COMMAND_GROUPS, evaluate))
    return base.main


def test_capture_evaluate_report(tmp_path, fastface_main, capsys):
    from fastface.sweeps.dataset import write_demo_dataset
    from store.db import connect_read_only

    ds, store, out = tmp_path / "ds", tmp_path / "store", tmp_path / "report"
    write_demo_dataset(ds)
    assert fastface_main(["capture", "--dataset", str(ds), "--store", str(store), "--tiny", "--presets", "baseline",
                          "--limit", "2"]) == 0
    capsys.readouterr()
    assert fastface_main(["evaluate", "--store", str(store), "--tiny", "--device", "cpu", "--no-progress"]) == 0
    first = capsys.readouterr().out
    con = connect_read_only(store)
    try:
        prompts = [r[0] for r in con.execute("select prompt from samples where status = 'ok'").fetchall()]
        # per sample: id_sim, face_detected, face_size, clip_t, aesthetic, image_reward, fsc (every prompt)
        expected = 7 * len(prompts)
        assert len(prompts) == 2 and f"evaluated now: 2; metric rows written: {expected}" in first
        rows = con.execute("select name, model, value from metrics where model like '%@%'").fetchall()
        n_all = con.execute("select count(*) from metrics").fetchone()[0]
    finally:
        con.close()
    names = sorted({r[0] for r in rows})
    assert set(names) == {"aesthetic", "clip_t", "face_detected", "face_size", "fsc", "id_sim", "image_reward"}
    assert all(0 <= r[2] <= 1 for r in rows if r[0] in ("clip_t", "face_detected"))
    assert fastface_main(["evaluate", "--store", str(store), "--tiny", "--device", "cpu", "--no-progress"]) == 0
    assert "already complete: 2; evaluated now: 0; metric rows written: 0" in capsys.readouterr().out
    con = connect_read_only(store)
    try:
        assert con.execute("select count(*) from metrics").fetchone()[0] == n_all
    finally:
        con.close()
    assert fastface_main(["report", "--store", str(store), "--out", str(out), "--no-figures"]) == 0
    md = (out / "report.md").read_text()
    assert "**Evaluation protocol: corrected**" in md  # the only protocol in the store
    assert "| hyper | 1 | 0.8 | baseline | 2 (0) |" in md
    assert "tiny:openai/clip-vit-large-patch14@" in md and "dlib/face_recognition_resnet_model_v1@" in md
    assert (out / "tables.tex").is_file() and (out / "table1_joint.csv").is_file()
    # the capture's own face rows (model 'dlib', no protocol tag) are counted as left out, not mixed in
    assert "without a protocol tag" in md

    # the release protocol on the same store: its own rows beside the corrected ones
    assert fastface_main(["evaluate", "--store", str(store), "--tiny", "--device", "cpu", "--no-progress",
                          "--protocol", "release"]) == 0
    assert f"evaluated now: 2; metric rows written: {7 * len(prompts)}" in capsys.readouterr().out
    assert fastface_main(["report", "--store", str(store), "--out", str(out), "--no-figures"]) == 2
    assert "pass --protocol release or --protocol corrected" in capsys.readouterr().err
    for protocol in ("release", "corrected"):
        assert fastface_main(["report", "--store", str(store), "--out", str(out / protocol), "--no-figures",
                              "--protocol", protocol]) == 0
        md = (out / protocol / "report.md").read_text()
        assert f"**Evaluation protocol: {protocol}**" in md and "| hyper | 1 | 0.8 | baseline | 2 (0) |" in md
        # noise images: no face is detected, and the fronts section says so instead of "evaluate first"
        assert "the runs have no detected faces" in md or "Pareto-optimal" in md


def test_cli_errors_are_one_line(tmp_path, fastface_main, capsys):
    from fastface.sweeps.dataset import write_demo_dataset

    ds, store = tmp_path / "ds", tmp_path / "store"
    write_demo_dataset(ds)
    assert fastface_main(["capture", "--dataset", str(ds), "--store", str(store), "--tiny", "--presets", "baseline",
                          "--limit", "1"]) == 0
    capsys.readouterr()
    import torch

    if not torch.cuda.is_available():  # --device cuda on a machine without CUDA: one line, no traceback
        assert fastface_main(["evaluate", "--store", str(store), "--tiny", "--device", "cuda", "--metrics", "clip",
                              "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert "--device cuda: CUDA is not available on this machine" in err and "Traceback" not in err
    # every missing model at once, one line each: CLIP, the aesthetic head and ImageReward
    none = tmp_path / "none"
    none.mkdir()
    assert fastface_main(["evaluate", "--store", str(store), "--device", "cpu", "--metrics", "clip,ae,ir",
                          "--weights-root", str(none), "--clip-model", str(none / "clip"),
                          "--aesthetic-model", str(none / "ae"), "--image-reward-model", str(none / "ir"),
                          "--no-progress"]) == 2
    err = capsys.readouterr().err
    # the CLI prints every error on one line (fastface.cli.errors.error_message): the three models, in order
    assert "cannot evaluate (3 problem(s))" in err and "Traceback" not in err
    assert err.index("CLIP model") < err.index("aesthetic predictor") < err.index("ImageReward")
    assert "sac+logos+ava1-l14-linearMSE.pth" in err and "ava+logos-l14" not in err  # the corrected head
    # the message itself: one line per missing model
    from fastface.evaluation.evaluate import EvalConfig, EvaluationError, Evaluator

    with pytest.raises(EvaluationError) as e:
        Evaluator(EvalConfig(metrics=("clip", "ae", "ir"), device="cpu", weights_root=str(none), protocol="release",
                             clip_model=str(none / "clip"), aesthetic_model=str(none / "ae"),
                             image_reward_model=str(none / "ir")))
    items = [line for line in str(e.value).splitlines() if line.startswith("  - ")]
    assert len(items) == 3 and len(str(e.value).splitlines()) == 4, str(e.value)
    assert "CLIP model" in items[0] and "ava+logos-l14-linearMSE.pth" in items[1] and "ImageReward" in items[2]
