"""``fastface store backfill``: write the summary tables (map_stats.parquet, face_mass.parquet;
store/summaries.py) into the sample directories and segments of a store written before they
existed.  New stores never need it: StoreWriter writes them with each sample and compaction
merges them.  Until a store is backfilled, the map_stats and map_face_mass views (and the
workbench's Attention page) count only the samples that have them; ``missing_summaries`` says
how many directories lack them.

Each file is built in STORE/tmp and renamed into its (already published) directory, so a reader
sees it whole or not at all.  A segment's maps are read in batches of ``batch_rows`` maps: memory
is bounded by the batch and by the segment's summary rows, not by its maps.  Takes each run's
compaction lock, so it never races a compaction of the same run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import load_migrations, schema_version, typed_memory_connection
from .layout import Layout, StoreError, replace_file, validate_id
from .summaries import MAP_COLUMNS, generated_faces, summarise_maps, typed_schema

_FACE_COLUMNS = ["run_id", "sample_key", "role", "detected", "x0", "y0", "x1", "y1", "kps"]
_SAMPLE_COLUMNS = ["run_id", "sample_key", "status", "width", "height"]


@dataclass
class BackfillResult:
    n_sample_dirs: int = 0       # sample directories given their summary tables
    n_segments: int = 0          # segments given theirs
    n_maps: int = 0              # maps summarised
    runs: list[str] = field(default_factory=list)


def _needs(d: Path) -> bool:
    return (d / "maps.parquet").exists() and not (d / "map_stats.parquet").exists()


def missing_summaries(path) -> int:
    """Sample directories and segments with maps but no map_stats.parquet (backfill writes them)."""
    layout = Layout(path)
    return sum(_needs(d) for r in layout.run_ids() for d in layout.sample_dirs(r) + layout.segment_dirs(r))


def _geometry(d: Path) -> dict:
    if not (d / "faces.parquet").exists():
        return {}
    samples = pq.read_table(d / "samples.parquet", columns=_SAMPLE_COLUMNS).to_pylist()
    faces = pq.read_table(d / "faces.parquet", columns=_FACE_COLUMNS).to_pylist()
    return generated_faces(samples, faces)


def summarise_dir(layout: Layout, d: Path, *, batch_rows: int = 50_000, durable: bool = True) -> int:
    """Write map_stats.parquet and face_mass.parquet of one sample directory or segment from its
    maps, through the merge rules of compaction's registry (store/segment.py: a segment's
    map_stats summed per map key).  Returns the number of maps read."""
    from .segment import SEGMENT_TABLES

    kinds = {t.name: t for t in SEGMENT_TABLES}
    migrations = load_migrations()
    version = schema_version(migrations)
    geometry = _geometry(d)
    con = typed_memory_connection(migrations)
    parts = layout.new_tmp()
    parts.mkdir(parents=True)
    n_maps = 0
    files: dict[str, list[str]] = {"map_stats": [], "face_mass": []}
    try:
        schemas = {t: typed_schema(con, t) for t in files}
        reader = pq.ParquetFile(d / "maps.parquet")
        present = [c for c in MAP_COLUMNS if c in reader.schema_arrow.names]  # older files: no stream/word
        for i, batch in enumerate(reader.iter_batches(batch_size=batch_rows, columns=present)):
            tables = dict(zip(("map_stats", "face_mass"),
                              summarise_maps(pa.Table.from_batches([batch]), geometry, version)))
            n_maps += batch.num_rows
            for name, table in tables.items():
                if table.num_rows:
                    files[name].append(str(parts / f"{name}-{i}.parquet"))
                    pq.write_table(table.select(schemas[name].names).cast(schemas[name]), files[name][-1])
        targets = {}
        for name in ("face_mass", "map_stats"):  # map_stats last: it marks the directory as done
            if files[name]:
                targets[name] = layout.new_tmp(".parquet")
                con.execute(kinds[name].copy_sql(), {"files": files[name], "path": str(targets[name])}).fetchall()
        for name, tmp in targets.items():
            replace_file(tmp, d / f"{name}.parquet", durable=durable)
    finally:
        con.close()
        shutil.rmtree(parts, ignore_errors=True)
    return n_maps


def backfill(path, run_id: str | None = None, *, durable: bool = True, progress=None) -> BackfillResult:
    """Write the summary tables of every sample directory and segment (of one run, or all) that
    has maps but no map_stats.parquet.  Idempotent; safe while readers query."""
    from .compact import _run_lock
    from .db import open_store

    layout = open_store(path).layout  # builds the catalog (placeholders of the new tables)
    result = BackfillResult()
    for rid in [validate_id("run_id", run_id)] if run_id else layout.run_ids():
        if not layout.run_data(rid).is_dir():
            continue
        with _run_lock(layout, rid):
            for d in layout.sample_dirs(rid) + layout.segment_dirs(rid):
                if not _needs(d):
                    continue
                result.n_maps += summarise_dir(layout, d, durable=durable)
                if d.name.startswith("segment="):
                    result.n_segments += 1
                else:
                    result.n_sample_dirs += 1
                if progress is not None:
                    progress(rid, d)
        result.runs.append(rid)
    if run_id and not result.runs:
        raise StoreError(f"run {run_id!r} has no data in {layout.root}")
    return result
