"""Real processes: kill -9 during a commit, a reader while a writer writes, two concurrent
writers, compaction during writes, and plain DuckDB (no project code) on the catalog."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from store.compact import compact, vacuum  # noqa: E402
from store.db import connect_read_only, open_store  # noqa: E402
from store.queries import run_contracts  # noqa: E402
from store.writer import StoreWriter, done_sample_keys  # noqa: E402
from tests.store_helpers import make_sample, sample_keys, spawn_writer  # noqa: E402

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
N_MAPS = 12  # maps per sample written by tests.store_helpers.make_sample (3 sites x 2 steps x 2 branches)


def finish(proc, timeout=60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def wait_for(pred, timeout=30.0, every=0.02):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(every)
    raise AssertionError("timed out")


def check_store(root, expected_keys):
    """Every expected sample present exactly once, with all its rows; contracts hold."""
    with connect_read_only(root) as con:
        per_sample = con.execute("""
            select s.sample_key, count(*) over (partition by s.sample_key) as n_rows,
                   (select count(*) from maps m where m.run_id = s.run_id and m.sample_key = s.sample_key),
                   (select count(*) from faces f where f.run_id = s.run_id and f.sample_key = s.sample_key)
            from samples s where s.run_id = 'r1'""").fetchall()
        assert sorted(k for k, *_ in per_sample) == sorted(expected_keys)
        assert all(n == 1 and nm == N_MAPS and nf == 2 for _, n, nm, nf in per_sample)
        for name, df in run_contracts(con, ["unique_keys", "relationships"]).items():
            assert len(df) == 0, f"{name}:\n{df}"


def test_kill_9_mid_commit_then_resume(tmp_path):
    root, ready = tmp_path / "store", tmp_path / "ready"
    open_store(root)
    proc = spawn_writer(root, "--stop", "24", "--hang-at", "6", "--ready-file", str(ready))
    wait_for(ready.exists)
    tmp_dir = Path(ready.read_text())
    assert tmp_dir.is_dir() and (tmp_dir / "maps.parquet").exists()   # sample 6 fully built, not renamed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    check_store(root, sample_keys(6))                                  # 0..5 committed and intact
    w = StoreWriter(root)                                              # reopen: sweeps the dead pid's tmp
    assert tmp_dir.name in w.swept and not tmp_dir.exists()
    w.close()
    # random-moment kill while writing, then resume until complete
    proc = spawn_writer(root, "--stop", "24", "--resume", "--sleep", "0.005")
    wait_for(lambda: len(done_sample_keys(root, "r1")) >= 10)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    check_store(root, done_sample_keys(root, "r1"))
    finish(spawn_writer(root, "--stop", "24", "--resume"))
    check_store(root, sample_keys(24))


def test_reader_process_sees_count_grow_while_writer_writes(tmp_path):
    root = tmp_path / "store"
    open_store(root)
    proc = spawn_writer(root, "--stop", "20", "--sleep", "0.02", "--no-durable")
    con = connect_read_only(root)          # this process is the reader; the writer is another one
    seen, errors = [], []
    while proc.poll() is None:
        try:
            seen.append(con.execute("select count(*) from samples").fetchall()[0][0])
            con.execute("select count(*), sum(len(values)) from map_values").fetchall()
        except Exception as e:  # noqa: BLE001 - any error is a failure, collected
            errors.append(repr(e))
        time.sleep(0.03)
    finish(proc)
    seen.append(con.execute("select count(*) from samples").fetchall()[0][0])
    con.close()
    assert errors == []
    assert seen == sorted(seen) and seen[-1] == 20
    assert len(set(seen)) >= 4, seen       # growth observed through one connection


def test_two_writers_disjoint_and_overlapping(tmp_path):
    root = tmp_path / "store"
    open_store(root)
    a = spawn_writer(root, "--indices", ",".join(map(str, range(0, 16))), "--worker", "a", "--no-durable")
    b = spawn_writer(root, "--indices", ",".join(map(str, reversed(range(8, 24)))), "--worker", "b",
                     "--no-durable")
    na, nb = int(finish(a)), int(finish(b))
    assert na + nb == 24                    # the 8 overlapping samples were committed once
    check_store(root, sample_keys(24))
    with connect_read_only(root) as con:
        assert con.execute("select count(*) from runs").fetchall() == [(1,)]
        workers = dict(con.execute("select worker_id, count(*) from samples group by 1").fetchall())
        assert workers.keys() == {"a", "b"}


def test_compaction_while_a_writer_writes(tmp_path):
    root = tmp_path / "store"
    open_store(root)
    proc = spawn_writer(root, "--stop", "24", "--sleep", "0.01", "--no-durable")
    segments = 0
    while proc.poll() is None:
        if (root / "runs" / "r1" / "run.parquet").exists():
            segments += len(compact(root, "r1").segments)
        time.sleep(0.2)
    finish(proc)
    segments += len(compact(root, "r1").segments)
    assert segments >= 2
    check_store(root, sample_keys(24))


PLAIN_DUCKDB = r"""
import json, sys
import duckdb
assert not any(m == "store" or m.startswith(("store.", "tests")) for m in sys.modules)
con = duckdb.connect(sys.argv[1], read_only=True)
out = {v: con.execute("select count(*) from " + v).fetchall()[0][0] for v in sys.argv[2:]}
con.execute("select * from map_values limit 1").fetchall()
print(json.dumps(out))
"""


def views_in_views_md():
    text = (ROOT / "store" / "VIEWS.md").read_text()
    section = text.split("## Views", 1)[1].split("## Macros", 1)[0]
    names = re.findall(r"^### `(\w+)`", section, flags=re.M)
    assert len(names) >= 13
    return names


@pytest.mark.parametrize("populated", [False, True])
def test_plain_duckdb_reads_every_view(tmp_path, populated):
    root = tmp_path / "store"
    if populated:
        w = StoreWriter(root, durable=False)
        from tests.store_helpers import make_run, write_samples
        w.begin_run(make_run("r1"))
        write_samples(w, "r1", range(3))
        w.write_sample("r1", make_sample(3, fail=True)[0])
        w.close()
    else:
        open_store(root)
    names = views_in_views_md()
    res = subprocess.run([sys.executable, "-c", PLAIN_DUCKDB, str(root / "catalog.duckdb"), *names],
                         capture_output=True, text=True, cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": ""})
    assert res.returncode == 0, res.stderr
    counts = json.loads(res.stdout)
    assert set(counts) == set(names)
    if populated:
        assert counts["samples"] == 4 and counts["maps"] == 3 * N_MAPS and counts["runs"] == 1
    else:
        assert all(v == (1 if view == "store_identity" else 0) for view, v in counts.items()), counts


READER = ROOT / "tests" / "plain_duckdb_reader.py"


def test_plain_duckdb_reader_during_writes_and_compactions_sees_no_error_no_drop_no_duplicate(tmp_path):
    """Issue 13: a plain-DuckDB reader process loops queries while two writer processes fill and
    compact a store, for several rounds (a new run each).  Compaction hides merged directories at
    once; they are due for removal 2 s after (the retention here) but stay while the reader has
    the catalog open.  The reader never fails, never sees a count go down or a key twice."""
    root, stop = tmp_path / "store", tmp_path / "stop"
    open_store(root)
    reader = subprocess.Popen([sys.executable, str(READER), str(root / "catalog.duckdb"), str(stop)],
                              cwd=str(tmp_path), env={**os.environ, "PYTHONPATH": ""},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    compaction = ("--compact-every", "3", "--activation-delay", "0.3", "--retention", "2", "--no-durable")
    expected = 0
    try:
        for rnd in range(3):
            run = f"r{rnd}"
            a = spawn_writer(root, "--run", run, "--indices", ",".join(map(str, range(0, 14))), "--worker", "a",
                             *compaction)
            b = spawn_writer(root, "--run", run, "--indices", ",".join(map(str, reversed(range(6, 20)))),
                             "--worker", "b", *compaction)
            assert int(finish(a)) + int(finish(b)) == 20          # the 8 shared samples committed once
            expected += 20
            time.sleep(0.4)
    finally:
        stop.write_text("stop")
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    result = json.loads(out)
    rounds = [r for r in result["rounds"] if len(r) == 5]
    assert result["errors"] == [], f"slowest query {result['slowest_query_s']} s"
    assert len(rounds) >= 20, len(rounds)                        # the reader really overlapped the writers
    for name in ("samples", "maps", "faces", "metrics", "map_values"):
        rows = [r[name][0] for r in rounds]
        assert rows == sorted(rows), f"{name} count went down: {rows}"
        assert all(n == distinct for n, distinct in (r[name] for r in rounds)), f"{name}: a key seen twice"
    assert rounds[-1]["samples"] == [expected, expected] and rounds[-1]["maps"][0] == expected * N_MAPS
    assert len(list((root / "data").glob("run=r*/segment=*"))) >= 6   # compactions did happen, each round
    with connect_read_only(root) as con:
        assert con.execute("select count(*) from store_manifest").fetchall()[0][0] == expected
        seen = con.execute("select count(*), count(distinct sample_key) from samples").fetchall()
    assert len(list((root / "data").glob("run=r*/sample=*"))) == expected   # kept: the reader was connected
    removed = vacuum(root, older_than_s=0)                       # no reader now: removed
    assert removed.n_removed == expected and removed.reader_pid is None
    assert list((root / "data").glob("run=r*/sample=*")) == []
    with connect_read_only(root) as con:
        assert con.execute("select count(*), count(distinct sample_key) from samples").fetchall() == seen
