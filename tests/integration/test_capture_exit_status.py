"""A capture whose samples all fail exits non-zero with one summary line (counts per error kind);
a partial failure exits 0 and prints the same counts (issue 23, item 1)."""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
from PIL import Image
from skimage.data import astronaut

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastface.cli import main  # noqa: E402


def _inputs(tmp_path: Path, with_face: bool):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(photos / "blank.png")  # no face in it
    if with_face:
        Image.fromarray(astronaut()).save(photos / "astronaut.png")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a photo of a person\n")
    return photos, prompts, tmp_path / "store"


def _run(capsys, photos, prompts, store):
    rc = main(["capture", "--photos", str(photos), "--prompts", str(prompts), "--store", str(store), "--tiny",
               "--presets", "baseline", "--ip-scales", "0.5,0.8", "--capture", "summaries_only", "--no-compact"])
    return rc, capsys.readouterr().err


def _stored(store: Path) -> list[tuple]:
    con = duckdb.connect()
    try:
        return con.execute(
            "select status, count(*) from read_parquet(?, union_by_name=true) group by 1 order by 1",
            [str(store / "data" / "run=*" / "sample=*" / "samples.parquet")]).fetchall()
    finally:
        con.close()


def test_every_sample_failed_exits_1_with_counts_per_kind(tmp_path, capsys):
    photos, prompts, store = _inputs(tmp_path, with_face=False)
    rc, err = _run(capsys, photos, prompts, store)
    assert rc == 1, err
    summary = [line for line in err.splitlines() if line.startswith("fastface capture:")]
    assert summary == [summary[0]] and "2 of 2 samples failed (ID photo: 2)" in summary[0]
    assert _stored(store) == [("failed", 2)]


def test_partial_failure_exits_0_and_prints_the_counts(tmp_path, capsys):
    photos, prompts, store = _inputs(tmp_path, with_face=True)
    rc, err = _run(capsys, photos, prompts, store)
    assert rc == 0, err
    assert "2 of 4 samples failed (ID photo: 2)" in err
    assert _stored(store) == [("failed", 2), ("ok", 2)]
