"""Building one compaction segment with bounded memory: the table kinds of a sample directory
and how each is merged (SEGMENT_TABLES), how a run's directories are split into segments of
a bounded size (CompactLimits, split_segments), and the streaming build (build_segment).

Every table is written by one DuckDB ``COPY (select ... from read_parquet($files)) TO $path``
(store/sql/compact/<table>.sql): DuckDB streams the sample files through its Parquet writer
row group by row group, so the memory a compaction needs depends on the row-group size, the
number of threads and the connection's ``memory_limit``, not on how many samples the run has.
What does not fit (the hash tables of the key checks, the window of the metrics rule) spills
to a ``STORE/tmp/<pid>-<uuid>-<host>.spill`` folder, removed afterwards (or swept when the
process died).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import INSERT_SQL, RAW_TABLES, SQL_DIR, apply_migrations, load_migrations, schema_version, write_table
from .layout import Layout, StoreError, fsync_tree, key_of
from .records import utcnow


_OPTIONS_RE = re.compile(r"(row_group_size \d+)?")


@dataclass(frozen=True)
class SegmentTable:
    """One table kind of the sample (and late-metrics) directories, and how compaction merges it.

    ``name``: the file <name>.parquet of the directories and of the segment, and the typed table
    raw.<name> (a migration defines it).  ``merge``: a SQL file under store/sql (without
    ``.sql``): one ``select`` over ``$files`` (the table's files of the merged directories) that
    applies the table's merge rule; compaction COPYs its rows into the segment, in the typed
    table's columns (``copy_sql``).  ``duplicates``: a SQL file returning the keys that occur
    more than once (any refuses the compaction; the first two columns are run_id, sample_key,
    the last a count); None when the merge rule itself keeps one row per key.
    ``options``: extra COPY options, '' or 'row_group_size N' (rows a row group holds in memory
    while it is written: keep it small for wide rows)."""
    name: str
    merge: str
    duplicates: str | None = None
    options: str = ""

    def __post_init__(self):
        if not _OPTIONS_RE.fullmatch(self.options):
            raise StoreError(f"SegmentTable {self.name!r}: options must be '' or 'row_group_size N'")

    def copy_sql(self) -> str:
        """``copy (typed empty raw.<name> union all by name the merge select) to $path (...)``,
        built from constants only (this registry and SQL files): no value ever enters it."""
        select = _sql(self.merge).rstrip().rstrip(";")
        options = ", " + self.options if self.options else ""
        return ("copy (\n    select * from " + RAW_TABLES[self.name] + "\n    union all by name\n"
                "    select * from (\n" + select + "\n    )\n) to $path "
                "(format parquet, compression zstd, parquet_version v2" + options + ")")

    def duplicates_sql(self) -> str | None:
        return None if self.duplicates is None else _sql(self.duplicates)


#: THE REGISTRY of the table kinds that compaction merges, in the order it writes them.  To add
#: a kind (a new <name>.parquet in sample directories): a migration with raw.<name>, its merge
#: select (and duplicates query) under store/sql/, one entry here.  Merge rules:
#:   samples, maps, faces  every row (compact/all_rows), keys re-checked: a key twice refuses
#:   sites                 one row per (run_id, site) (writers repeat them)
#:   metrics               the latest row per (run_id, sample_key, name, model)
#:   map_stats             summed per map key over the segment's samples (store/summaries.py)
#:   face_mass             every row (precomputed map_face_mass_at(0.5) rows)
#:   balance               every row, keys re-checked (the two terms' norms, migration 0005)
SEGMENT_TABLES: tuple[SegmentTable, ...] = (
    SegmentTable("samples", "compact/all_rows", "compact/samples_duplicates", "row_group_size 2048"),
    SegmentTable("maps", "compact/all_rows", "compact/maps_duplicates", "row_group_size 4096"),
    SegmentTable("faces", "compact/all_rows", "compact/faces_duplicates", "row_group_size 16384"),
    SegmentTable("sites", "compact/sites_first"),
    SegmentTable("metrics", "compact/metrics_latest", None, "row_group_size 16384"),
    SegmentTable("map_stats", "summaries/map_stats_merge"),
    SegmentTable("face_mass", "compact/all_rows"),
    SegmentTable("balance", "compact/all_rows", "compact/balance_duplicates"),
)


def _check_registry(tables: tuple[SegmentTable, ...]) -> None:
    names = [t.name for t in tables]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise StoreError(f"SEGMENT_TABLES lists {dup} twice: one entry per table kind")
    unknown = sorted(set(names) - set(RAW_TABLES))
    if unknown:
        raise StoreError(f"SEGMENT_TABLES lists {unknown}: not typed tables of store.schema.RAW_TABLES")


_check_registry(SEGMENT_TABLES)

_MEMORY_RE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)")


@dataclass(frozen=True)
class CompactLimits:
    """How big a segment may get and what one compaction may use.

    max_segment_samples: directories (sample + late-metrics) merged into one segment.
    max_segment_bytes: Parquet bytes of the merged directories per segment (a segment is about
        as big: the same encoding); a directory bigger than this gets a segment of its own.
    memory_limit: DuckDB's memory_limit of the compaction connection; beyond it DuckDB spills to
        STORE/tmp (the process's resident memory is about this plus the Python interpreter).
    threads: DuckDB threads.  1 by default: with more, DuckDB 2.0 writes the rows of each
        sample file as a row group of their own (it merges small batches only on one thread),
        which compresses worse (10 samples of 20 maps: 2.04 B/value instead of 1.82), and each
        thread holds a row group in memory."""
    max_segment_samples: int = 5000
    max_segment_bytes: int = 2 * 1024 ** 3
    memory_limit: str = "512MB"
    threads: int = 1

    def __post_init__(self):
        for name in ("max_segment_samples", "max_segment_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise StoreError(f"CompactLimits.{name} must be a positive integer, not {value!r}")
        if not isinstance(self.memory_limit, str) or not _MEMORY_RE.fullmatch(self.memory_limit.strip()):
            raise StoreError(f"CompactLimits.memory_limit must be like '512MB' or '2GiB', not {self.memory_limit!r}")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 1:
            raise StoreError(f"CompactLimits.threads must be a positive integer, not {self.threads!r}")


def _sql(name: str) -> str:
    """The text of store/sql/<name>.sql (a constant of the package)."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def dir_bytes(d: Path) -> int:
    """Bytes of the Parquet files of one directory that a segment merges."""
    total = 0
    for t in SEGMENT_TABLES:
        try:
            total += (d / f"{t.name}.parquet").stat().st_size
        except FileNotFoundError:
            pass
    return total


def split_segments(dirs: list[Path], limits: CompactLimits) -> list[list[Path]]:
    """Consecutive groups of dirs, each at most limits.max_segment_samples directories and
    limits.max_segment_bytes bytes (a directory over the byte bound alone is a group)."""
    groups: list[list[Path]] = []
    current: list[Path] = []
    size = 0
    for d in dirs:
        b = dir_bytes(d)
        if current and (len(current) >= limits.max_segment_samples or size + b > limits.max_segment_bytes):
            groups.append(current)
            current, size = [], 0
        current.append(d)
        size += b
    if current:
        groups.append(current)
    return groups


def compaction_connection(limits: CompactLimits, spill: Path, migrations) -> duckdb.DuckDBPyConnection:
    """In-memory DuckDB with the typed (empty) raw.* tables, the memory limit and spill folder."""
    con = duckdb.connect(":memory:", config={
        "memory_limit": limits.memory_limit.strip(), "threads": limits.threads,
        "temp_directory": str(spill), "preserve_insertion_order": True})
    try:
        apply_migrations(con, migrations)
    except BaseException:
        con.close()
        raise
    return con


def _refuse_duplicates(con, table: SegmentTable, files: list[str], run_id: str) -> None:
    sql = table.duplicates_sql()
    if sql is None:
        return
    rows = con.execute(sql, {"files": files}).fetchall()
    if not rows:
        return
    key = rows[0][:-1]
    sources = [Path(r[0]).parent.name for r in
               con.execute(_sql("compact/duplicate_sources"), {"files": files, "run_id": key[0],
                                                       "sample_key": key[1]}).fetchall()]
    raise StoreError(
        f"compaction of run {run_id!r} refused: {len(rows)}{'+' if len(rows) == 5 else ''} key(s) of "
        f"{table.name} occur twice, e.g. {key} (x{rows[0][-1]}) in {sources}; nothing was published. "
        "A sample directory holds rows of another sample: move the wrong directory out of the store")


def _check_schema(con, table: SegmentTable, path: Path) -> None:
    got = con.execute(_sql("compact/segment_schema"), {"path": str(path)}).fetchall()
    want = con.execute(_sql("compact/table_schema"), {"table": table.name}).fetchall()
    if got != want:
        raise StoreError(f"{table.name}.parquet files of the merged directories have columns the migrations do "
                         f"not define, or other types: {sorted(set(got) - set(want))} (expected "
                         f"{sorted(set(want) - set(got))}); newer code wrote them? Compact with that code")


def build_segment(layout: Layout, run_id: str, dirs: list[Path], *, limits: CompactLimits | None = None,
                  activation_delay_s: float, durable: bool = True) -> tuple[Path, str]:
    """Write the merged tables of dirs into a tmp dir (fsynced when durable), then their
    manifest, whose compacted_at is now + activation_delay_s; returns (tmp, segment_id).
    Raises StoreError (and leaves nothing) when a key occurs twice or a column is unknown."""
    limits = limits or CompactLimits()
    migrations = load_migrations()
    segment_id = uuid.uuid4().hex
    tmp, spill = layout.new_tmp(), layout.new_tmp(".spill")
    tmp.mkdir(parents=True)
    con = None
    try:
        con = compaction_connection(limits, spill, migrations)
        for table in SEGMENT_TABLES:
            files = [str(d / f"{table.name}.parquet") for d in dirs if (d / f"{table.name}.parquet").exists()]
            if not files:
                continue
            _refuse_duplicates(con, table, files, run_id)
            out = tmp / f"{table.name}.parquet"
            con.execute(table.copy_sql(), {"files": files, "path": str(out)}).fetchall()
            _check_schema(con, table, out)
            if pq.ParquetFile(out).metadata.num_rows == 0:  # (no rows: no file, as a writer does)
                out.unlink()
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
        if con is not None:
            con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return tmp, segment_id
