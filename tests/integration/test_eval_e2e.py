"""End to end through the `fastface` command line: a tiny capture, `evaluate --tiny` (all
metrics), a second `evaluate` that writes nothing, and `report` on the result."""
from __future__ import annotations

import pytest




@pytest.fixture()
def fastface_main(monkeypatch):
    """fastface.cli.main with evaluate/import/report registered as the lead will
    (fastface.evaluation.cli.register in _EXTRA_COMMANDS), without editing fastface/cli.py."""
    import argparse

    import fastface.cli as base
    from fastface.evaluation.cli import register

    sub = next(a for a in base.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "evaluate" not in sub.choices:  # not registered in fastface/cli.py yet
        monkeypatch.setattr(base, "_EXTRA_COMMANDS", [*base._EXTRA_COMMANDS, register])
    return base.main


def test_capture_evaluate_report(tmp_path, fastface_main, capsys):
    from fastface.dataset import write_demo_dataset
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
        # per sample: id_sim, face_detected, face_size, clip_t, aesthetic, image_reward; + fsc for 'style; ...'
        expected = 6 * len(prompts) + sum(";" in p for p in prompts)
        assert len(prompts) == 2 and f"evaluated now: 2; metric rows written: {expected}" in first
        rows = con.execute("select name, model, value from metrics where model like '%@%'").fetchall()
        n_all = con.execute("select count(*) from metrics").fetchone()[0]
    finally:
        con.close()
    names = sorted({r[0] for r in rows})
    assert set(names) - {"fsc"} == {"aesthetic", "clip_t", "face_detected", "face_size", "id_sim", "image_reward"}
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
    assert "| hyper | 1 | 0.8 | baseline | 2 (0) |" in md
    assert "tiny:openai/clip-vit-large-patch14@" in md and "dlib/face_recognition_resnet_model_v1@" in md
    assert (out / "tables.tex").is_file() and (out / "table1_joint.csv").is_file()
