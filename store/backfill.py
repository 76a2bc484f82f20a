"""``fastface store backfill``: write the summary tables (map_stats.parquet, face_mass.parquet;
store/summaries.py) into the sample directories and segments of a store written before they
existed, or before migration 0003 (entropy and face mass of maps with negative values on their
positive part, and the counts of what the averages leave out): a map_stats.parquet without the
column ``summaries.CURRENT_MARKER`` is rewritten, and so are the null entropies of such maps in
maps.parquet (recomputed from the stored values: ``summaries.positive_entropy``; a map stored
without values keeps its null, counted as excluded).  New stores never need it: StoreWriter
writes them with each sample and compaction merges them (and backfills the directories it
merges).  Until a store is backfilled, the map_stats and map_face_mass views (and the
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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import SQL_DIR, load_migrations, schema_version, typed_memory_connection
from .layout import Layout, StoreError, replace_file, run_lock, validate_id
from .summaries import (CURRENT_MARKER, MAP_COLUMNS, generated_faces, pd_float, positive_entropy, summarise_maps,
                        typed_schema)

_FACE_COLUMNS = ["run_id", "sample_key", "role", "detected", "x0", "y0", "x1", "y1", "kps"]
_SAMPLE_COLUMNS = ["run_id", "sample_key", "status", "width", "height"]


@dataclass
class BackfillResult:
    n_sample_dirs: int = 0       # sample directories given their summary tables
    n_segments: int = 0          # segments given theirs
    n_maps: int = 0              # maps summarised
    n_entropy_fixed: int = 0     # maps whose null entropy (a negative value) was recomputed
    runs: list[str] = field(default_factory=list)


def needs_summaries(d: Path) -> bool:
    """Maps, but no map_stats.parquet or one of a version before 0003 (reads the footer only)."""
    if not (d / "maps.parquet").exists():
        return False
    stats = d / "map_stats.parquet"
    return not stats.exists() or CURRENT_MARKER not in pq.read_schema(stats).names


def missing_summaries(path) -> int:
    """Sample directories and segments with maps but no current map_stats.parquet (backfill writes them)."""
    layout = Layout(path)
    return sum(needs_summaries(d) for r in layout.run_ids() for d in layout.sample_dirs(r) + layout.segment_dirs(r))


def _geometry(d: Path) -> dict:
    if not (d / "faces.parquet").exists():
        return {}
    samples = pq.read_table(d / "samples.parquet", columns=_SAMPLE_COLUMNS).to_pylist()
    faces = pq.read_table(d / "faces.parquet", columns=_FACE_COLUMNS).to_pylist()
    return generated_faces(samples, faces)


def _fix_entropy(batch: pa.RecordBatch) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """(the batch with the entropy of its signed maps recomputed, their row numbers in the batch,
    the new values): maps of a store before 0003 with a null entropy, a value < 0 and one > 0."""
    t = pa.Table.from_batches([batch])
    ent = t.column("entropy").to_numpy(zero_copy_only=False)
    lo, hi = (t.column(c).to_numpy(zero_copy_only=False) for c in ("min", "max"))
    todo = np.flatnonzero(np.array([e is None or e != e for e in ent]) & (pd_float(lo) < 0) & (pd_float(hi) > 0)
                          & ~np.asarray(t.column("data").is_null().to_numpy(zero_copy_only=False)))
    if not todo.size:
        return t, todo, np.empty(0)
    new = positive_entropy(t.take(todo))
    keep = ~np.isnan(new)
    todo, new = todo[keep], new[keep]
    values = pd_float(ent)
    values[todo] = new
    t = t.set_column(t.schema.get_field_index("entropy"), "entropy",
                     pa.array(values, pa.float64(), mask=np.isnan(values)))
    return t, todo, new


def summarise_dir(layout: Layout, d: Path, *, batch_rows: int = 50_000, durable: bool = True) -> tuple[int, int]:
    """Write map_stats.parquet and face_mass.parquet of one sample directory or segment from its
    maps, through the merge rules of compaction's registry (store/segment.py: a segment's
    map_stats summed per map key), after recomputing the null entropy of maps with negative
    values (maps.parquet rewritten, in file order, when there is any).  Returns (maps read,
    entropies recomputed)."""
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
    fixes_rows, fixes_values = [], []
    try:
        schemas = {t: typed_schema(con, t) for t in files}
        reader = pq.ParquetFile(d / "maps.parquet")
        present = [c for c in MAP_COLUMNS if c in reader.schema_arrow.names]  # before 0005: no stream/word
        for i, batch in enumerate(reader.iter_batches(batch_size=batch_rows, columns=present)):
            table, fixed, values = _fix_entropy(batch)
            fixes_rows.append(fixed + n_maps)
            fixes_values.append(values)
            tables = dict(zip(("map_stats", "face_mass"), summarise_maps(table, geometry, version)))
            n_maps += batch.num_rows
            for name, table in tables.items():
                if table.num_rows:
                    files[name].append(str(parts / f"{name}-{i}.parquet"))
                    pq.write_table(table.select(schemas[name].names).cast(schemas[name]), files[name][-1])
        targets = {}
        fixes = pa.table({"row": np.concatenate(fixes_rows or [np.empty(0, np.int64)]).astype(np.int64),
                          "entropy": np.concatenate(fixes_values or [np.empty(0)])})
        if fixes.num_rows:  # maps first: a crash before map_stats is replaced redoes the directory
            pq.write_table(fixes, parts / "fixes.parquet")
            targets["maps"] = layout.new_tmp(".parquet")
            con.execute(_maps_copy_sql(kinds["maps"]), {"path": str(d / "maps.parquet"),
                                                       "fixes": str(parts / "fixes.parquet"),
                                                       "out": str(targets["maps"])}).fetchall()
        for name in ("face_mass", "map_stats"):  # map_stats last: it marks the directory as done
            if files[name]:
                targets[name] = layout.new_tmp(".parquet")
                con.execute(kinds[name].copy_sql(), {"files": files[name], "path": str(targets[name])}).fetchall()
        for name, tmp in targets.items():
            replace_file(tmp, d / f"{name}.parquet", durable=durable)
    finally:
        con.close()
        shutil.rmtree(parts, ignore_errors=True)
    return n_maps, fixes.num_rows


def _maps_copy_sql(maps_kind) -> str:
    """COPY of sql/summaries/maps_entropy_fix.sql into the typed raw.maps columns (constants only;
    stream 'id' where the file has none)."""
    select = (SQL_DIR / "summaries" / "maps_entropy_fix.sql").read_text(encoding="utf-8").rstrip().rstrip(";")
    options = ", " + maps_kind.options if maps_kind.options else ""
    # maps written before 0005 have no stream/word: the rewritten file says 'id' (as the views read them)
    return ("copy (\n    select * replace (coalesce(stream, 'id') as stream) from (\n"
            "    select * from raw.maps\n    union all by name\n    select * from (\n" + select
            + "\n    ))\n) to $out (format parquet, compression zstd, parquet_version v2" + options + ")")


def backfill(path, run_id: str | None = None, *, durable: bool = True, progress=None) -> BackfillResult:
    """Write the summary tables of every sample directory and segment (of one run, or all) that
    has maps but no map_stats.parquet.  Idempotent; safe while readers query."""
    from .db import open_store

    layout = open_store(path).layout  # builds the catalog (placeholders of the new tables)
    result = BackfillResult()
    for rid in [validate_id("run_id", run_id)] if run_id else layout.run_ids():
        if not layout.run_data(rid).is_dir():
            continue
        with run_lock(layout, rid):
            for d in layout.sample_dirs(rid) + layout.segment_dirs(rid):
                if not needs_summaries(d):
                    continue
                n_maps, n_fixed = summarise_dir(layout, d, durable=durable)
                result.n_maps += n_maps
                result.n_entropy_fixed += n_fixed
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
