"""Issue 13: bad input to ``fastface capture`` is refused before anything is written (exit 2, one
line on stderr, no traceback, the store unchanged, no new run), ``--limit N`` means at most N
pairs, and OS / DuckDB errors become one line naming the path and the fix (``--debug``: the
traceback)."""
from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastface.cli import main  # noqa: E402
from fastface.cli.errors import error_message, run  # noqa: E402
from fastface.method.config import ConfigError  # noqa: E402
from tests.cli_helpers import assert_one_line_error, snapshot  # noqa: E402


@pytest.fixture
def inputs(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(photos / "a.png")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a photo of a person\na person in a park\n")
    store = tmp_path / "store"
    from store.db import open_store

    open_store(store)                                  # an existing, empty store
    return photos, prompts, store


def capture(capsys, photos, prompts, store, *extra) -> tuple[int, str]:
    rc = main(["capture", "--photos", str(photos), "--prompts", str(prompts), "--store", str(store), "--tiny",
               "--presets", "baseline", *extra])
    err = capsys.readouterr().err
    return rc, err


@pytest.mark.parametrize("extra, needles", [
    (["--checkpoints", "nosuch"], ["'nosuch'", "--checkpoints", "hyper"]),
    (["--checkpoints", "hyper,nosuch,other"], ["'nosuch', 'other'"]),
    (["--limit", "-1"], ["--limit -1", "N >= 1"]),
    (["--limit", "0"], ["--limit 0", "N >= 1"]),
    (["--presets", "nosuch"], ["unknown preset 'nosuch'"]),
    (["--ip-scales", "9"], ["--ip-scales 9"]),
    (["--steps", "3"], ["hyper", "3"]),
    (["--checkpoints", "nosuch", "--limit", "0"], ["'nosuch'", "--limit 0"]),   # every problem at once
    (["--worker", "2/2"], ["--worker 2/2"]),
])
def test_bad_sweep_is_refused_before_anything_is_written(capsys, inputs, extra, needles):
    photos, prompts, store = inputs
    before = snapshot(store)
    rc, err = capture(capsys, photos, prompts, store, *extra)
    assert_one_line_error(rc, err, *needles)
    assert snapshot(store) == before                    # unchanged: no run, no event, no tmp file
    assert not list((store / "runs").glob("[!_]*"))


def test_store_path_that_is_a_file_or_under_a_file(capsys, inputs, tmp_path):
    photos, prompts, _ = inputs
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("precious\n")
    for store, needles in [(a_file, [str(a_file), "is a file"]),
                           (a_file / "store", [str(a_file), "is a file", "cannot be created"])]:
        rc, err = capture(capsys, photos, prompts, store)
        assert_one_line_error(rc, err, *needles)
        assert a_file.read_text() == "precious\n"


def test_store_folder_whose_parts_are_files_is_refused(capsys, inputs):
    """A folder that is not a store folder (its tmp/ is a file): refused, nothing changed.  As
    root, permission bits stop nothing, so this is the failure a test can cause for real."""
    photos, prompts, store = inputs
    (store / "tmp").rmdir()
    (store / "tmp").write_text("x")
    before = snapshot(store)
    rc, err = capture(capsys, photos, prompts, store)
    assert_one_line_error(rc, err, str(store / "tmp"), "is a file")
    assert snapshot(store) == before


def test_limit_means_at_most_n_pairs(inputs):
    from fastface.sweeps.dataset import load_dataset
    from fastface.sweeps.sweep import SweepSpec, plan_runs

    photos, prompts, _ = inputs
    ds = load_dataset(photos=photos, prompts=prompts)
    assert len(ds.pairs()) == 2
    count = {limit: len(plan_runs(SweepSpec(presets=("baseline",), limit=limit), ds)[0].samples)
             for limit in (None, 1, 2, 5)}
    assert count == {None: 2, 1: 1, 2: 2, 5: 2}
    for bad in (0, -1):
        with pytest.raises(ConfigError, match="N >= 1"):
            plan_runs(SweepSpec(presets=("baseline",), limit=bad), ds)


# ------------------------------------------------------------------ error translation
def _parser(exc: BaseException) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastface")
    sub = p.add_subparsers(dest="command", required=True)

    def boom(args):
        raise exc
    sub.add_parser("capture").set_defaults(func=boom)
    return p


@pytest.mark.parametrize("exc, needles", [
    (PermissionError(errno.EACCES, "Permission denied", "/srv/store/tmp/123-abc"),
     ["Permission denied: /srv/store/tmp/123-abc", "permissions"]),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro/store/data"), ["/mnt/ro/store/data", "read-only"]),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/srv/file/store"), ["/srv/file/store", "is a file"]),
    (OSError(errno.ENOSPC, "No space left on device", "/srv/store/data/x.parquet"), ["disk is full"]),
    (duckdb.IOException('IO Error: Cannot open file "/srv/store/catalog.duckdb": Permission denied\n\nLINE 1'),
     ["DuckDB: IO Error", "/srv/store/catalog.duckdb", "permissions"]),
    (duckdb.IOException('IO Error: No files found that match the pattern "/x/data/*"'), ["DuckDB", "/x/data/*"]),
    (ConfigError("unknown preset 'x'"), ["unknown preset 'x'"]),
])
def test_os_and_duckdb_errors_become_one_line_naming_the_path_and_the_fix(capsys, exc, needles):
    assert run(_parser(exc), ["capture"]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(2, err, *needles)
    with pytest.raises(type(exc)):                      # --debug: the traceback, anywhere on the line
        run(_parser(exc), ["capture", "--debug"])


def test_a_bug_keeps_its_traceback():
    assert error_message(KeyError("x")) is None
    with pytest.raises(KeyError):
        run(_parser(KeyError("x")), ["capture"])


def test_store_vacuum_command(capsys, tmp_path):
    from store.compact import compact
    from store.writer import StoreWriter
    from tests.store_helpers import make_run, write_samples

    root = tmp_path / "s"
    w = StoreWriter(root, durable=False)
    w.begin_run(make_run("r1"))
    write_samples(w, "r1", range(3))
    w.close()
    compact(root, "r1", activation_delay_s=0, durable=False)
    assert len(list((root / "data" / "run=r1").glob("sample=*"))) == 3          # kept after compaction
    assert main(["store", "vacuum", "--store", str(root), "--older-than", "1h"]) == 0
    assert "0 merged folders removed" in capsys.readouterr().out
    with duckdb.connect(str(root / "catalog.duckdb"), read_only=True) as con:   # a reader: kept
        assert main(["store", "vacuum", "--store", str(root), "--older-than", "0"]) == 0
        assert f"process {__import__('os').getpid()} has" in capsys.readouterr().out
        assert con.execute("select count(*) from samples").fetchall() == [(3,)]
    assert main(["store", "vacuum", "--store", str(root), "--older-than", "0s"]) == 0
    assert "3 merged folders removed" in capsys.readouterr().out
    assert list((root / "data" / "run=r1").glob("sample=*")) == []
    with duckdb.connect(str(root / "catalog.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from samples").fetchall() == [(3,)]
    rc = main(["store", "vacuum", "--store", str(tmp_path / "nothing"), "--older-than", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "is not a store" in err


def test_a_checkpoint_that_fails_to_load_leaves_no_run_running(inputs):
    """The first checkpoint loads before the store is touched: when it fails, nothing is written.
    A later checkpoint that fails leaves its runs 'interrupted' (never 'running'), the runs of the
    checkpoints before it complete."""
    from fastface.sweeps.dataset import load_dataset
    from fastface.models.pipeline import load_pipeline
    from fastface.sweeps.sweep import SweepSpec, run_sweep
    from store.db import connect_read_only

    photos, prompts, store = inputs
    before = snapshot(store)

    def load(checkpoint):
        if checkpoint == "hyper" and not first_fails:
            return load_pipeline("hyper", tiny=True, face_backend="dlib")
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", f"/weights/{checkpoint}/unet")

    spec = SweepSpec(checkpoints=("hyper", "lightning"), presets=("baseline",), tiny=True, capture="summaries_only")
    first_fails = True
    with pytest.raises(FileNotFoundError, match="/weights/hyper/unet"):
        run_sweep(spec, load_dataset(photos=photos, prompts=prompts), str(store), load=load)
    assert snapshot(store) == before                   # nothing written
    first_fails = False
    with pytest.raises(FileNotFoundError, match="/weights/lightning/unet"):
        run_sweep(spec, load_dataset(photos=photos, prompts=prompts), str(store), load=load, compact=False)
    with connect_read_only(store) as con:
        statuses = con.execute("select checkpoint, status, status_message from runs order by run_id").fetchall()
    assert [(c, s) for c, s, _ in statuses] == [("hyper", "completed"), ("lightning", "interrupted")]
    assert "/weights/lightning/unet" in statuses[1][2]
