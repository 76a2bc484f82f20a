"""Filesystem primitives: first-commit-wins publishing, sweeping of crashed work, ids."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.layout import HOST, Layout, StoreError, publish, remove_dir, sweep_tmp, validate_id  # noqa: E402


def test_publish_first_commit_wins(tmp_path):
    layout = Layout(tmp_path)
    layout.ensure()
    target = layout.data / "run=r" / "sample=k"
    for n, content in enumerate(["first", "second"]):
        d = layout.new_tmp()
        d.mkdir()
        (d / "samples.parquet").write_text(content)
        assert publish(d, target, durable=(n == 0)) is (n == 0)
        assert not d.exists()                                 # the loser's tmp is discarded
    assert (target / "samples.parquet").read_text() == "first"
    for n, content in enumerate(["a", "b"]):
        f = layout.new_tmp(".parquet")
        f.write_text(content)
        assert publish(f, layout.runs / "e.parquet") is (n == 0)
    assert (layout.runs / "e.parquet").read_text() == "a"
    remove_dir(layout, target)
    assert not target.exists() and not list(layout.tmp.iterdir())


def test_sweep_removes_only_dead_or_stale_work(tmp_path):
    layout = Layout(tmp_path)
    layout.ensure()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    entries = {
        "dead": layout.tmp / f"{dead.pid}-aaaa-{HOST}",
        "mine": layout.new_tmp(),
        "alive_other": layout.tmp / f"1-bbbb-{HOST}.duckdb",            # pid 1 is alive
        "foreign_fresh": layout.tmp / "123-cccc-otherhost",
        "foreign_old": layout.tmp / "123-dddd-otherhost",
    }
    for p in entries.values():
        p.mkdir()
    old = time.time() - 3600
    os.utime(entries["foreign_old"], (old, old))
    removed = set(sweep_tmp(layout))
    assert removed == {entries["dead"].name, entries["foreign_old"].name}
    assert entries["mine"].exists() and entries["alive_other"].exists() and entries["foreign_fresh"].exists()


def test_ids_are_path_safe():
    assert validate_id("run_id", "sweep-2024.05_a") == "sweep-2024.05_a"
    for bad in ["", "../x", "a/b", "_empty", "a=b", "x" * 129, "a b"]:
        with pytest.raises(StoreError):
            validate_id("run_id", bad)
