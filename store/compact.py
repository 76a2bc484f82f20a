"""Compaction: merge the committed sample directories (and late-metrics directories) of a
run into segment directories, so readers open few files instead of thousands.

Steps (each one atomic or idempotent):
  1. _plan            list the committed directories that no segment merged yet;
  2. split_segments  cut them into groups of at most CompactLimits.max_segment_samples
                      directories and max_segment_bytes bytes (one segment each);
  3. build_segment   stream each table of a group with one DuckDB COPY into STORE/tmp/...
                      (keys re-checked first; store/segment.py: SEGMENT_TABLES, the registry
                      of table kinds and merge rules), then manifest.parquet (the merged
                      directory names, compacted_at = now + ACTIVATION_DELAY_S);
  4. _publish_segment rename tmp -> data/run=<id>/segment=<uuid>/.
Memory does not grow with the run: DuckDB streams the files row group by row group within
CompactLimits.memory_limit and spills beyond it to STORE/tmp (store/README.md: measured).
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
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from .backfill import needs_summaries, summarise_dir
from .db import open_store
from .layout import (Layout, StoreError, catalog_reader_pid, publish, remove_dir, run_lock, sweep_tmp,
                     validate_id)
from .records import utcnow
from .segment import SEGMENT_TABLES, CompactLimits, build_segment, split_segments

__all__ = ["ACTIVATION_DELAY_S", "RETENTION_S", "SEGMENT_TABLES", "CompactLimits", "CompactResult", "compact",
           "vacuum", "remove_merged", "manifest_values", "merged_dir_names", "merged_since"]

#: a published segment is used by the views from compacted_at = (time of its manifest) + this:
#: longer than any plausible pause between writing the manifest and the rename (and than the
#: clock skew between the hosts of a shared store)
ACTIVATION_DELAY_S = 2.0
#: merged directories are removed this long after their segment became active; a query that
#: runs longer than this while directories are removed can fail (store/README.md)
RETENTION_S = 3600.0

# The table kinds of a sample directory and their merge rules: store.segment.SEGMENT_TABLES
# (one registry; add a kind there).


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


def _build_segment(layout: Layout, run_id: str, dirs: list[Path], *, limits: CompactLimits | None = None,
                   activation_delay_s: float = ACTIVATION_DELAY_S, durable: bool = True) -> tuple[Path, str]:
    """Write the merged tables of dirs into a tmp dir, then their manifest (compacted_at = now +
    activation_delay_s); returns (tmp, segment_id).  Streams: store.segment.build_segment."""
    return build_segment(layout, run_id, dirs, limits=limits, activation_delay_s=activation_delay_s,
                         durable=durable)


def _publish_segment(layout: Layout, run_id: str, tmp: Path, segment_id: str, durable: bool = True) -> Path:
    target = layout.run_data(run_id) / f"segment={segment_id}"
    if not publish(tmp, target, durable=durable):
        raise RuntimeError(f"segment {segment_id} exists")  # uuid collision: impossible
    return target


def compact(path, run_id: str, *, limits: CompactLimits | None = None,
            activation_delay_s: float = ACTIVATION_DELAY_S, retention_s: float = RETENTION_S,
            durable: bool = True) -> CompactResult:
    """Merge the committed sample and late-metrics directories of a run that no segment merged
    yet into new segments, and remove merged directories older than ``retention_s``.

    Segments hold at most ``limits.max_segment_samples`` directories and about
    ``limits.max_segment_bytes`` bytes (CompactLimits: 5,000 and 2 GiB by default); each is
    built by streaming (DuckDB within ``limits.memory_limit``, 512 MB by default), so memory
    does not grow with the run.  Each segment is published on its own: an interrupted
    compaction leaves the segments published so far, and the next one merges the rest.

    Safe while writers commit new samples (those wait for the next compaction) and while any
    reader queries, plain DuckDB included: the merged directories stay until ``retention_s``
    after their segment became active (``activation_delay_s`` after it was built).
    ``activation_delay_s=0, retention_s=0`` removes them at once (no reader may be running)."""
    limits = limits or CompactLimits()
    layout = open_store(path).layout
    validate_id("run_id", run_id)
    result = CompactResult(run_id)
    with run_lock(layout, run_id):
        planned = _plan(layout, run_id)  # later commits wait for the next compaction
        for d in planned:  # summaries of older code (store/backfill.py): merged rows stay right
            if needs_summaries(d):
                summarise_dir(layout, d, durable=durable)
        for dirs in split_segments(planned, limits):
            tmp, segment_id = build_segment(layout, run_id, dirs, limits=limits,
                                            activation_delay_s=activation_delay_s, durable=durable)
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
        with run_lock(layout, rid):
            removal = remove_merged(layout, rid, older_than_s, even_with_readers=even_with_readers)
        result.n_removed += removal.n_removed
        result.bytes_freed += removal.bytes_freed
        result.n_kept += removal.n_kept
        result.reader_pid = result.reader_pid or removal.reader_pid
        result.runs.append(rid)
    result.n_tmp = len(sweep_tmp(layout))
    return result
