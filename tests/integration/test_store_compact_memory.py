"""Compaction of a run bigger than the memory it is given: a child process compacts ~450 MB of
maps (100 samples x 2,240 maps of 32x32 float16, SDXL's capture spec) under a 400 MB cap on its
resident memory (a watchdog kills it above the cap; the child reports its VmHWM) and a DuckDB
memory_limit of 256 MB, and the store answers the same counts and keys afterwards.

The compaction of HEAD~ (all rows in in-memory DuckDB tables) needs ~2.6 GB for 60 such
samples: it is killed here.  RLIMIT_AS is not used: DuckDB and pyarrow reserve ~2.6 GB of
address space (not memory) whatever they compact, so an address-space cap says nothing.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from store.db import connect_read_only  # noqa: E402
from store.layout import Layout  # noqa: E402
from store.records import MapRecord, SampleRecord, SiteRecord, sample_key  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.benchmarks.bench_compaction import SDXL_SITES  # noqa: E402
from tests.store_helpers import clone_sample_dir, make_run, tiny_png  # noqa: E402

N_SAMPLES = 100
CAP_MB = 400              # resident memory allowed to the compacting process
DUCKDB_MEMORY = "256MB"   # CompactLimits.memory_limit given to it
SEGMENT_BYTES = 100 << 20  # -> 2-3 segments

CHILD = """
import sys
from store.compact import compact
try:
    from store.compact import CompactLimits
    kw = {"limits": CompactLimits(memory_limit=sys.argv[2], max_segment_bytes=int(sys.argv[3]))}
except ImportError:  # older code has no limits: it is measured as it is
    kw = {}
res = compact(sys.argv[1], "r1", activation_delay_s=0, retention_s=0, **kw)
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(len(res.segments), res.n_samples, hwm)  # VmHWM: this process's peak RSS (kB) since exec
"""


def _sample(i: int) -> SampleRecord:
    return SampleRecord(sample_key=sample_key("id", "prompt", i), identity=f"id{i % 7}", prompt="prompt",
                        category="realistic", seed=i, image_png=tiny_png(2, 2, i), width=64, height=64)


def _build(root: Path) -> None:
    """Two samples through StoreWriter (2,240 maps each), then N_SAMPLES - 2 clones of the first."""
    rng = np.random.default_rng(0)
    maps = []
    for s in SDXL_SITES:
        for step in range(4):
            m = rng.random((4, 32, 32)) ** 4
            for token in range(4):
                for stage in ("pre", "post"):
                    maps.append(MapRecord.from_map(m[token] / m[token].sum(), site=s, step=step, branch="text_id",
                                                   token=token, stage=stage))
    sites = [SiteRecord.from_key(s, heads=10, height=32, width=32) for s in SDXL_SITES]
    with StoreWriter(root, durable=False) as w:
        w.begin_run(make_run("r1"))
        for i in range(2):
            assert w.write_sample("r1", _sample(i), maps=maps, sites=sites)
    layout = Layout(root)
    template = layout.sample_dir("r1", _sample(0).sample_key)
    tmp = layout.tmp / "clones"
    tmp.mkdir()
    for i in range(2, N_SAMPLES):  # built aside, then renamed in: each appears whole
        key = _sample(i).sample_key
        clone_sample_dir(template, tmp / key, key)
        os.rename(tmp / key, layout.sample_dir("r1", key))
    tmp.rmdir()


def _answers(root: Path) -> dict:
    with connect_read_only(root) as con:
        q = {t: con.execute(f"select count(*) from {t}").fetchall()[0][0]
             for t in ("samples", "maps", "faces", "metrics", "sites")}
        q["keys"] = sorted(con.execute("select sample_key from samples").fetchall())
        q["maps_per_sample"] = sorted(con.execute("select sample_key, count(*), count(distinct (site, step, token, "
                                                  "stage)) from maps group by 1").fetchall())
        q["map_sum"] = con.execute("select round(sum(mean), 6), sum(len(data)) from maps").fetchall()
    return q


def _compact_under_cap(root: Path) -> tuple[int, float, str]:
    """Run the compaction in a child; kill it when its resident memory passes CAP_MB.
    Returns (exit status, its peak RSS in MB, stdout + stderr).  (Not wait4's ru_maxrss: on
    Linux it includes the RSS of this pytest process at fork time.)"""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), DUCKDB_MEMORY, str(SEGMENT_BYTES)],
                            cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed, peak_kb = False, 0
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            rss_kb = int(next(line.split()[1] for line in open(f"/proc/{proc.pid}/status") if line.startswith("VmRSS")))
        except (OSError, StopIteration):
            rss_kb = 0
        peak_kb = max(peak_kb, rss_kb)
        if rss_kb > CAP_MB * 1024 and not killed:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
        time.sleep(0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read()
    if proc.returncode == 0:
        peak_kb = max(peak_kb, int(out.split()[-1]))  # the child's own VmHWM
    print(f"compaction: exit {proc.returncode}, peak RSS {peak_kb / 1024:.0f} MB (cap {CAP_MB} MB)")
    return proc.returncode, peak_kb / 1024, ("killed above the cap\n" if killed else "") + out


def test_compaction_of_a_run_bigger_than_its_memory_cap(tmp_path):
    root = tmp_path / "store"
    _build(root)
    before = _answers(root)
    map_mb = before["map_sum"][0][1] * 2 / 1e6  # float16 values, as a compaction in memory holds them
    assert map_mb > CAP_MB, f"the run ({map_mb:.0f} MB of maps) must be bigger than the cap"
    assert before["samples"] == N_SAMPLES and before["maps"] == N_SAMPLES * len(SDXL_SITES) * 32
    code, peak_mb, out = _compact_under_cap(root)
    assert code == 0, f"compaction failed (peak {peak_mb:.0f} MB, cap {CAP_MB} MB):\n{out[-2000:]}"
    assert peak_mb < CAP_MB, f"peak resident memory {peak_mb:.0f} MB > cap {CAP_MB} MB"
    n_segments, n_samples = map(int, out.split()[-3:-1])
    layout = Layout(root)
    assert n_samples == N_SAMPLES and n_segments == len(layout.segment_dirs("r1")) >= 2
    assert layout.sample_dirs("r1") == []
    assert _answers(root) == before
