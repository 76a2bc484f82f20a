"""Capture sweeps into a store: resume, failures recorded, kill -9, reading while writing,
export, and the demo command."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fastface.cli import main as cli


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, tiny_root):
    from fastface.sweeps.dataset import write_demo_dataset

    root = tmp_path_factory.mktemp("ds")
    write_demo_dataset(root)
    Image.fromarray(np.full((128, 128, 3), 200, np.uint8)).save(root / "id_photos" / "zz_blank.png")
    return root


def _capture_args(dataset, store, *extra):
    return ["capture", "--dataset", str(dataset), "--store", str(store), "--tiny", "--presets", "baseline,ff-am2",
            "--capture", "head_mean", *extra]


def _q(store, sql, params=None):
    from store.db import connect_read_only

    con = connect_read_only(store)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def test_sweep_writes_resumes_and_records_failures(dataset, tmp_path):
    from store.queries import contract_violations
    from store.db import connect_read_only

    store = tmp_path / "store"
    assert cli(_capture_args(dataset, store)) == 0
    n_ids = len(list((dataset / "id_photos").iterdir()))
    total = 2 * n_ids * 2  # presets x identities x prompts
    samples = _q(store, "select run_id, identity, status, error, category, image_png from samples")
    assert len(samples) == total
    blank = samples[samples.identity == "zz_blank"]
    assert len(blank) == 4 and (blank.status == "failed").all()
    assert blank.error.str.contains("zz_blank").all(), blank.error.iloc[0]
    ok = samples[samples.status == "ok"]
    assert len(ok) == total - 4 and ok.image_png.notna().all()
    assert set(samples.category) == {"realistic", "stylistic"}
    faces = _q(store, "select sample_key, role, detected from faces")
    assert (faces.role == "generated").sum() == len(ok)  # a failed detection is a row, not a gap
    maps = _q(store, "select count(*) n, count(distinct site) s from maps")
    assert maps.n[0] > 0 and maps.s[0] == 17
    runs = _q(store, "select run_id, status, n_done, n_total from runs")
    assert len(runs) == 2 and (runs.status == "completed").all() and (runs.n_done == total // 2).all()
    con = connect_read_only(store)
    try:
        assert contract_violations(con) == {}
    finally:
        con.close()
    # the same command again resumes: nothing new, nothing duplicated
    assert cli(_capture_args(dataset, store)) == 0
    assert len(_q(store, "select * from samples")) == total
    assert (_q(store, "select status from runs").status == "completed").all()  # not left 'running'


def _popen_capture(dataset, store, *extra):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "fastface.cli", *_capture_args(dataset, store, *extra)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _count(store, status: str = "%") -> int:
    try:
        return int(_q(store, "select count(*) n from samples where status like ?", [status]).n[0])
    except Exception:
        return -1


def test_kill_9_then_rerun_loses_nothing_and_duplicates_nothing(dataset, tmp_path):
    store = tmp_path / "store"
    proc = _popen_capture(dataset, store, "--ip-scales", "0.5,0.8")
    deadline = time.time() + 240
    while _count(store, "ok") < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert proc.poll() is None, "the sweep ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _q(store, "select sample_key, run_id, md5(image_png) h from samples where status = 'ok'")
    assert len(before) >= 5
    assert cli(_capture_args(dataset, store, "--ip-scales", "0.5,0.8")) == 0
    after = _q(store, "select sample_key, run_id, md5(image_png) h from samples where status = 'ok'")
    n_ids = len(list((dataset / "id_photos").iterdir()))
    everything = _q(store, "select run_id, sample_key from samples")
    assert len(everything) == 4 * n_ids * 2
    assert not everything.duplicated().any()
    merged = before.merge(after, on=["run_id", "sample_key"], suffixes=("_before", "_after"))
    assert len(merged) == len(before) and (merged.h_before == merged.h_after).all()


def test_second_process_reads_while_the_sweep_writes(dataset, tmp_path):
    store = tmp_path / "store"
    proc = _popen_capture(dataset, store)
    seen, failures = [], []
    deadline = time.time() + 240
    try:
        while proc.poll() is None and time.time() < deadline:
            if not (store / "catalog.duckdb").exists():  # nothing to read before the writer made the store
                time.sleep(0.1)
                continue
            code = ("import sys; from store.db import connect_read_only\nwith connect_read_only(sys.argv[1]) as c: "
                    "print(c.execute('select count(*) from samples').fetchone()[0])")
            out = subprocess.run([sys.executable, "-c", code, str(store)], capture_output=True, text=True)
            if out.returncode == 0:
                seen.append(int(out.stdout.strip()))
            else:  # every reader run counts: a failed read while the sweep writes is a failure
                failures.append(out.stderr[-500:])
            time.sleep(0.3)
    finally:
        proc.wait(timeout=240)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    assert failures == [], f"{len(failures)} of {len(failures) + len(seen)} reader runs failed: {failures[0]}"
    growing = sorted(set(seen))
    assert len(growing) >= 3, f"the reader saw counts {growing} while the sweep ran"
    assert seen == sorted(seen)


def test_export_writes_parquet_other_engines_read(dataset, tmp_path):
    store = tmp_path / "store"
    assert cli(_capture_args(dataset, store, "--limit", "2", "--presets", "am1")) == 0
    run_id = _q(store, "select run_id from runs").run_id[0]
    assert cli(["export", "--store", str(store), "--run", run_id, "--to", str(tmp_path / "out")]) == 0
    samples = pd.read_parquet(tmp_path / "out" / "samples.parquet")
    maps = pd.read_parquet(tmp_path / "out" / "maps.parquet")
    assert len(samples) == 2 and set(samples.run_id) == {run_id}
    assert len(maps) > 0 and {"site", "step", "token", "stage", "mean", "hist"} <= set(maps.columns)
    assert cli(["export", "--store", str(store), "--run", "nope", "--to", str(tmp_path / "o2")]) == 2


def test_bad_inputs_are_clear_errors(dataset, tmp_path, capsys):
    assert cli(_capture_args(dataset, tmp_path / "s", "--presets", "nope")) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    assert cli(["capture", "--dataset", str(tmp_path / "missing"), "--store", str(tmp_path / "s"), "--tiny"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_generate_cli_on_a_real_photo(dataset, tmp_path, capsys):
    photo = sorted((dataset / "id_photos").iterdir())[0]
    out = tmp_path / "o.png"
    assert cli(["generate", "--tiny", "--preset", "ff-am2", "--id-image", str(photo), "--prompt", "A Person",
                "--out", str(out), "--seed", "3"]) == 0
    assert Image.open(out).size == (64, 64)
    meta = __import__("json").loads(out.with_suffix(".json").read_text())
    assert meta["config"]["name"] == "ff-am2" and meta["unet_rows"] == 12
    blank = dataset / "id_photos" / "zz_blank.png"
    assert cli(["generate", "--tiny", "--id-image", str(blank), "--prompt", "x", "--out", str(out)]) == 2
    assert "zz_blank" in capsys.readouterr().err
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"not a png at all")
    assert cli(["generate", "--tiny", "--id-image", str(bad), "--prompt", "x", "--out", str(out)]) == 2
    assert "corrupt.png" in capsys.readouterr().err
