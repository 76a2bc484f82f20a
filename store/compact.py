"""Compaction: merge the committed sample directories (and late-metrics directories) of a
run into segment directories, so readers open few files instead of thousands.

Steps (each one atomic or idempotent):
  1. _plan            list the committed directories that no segment merged yet;
  2. _build_segment   read them into the typed in-memory tables (keys re-checked), COPY the
                      tables to STORE/tmp/..., then manifest.parquet (the merged directory
                      names, compacted_at = now + ACTIVATION_DELAY_S);
  3. _publish_segment rename tmp -> data/run=<id>/segment=<uuid>/.
The views use a segment from its compacted_at on and then hide the directories it merged
(sql/macros/committed_rows.sql): every file listing of a query that starts after
compacted_at sees the segment, so a query never sees a sample twice or not at all.  Nothing
is removed then: DuckDB still lists the hidden directories and opens their files.  They are
removed by the next compact(), StoreWriter() or vacuum() once their segment has been active
for RETENTION_S and no process has the catalog open (remove_merged).  A crash at any point
leaves a consistent store.  One compaction per run at a time (flock on
STORE/locks/compact-<run_id>.lock).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .db import (INSERT_SQL, RAW_TABLES, load_migrations, open_store, schema_version, typed_memory_connection,
                 write_table)
from .layout import (Layout, StoreError, catalog_reader_pid, fsync_tree, key_of, publish, remove_dir, sweep_tmp,
                     validate_id)
from .records import utcnow

#: a published segment is used by the views from compacted_at = (time of its manifest) + this:
#: longer than any plausible pause between writing the manifest and the rename (and than the
#: clock skew between the hosts of a shared store)
ACTIVATION_DELAY_S = 2.0
#: merged directories are removed this long after their segment became active; a query that
#: runs longer than this while directories are removed can fail (store/README.md)
RETENTION_S = 3600.0

_TABLES = ("samples", "maps", "faces", "sites", "metrics")

#: merge statements (constants); $files is a bound list of Parquet paths
MERGE_SQL = {
    "samples": "insert into raw.samples by name select * from read_parquet($files, union_by_name = true, hive_partitioning = false)",
    "maps": "insert into raw.maps by name select * from read_parquet($files, union_by_name = true, hive_partitioning = false)",
    "faces": "insert into raw.faces by name select * from read_parquet($files, union_by_name = true, hive_partitioning = false)",
    # one row per site (writers repeat them)
    "sites": """insert into raw.sites by name
        select * exclude (filename) from read_parquet($files, union_by_name = true, filename = true, hive_partitioning = false)
        qualify row_number() over (partition by run_id, site order by filename) = 1""",
    # the latest row per key (sample metrics + late metrics)
    "metrics": """insert into raw.metrics by name
        select * exclude (filename) from read_parquet($files, union_by_name = true, filename = true, hive_partitioning = false)
        qualify row_number() over (partition by run_id, sample_key, name, model
                                   order by created_at desc, filename desc) = 1""",
}


@dataclass
class CompactResult:
    run_id: str
    segments: list[str] = field(default_factory=list)   # segment ids written
    n_samples: int = 0                                   # sample directories merged
    n_metrics_dirs: int = 0                              # late-metrics directories merged
    n_cleaned: int = 0                                   # merged directories removed (retention passed)
    n_kept: int = 0                                      # due for removal, kept: a reader had the catalog open


def manifest_values(layout: Layout, run_id: str, column: str, cache: dict | None = None) -> set[str]:
    """The non-null values of one column (``sample_key``, ``source_dir``) of the run's segment
    manifests. Segments are immutable, so a cache {segment path: values} (one per column) may
    be passed to read each manifest once."""
    values: set[str] = set()
    for seg in layout.segment_dirs(run_id):
        if cache is not None and seg in cache:
            values |= cache[seg]
            continue
        f = seg / "manifest.parquet"
        if f.exists():
            seg_values = {v for v in pq.read_table(f, columns=[column]).column(0).to_pylist() if v}
            values |= seg_values
            if cache is not None:
                cache[seg] = seg_values
    return values


def merged_dir_names(layout: Layout, run_id: str, cache: dict | None = None) -> set[str]:
    """Names of the sample/metrics directories that the run's segment manifests list."""
    return manifest_values(layout, run_id, "source_dir", cache)


def merged_since(layout: Layout, run_id: str) -> dict[str, dt.datetime]:
    """{merged directory name: compacted_at (UTC) of the first segment that merged it}."""
    out: dict[str, dt.datetime] = {}
    for seg in layout.segment_dirs(run_id):
        f = seg / "manifest.parquet"
        if f.exists():
            t = pq.read_table(f, columns=["source_dir", "compacted_at"]).to_pydict()
            for name, at in zip(t["source_dir"], t["compacted_at"]):
                out[name] = min(at, out.get(name, at))
    return out


def _tree_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


@dataclass
class Removal:
    n_removed: int = 0          # merged directories removed
    bytes_freed: int = 0
    n_kept: int = 0             # old enough, kept because a reader had the catalog open
    reader_pid: int | None = None


def remove_merged(layout: Layout, run_id: str, older_than_s: float = RETENTION_S, *,
                  even_with_readers: bool = False) -> Removal:
    """Remove the sample/metrics directories of a run whose segment became active (compacted_at)
    at least ``older_than_s`` seconds ago, unless a process has the catalog open.

    Why the reader check: DuckDB lists every directory that a view's glob matches, hidden ones
    included, and opens their files a moment later, so removing a directory can fail a query
    running at that moment.  A connection to the catalog (DuckDB locks the file) is seen and the
    directories stay until no connection is open.  ``even_with_readers`` removes them anyway."""
    merged = merged_since(layout, run_id)
    now = utcnow()
    out = Removal()
    due = [d for d in layout.sample_dirs(run_id) + layout.metrics_dirs(run_id)
           if d.name in merged and (now - merged[d.name]).total_seconds() >= older_than_s]
    if not due:
        return out
    out.reader_pid = None if even_with_readers else catalog_reader_pid(layout)
    if out.reader_pid is not None:
        out.n_kept = len(due)
        return out
    sizes = [_tree_bytes(d) for d in due]
    for d, size in zip(due, sizes):  # one rename each (readers stop seeing them), then rmtree
        remove_dir(layout, d)
        out.n_removed += 1
        out.bytes_freed += size
    return out


def _plan(layout: Layout, run_id: str) -> list[Path]:
    """Committed directories that no segment merged yet: sample dirs (with samples.parquet)
    then metrics dirs."""
    merged = merged_dir_names(layout, run_id)
    dirs = [d for d in layout.sample_dirs(run_id) if (d / "samples.parquet").exists() and d.name not in merged]
    dirs += [d for d in layout.metrics_dirs(run_id) if (d / "metrics.parquet").exists() and d.name not in merged]
    return dirs


def _build_segment(layout: Layout, run_id: str, dirs: list[Path], *,
                   activation_delay_s: float = ACTIVATION_DELAY_S, durable: bool = True) -> tuple[Path, str]:
    """Write the merged tables of dirs into a tmp dir (fsynced when durable), then their
    manifest, whose compacted_at is now + activation_delay_s; returns (tmp, segment_id)."""
    migrations = load_migrations()
    con = typed_memory_connection(migrations)
    segment_id = uuid.uuid4().hex
    tmp = layout.new_tmp()
    tmp.mkdir(parents=True)
    try:
        for t in _TABLES:
            files = [str(d / f"{t}.parquet") for d in dirs if (d / f"{t}.parquet").exists()]
            if files:
                con.execute(MERGE_SQL[t], {"files": files}).fetchall()
            if con.table(RAW_TABLES[t]).count("*").fetchall()[0][0]:
                write_table(con, t, tmp / f"{t}.parquet")
        if durable:
            fsync_tree(tmp)  # the slow part happens before compacted_at is chosen
        active_from = utcnow() + dt.timedelta(seconds=activation_delay_s)
        manifest = [{"run_id": run_id, "segment_id": segment_id, "source_dir": d.name,
                     "kind": d.name.split("=", 1)[0],
                     "sample_key": key_of(d.name) if d.name.startswith("sample=") else None,
                     "compacted_at": active_from, "schema_version": schema_version(migrations)} for d in dirs]
        con.register("incoming", pa.Table.from_pylist(manifest))
        con.execute(INSERT_SQL["manifest"]).fetchall()
        write_table(con, "manifest", tmp / "manifest.parquet")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.close()
    return tmp, segment_id


def _publish_segment(layout: Layout, run_id: str, tmp: Path, segment_id: str, durable: bool = True) -> Path:
    target = layout.run_data(run_id) / f"segment={segment_id}"
    if not publish(tmp, target, durable=durable):
        raise RuntimeError(f"segment {segment_id} exists")  # uuid collision: impossible
    return target


def _run_lock(layout: Layout, run_id: str):
    lock = open(layout.locks / f"compact-{run_id}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def compact(path, run_id: str, *, max_dirs_per_segment: int | None = 5000,
            activation_delay_s: float = ACTIVATION_DELAY_S, retention_s: float = RETENTION_S,
            durable: bool = True) -> CompactResult:
    """Merge the committed sample and late-metrics directories of a run that no segment merged
    yet into new segments, and remove merged directories older than ``retention_s``.

    Safe while writers commit new samples (those wait for the next compaction) and while any
    reader queries, plain DuckDB included: the merged directories stay until ``retention_s``
    after their segment became active (``activation_delay_s`` after it was built).
    ``activation_delay_s=0, retention_s=0`` removes them at once (no reader may be running)."""
    layout = open_store(path).layout
    validate_id("run_id", run_id)
    result = CompactResult(run_id)
    with _run_lock(layout, run_id):
        planned = _plan(layout, run_id)  # later commits wait for the next compaction
        step = max_dirs_per_segment or max(len(planned), 1)
        for i in range(0, len(planned), step):
            dirs = planned[i:i + step]
            tmp, segment_id = _build_segment(layout, run_id, dirs, activation_delay_s=activation_delay_s,
                                             durable=durable)
            _publish_segment(layout, run_id, tmp, segment_id, durable)
            result.segments.append(segment_id)
            result.n_samples += sum(d.name.startswith("sample=") for d in dirs)
            result.n_metrics_dirs += sum(d.name.startswith("metrics=") for d in dirs)
        removal = remove_merged(layout, run_id, retention_s)
        result.n_cleaned, result.n_kept = removal.n_removed, removal.n_kept
    return result


@dataclass
class VacuumResult:
    n_removed: int = 0      # merged directories removed
    bytes_freed: int = 0
    n_kept: int = 0         # old enough but kept: a reader had the catalog open
    reader_pid: int | None = None
    n_tmp: int = 0          # work in progress of dead processes removed from tmp/
    runs: list[str] = field(default_factory=list)


def vacuum(path, older_than_s: float, run_id: str | None = None, *, even_with_readers: bool = False
           ) -> VacuumResult:
    """Remove the merged directories of every run (or one) whose segment became active at least
    ``older_than_s`` seconds ago, and the tmp/ leftovers of dead processes.  Directories are
    kept while a process has the catalog open (remove_merged), unless ``even_with_readers``:
    then a query running at that moment can fail."""
    layout = Layout(path)
    if not layout.catalog.exists() and not layout.data.is_dir():
        raise StoreError(f"{layout.root} is not a store (no catalog.duckdb, no data/): give the folder "
                         "that `fastface capture --store` wrote")
    if older_than_s < 0:
        raise StoreError(f"older_than_s must be >= 0, not {older_than_s}")
    layout.locks.mkdir(parents=True, exist_ok=True)
    result = VacuumResult()
    for rid in [validate_id("run_id", run_id)] if run_id else layout.run_ids():
        with _run_lock(layout, rid):
            removal = remove_merged(layout, rid, older_than_s, even_with_readers=even_with_readers)
        result.n_removed += removal.n_removed
        result.bytes_freed += removal.bytes_freed
        result.n_kept += removal.n_kept
        result.reader_pid = result.reader_pid or removal.reader_pid
        result.runs.append(rid)
    result.n_tmp = len(sweep_tmp(layout))
    return result
