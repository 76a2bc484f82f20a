"""Compaction: merge the committed sample directories (and late-metrics directories) of a
run into segment directories, so readers open few files instead of thousands.

Steps (each one atomic or idempotent):
  1. _plan            list the committed directories to merge;
  2. _build_segment   read them into the typed in-memory tables (keys re-checked), COPY the
                      tables + manifest.parquet (the merged directory names) to STORE/tmp/...;
  3. _publish_segment rename tmp -> data/run=<id>/segment=<uuid>/;
  4. _remove_merged   rename each merged directory to tmp/ and delete it.
A crash after 3 leaves merged directories next to the segment: the views hide sample
directories whose key is in a manifest (and the metrics view keeps one row per key), and the
next compact() / StoreWriter() removes them (finish_pending).  One compaction per run at a
time (flock on STORE/locks/compact-<run_id>.lock).
"""

from __future__ import annotations

import fcntl
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .db import (INSERT_SQL, RAW_TABLES, load_migrations, open_store, schema_version, typed_memory_connection,
                 write_table)
from .layout import Layout, key_of, publish, remove_dir, validate_id
from .records import utcnow

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
    n_cleaned: int = 0                                   # leftovers of an interrupted compaction removed


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


def finish_pending(layout: Layout, run_id: str) -> int:
    """Remove directories that a segment manifest lists as merged (interrupted compaction)."""
    merged = merged_dir_names(layout, run_id)
    n = 0
    for d in layout.sample_dirs(run_id) + layout.metrics_dirs(run_id):
        if d.name in merged:
            remove_dir(layout, d)
            n += 1
    return n


def _plan(layout: Layout, run_id: str) -> list[Path]:
    """Committed directories to merge: sample dirs (with samples.parquet) then metrics dirs."""
    dirs = [d for d in layout.sample_dirs(run_id) if (d / "samples.parquet").exists()]
    dirs += [d for d in layout.metrics_dirs(run_id) if (d / "metrics.parquet").exists()]
    return dirs


def _build_segment(layout: Layout, run_id: str, dirs: list[Path]) -> tuple[Path, str]:
    """Write the merged tables + manifest of dirs into a tmp dir; returns (tmp, segment_id)."""
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
        now = utcnow()
        manifest = [{"run_id": run_id, "segment_id": segment_id, "source_dir": d.name,
                     "kind": d.name.split("=", 1)[0],
                     "sample_key": key_of(d.name) if d.name.startswith("sample=") else None,
                     "compacted_at": now, "schema_version": schema_version(migrations)} for d in dirs]
        con.register("incoming", pa.Table.from_pylist(manifest))
        con.execute(INSERT_SQL["manifest"]).fetchall()
        for t in (*_TABLES, "manifest"):
            if t == "manifest" or con.table(RAW_TABLES[t]).count("*").fetchall()[0][0]:
                write_table(con, t, tmp / f"{t}.parquet")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.close()
    return tmp, segment_id


def _publish_segment(layout: Layout, run_id: str, tmp: Path, segment_id: str) -> Path:
    target = layout.run_data(run_id) / f"segment={segment_id}"
    if not publish(tmp, target):
        raise RuntimeError(f"segment {segment_id} exists")  # uuid collision: impossible
    return target


def _remove_merged(layout: Layout, dirs: list[Path]) -> None:
    for d in dirs:
        remove_dir(layout, d)


def compact(path, run_id: str, *, max_dirs_per_segment: int | None = 5000) -> CompactResult:
    """Merge all committed sample and late-metrics directories of a run into segments.

    Safe while writers commit new samples (those stay for the next compaction) and while
    readers query (a query racing the removal of merged files may fail with a
    file-not-found error: store.queries.run_query retries those)."""
    layout = open_store(path).layout
    validate_id("run_id", run_id)
    result = CompactResult(run_id)
    with open(layout.locks / f"compact-{run_id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result.n_cleaned = finish_pending(layout, run_id)
        planned = _plan(layout, run_id)  # later commits wait for the next compaction
        step = max_dirs_per_segment or max(len(planned), 1)
        for i in range(0, len(planned), step):
            dirs = planned[i:i + step]
            tmp, segment_id = _build_segment(layout, run_id, dirs)
            _publish_segment(layout, run_id, tmp, segment_id)
            _remove_merged(layout, dirs)
            result.segments.append(segment_id)
            result.n_samples += sum(d.name.startswith("sample=") for d in dirs)
            result.n_metrics_dirs += sum(d.name.startswith("metrics=") for d in dirs)
    return result
