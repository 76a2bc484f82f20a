"""The store's live Parquet files, for engines that read Parquet without the catalog: Ray Data,
pyarrow.dataset, Spark, Polars, Dask (store/README.md, "Reading a store on a cluster").

The DuckDB views (sql/macros/committed_rows.sql, sql/views/*.sql) decide at query time which
files count.  This module applies the same rules in pure Python + pyarrow (no DuckDB, no
catalog), at one moment ``at`` (UTC, default now), and returns the paths:

* a segment ``data/run=<id>/segment=<uuid>/`` is **active** once its manifest's
  ``compacted_at`` <= ``at``; an active segment is used and the sample directories whose
  ``(run_id, sample_key)`` its manifest lists are hidden, as are the late-metrics directories
  (``metrics=<id>``) it lists;
* a segment that is published but not active yet is not used; the directories it merged are;
* a run may have any number of segments (compaction splits large runs); each is judged alone;
* ``metrics`` and ``sites`` still need their key rule after reading (``DEDUP``): metrics keep
  the row with the greatest ``created_at`` per (run_id, sample_key, name, model) (a late
  metric overrides the one written with its sample), sites keep one row per (run_id, site).
  :func:`read_ray` applies it.  ``samples``, ``maps`` and ``faces`` (and ``face_mass``) need
  nothing more: each live row is one view row.  ``map_stats`` rows are partial sums (one per
  map in a sample directory, one per map key in a segment): add them up per key.

The listing is a snapshot.  Files never change; listed directories are removed only after a
later segment hid them and the retention period (``store.compact.RETENTION_S``, 1 h) passed
with no process holding the catalog open.  ``Listing.hold()`` holds the catalog open (a shared
lock, as a DuckDB connection does) on the driver while a long job reads.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .layout import EMPTY, TABLE_FILES, Layout, StoreError, key_of

#: tables read from data/run=<id>/{sample,segment}=*/<table>.parquet (+ metrics=*/ for metrics):
#: samples, maps, faces, metrics, sites and any per-sample table a migration adds
DATA_TABLES = tuple(t for t in TABLE_FILES if t != "manifest")
#: every table the listing knows: the data tables, the run files and the segment manifests
TABLES = DATA_TABLES + ("runs", "run_events", "manifest")
#: key columns whose duplicates a reader must drop after reading the live files:
#: (keys, order column: keep the greatest; None = any row, the rows are equal)
DEDUP: dict[str, tuple[tuple[str, ...], str | None]] = {
    "metrics": (("run_id", "sample_key", "name", "model"), "created_at"),
    "sites": (("run_id", "site"), None),
}


def utcnow() -> dt.datetime:
    """Naive UTC (the store's TIMESTAMP convention)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class Segment:
    """One published segment and what its manifest says."""

    run_id: str
    segment_id: str
    path: Path
    compacted_at: dt.datetime          # naive UTC: used from this moment on
    source_dirs: frozenset[str]        # 'sample=<key>' / 'metrics=<id>' it merged

    def active(self, at: dt.datetime) -> bool:
        return self.compacted_at <= at


def read_segments(layout: Layout, run_id: str) -> list[Segment]:
    """The run's published segments with a manifest (a segment dir without one is never used:
    the views read compacted_at from it)."""
    out = []
    for seg in layout.segment_dirs(run_id):
        f = seg / "manifest.parquet"
        if not f.exists():
            continue
        t = pq.read_table(f, columns=["source_dir", "compacted_at"]).to_pydict()
        if not t["compacted_at"]:
            continue
        at = min(t["compacted_at"])    # one value per segment; min is the safe side
        at = at.replace(tzinfo=None) if at.tzinfo is None else at.astimezone(dt.timezone.utc).replace(tzinfo=None)
        out.append(Segment(run_id, key_of(seg.name), seg, at, frozenset(t["source_dir"])))
    return out


@dataclass
class Listing:
    """The live files of a store at one moment (``at``), per table, as absolute paths."""

    root: Path
    store_id: str | None
    at: dt.datetime
    files: dict[str, list[str]] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)    # every published segment seen
    hidden_dirs: list[str] = field(default_factory=list)     # directories hidden by active segments

    def paths(self, table: str, *, placeholder: bool = False) -> list[str]:
        """The live files of ``table``.  ``placeholder``: a typed empty file when there is none
        (engines such as ray.data.read_parquet refuse an empty list)."""
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}; expected one of {TABLES}")
        files = list(self.files.get(table, []))
        if not files and placeholder:
            files = [str(_placeholder(Layout(self.root), table))]
        return files

    def uris(self, table: str) -> list[str]:
        """``file://`` URIs (Spark, object-store style readers)."""
        return [Path(p).as_uri() for p in self.paths(table)]

    def active_segments(self) -> list[Segment]:
        return [s for s in self.segments if s.active(self.at)]

    @contextlib.contextmanager
    def hold(self):
        """Hold the catalog open (a shared lock on catalog.duckdb, as every DuckDB connection
        holds) while a job reads these files: compaction and vacuum then keep every merged
        directory (store/README.md, reader check).  Seen by processes on this host (and hosts
        whose shared filesystem forwards POSIX locks); a catalog rebuilt meanwhile is a new
        file, so the retention period is the only guard then."""
        path = Layout(self.root).catalog
        if not path.exists():
            yield self
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            _shared_lock(fd)
            yield self
        finally:
            os.close(fd)  # drops the lock


def _shared_lock(fd: int) -> None:
    """A shared POSIX record lock, the kind DuckDB takes: other processes see this pid
    (store.layout.catalog_reader_pid).  POSIX semantics: closing any descriptor of the file in
    this process drops it, so run compaction/vacuum in other processes."""
    fcntl.lockf(fd, fcntl.LOCK_SH)


def _placeholder(layout: Layout, table: str) -> Path:
    if table == "runs":
        return layout.empty_run / "run.parquet"
    if table == "run_events":
        return layout.empty_run / "events" / "_empty.parquet"
    return layout.data / f"run={EMPTY}" / f"segment={EMPTY}" / f"{table}.parquet"


def _store_id(layout: Layout) -> str | None:
    if not layout.store_id_file.exists():
        return None
    col = pq.read_table(layout.store_id_file).column(0).to_pylist()
    return col[0] if col else None


def _run_ids(layout: Layout) -> list[str]:
    try:
        names = [p.name for p in layout.data.iterdir() if p.is_dir() and p.name.startswith("run=")]
    except FileNotFoundError:
        return []
    return sorted(key_of(n) for n in names if key_of(n) != EMPTY)


def list_files(store, *, at: dt.datetime | None = None, run_ids: Iterable[str] | None = None,
               tables: Iterable[str] = TABLES) -> Listing:
    """List the live Parquet files of every table of ``store`` at ``at`` (naive or aware UTC,
    default now); ``run_ids`` limits the listing to those runs (the others' folders are not
    read).  Raises StoreError when ``store`` is not a store folder."""
    layout = Layout(store)
    if not layout.data.is_dir():
        raise StoreError(f"{layout.root} is not a store (no data/ folder): give the folder that "
                         "`fastface capture --store` wrote")
    if at is None:
        at = utcnow()
    elif at.tzinfo is not None:
        at = at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    tables = tuple(tables)
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise StoreError(f"unknown tables {sorted(unknown)}; expected some of {TABLES}")
    listing = Listing(layout.root, _store_id(layout), at, {t: [] for t in tables})
    wanted = set(run_ids) if run_ids is not None else None
    for run_id in _run_ids(layout):
        if wanted is not None and run_id not in wanted:
            continue
        _list_run(layout, run_id, listing, tables)
    _list_runs(layout, listing, tables, wanted)
    return listing


def _list_run(layout: Layout, run_id: str, listing: Listing, tables: tuple[str, ...]) -> None:
    segments = read_segments(layout, run_id)
    listing.segments.extend(segments)
    active = [s for s in segments if s.active(listing.at)]
    hidden = set().union(*(s.source_dirs for s in active)) if active else set()
    dirs = layout.sample_dirs(run_id) + layout.metrics_dirs(run_id)
    listing.hidden_dirs.extend(str(d) for d in dirs if d.name in hidden)
    live = [d for d in dirs if d.name not in hidden] + [s.path for s in active]
    for table in tables:
        if table in DATA_TABLES:
            listing.files[table].extend(str(d / f"{table}.parquet") for d in live
                                        if (d / f"{table}.parquet").is_file())
        elif table == "manifest":
            listing.files[table].extend(str(s.path / "manifest.parquet") for s in segments)


def _list_runs(layout: Layout, listing: Listing, tables: tuple[str, ...], wanted: set[str] | None) -> None:
    for run_id in layout.run_ids():
        if wanted is not None and run_id not in wanted:
            continue
        d = layout.runs / run_id
        if "runs" in tables and (d / "run.parquet").is_file():
            listing.files["runs"].append(str(d / "run.parquet"))
        if "run_events" in tables:
            listing.files["run_events"].extend(sorted(str(f) for f in (d / "events").glob("*.parquet")))


def live_files(store, table: str, **kwargs) -> list[str]:
    """The live files of one table (``list_files(store, tables=[table], ...).paths(table)``)."""
    return list_files(store, tables=[table], **kwargs).paths(table)


def keep_latest(table: pa.Table, keys: Iterable[str], order: str | Iterable[str] | None) -> pa.Table:
    """One row per ``keys``: the one with the greatest ``order`` column(s), compared in turn
    (any one when None); rows keep their input order."""
    keys = list(keys)
    if table.num_rows == 0:
        return table
    t = table.append_column("__i", pa.array(range(table.num_rows), pa.int64()))
    if order is not None:
        t = t.sort_by([(c, "descending") for c in ([order] if isinstance(order, str) else order)])
    t = t.append_column("__r", pa.array(range(t.num_rows), pa.int64()))
    first = t.group_by(keys, use_threads=False).aggregate([("__r", "min")]).column("__r_min")
    picked = pc.take(t.column("__i"), first)
    return table.take(pc.take(picked, pc.sort_indices(picked)))


def read_ray(store_or_listing, table: str, *, columns: list[str] | None = None, dedup: bool = True,
             **read_kwargs):
    """A ``ray.data.Dataset`` of one table: ``ray.data.read_parquet`` over the live files (no
    hive partitioning: the files carry run_id/sample_key themselves).  For metrics and sites the
    key rule of ``DEDUP`` is applied with a shuffle by the key columns (``columns`` must then
    include them); ``dedup=False`` leaves it to the caller, e.g. ``keep_latest`` per block in
    ``map_batches`` and once more over the blocks' results (the rule is associative)."""
    import ray.data

    listing = store_or_listing if isinstance(store_or_listing, Listing) else list_files(store_or_listing)
    ds = ray.data.read_parquet(listing.paths(table, placeholder=True), partitioning=None, **read_kwargs)
    if columns is not None:
        ds = ds.select_columns(list(columns))   # projected into the read
    if dedup and table in DEDUP:
        keys, order = DEDUP[table]
        ds = ds.groupby(list(keys)).map_groups(lambda b: keep_latest(b, keys, order), batch_format="pyarrow")
    return ds
