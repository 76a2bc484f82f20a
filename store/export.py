"""Export one run's tables as Parquet files that any engine reads (pandas, Polars, Spark).

``export_run(store, run_id, target)`` writes ``<target>/<table>.parquet`` for runs,
run_events, samples, sites, maps, faces and metrics (the store's views, so metrics are the
de-duplicated latest values and map data keep their stored encoding; ``map_values`` decodes
them in SQL). The queries are ``store/sql/export/*.sql`` with the run id bound.
"""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq

from store.db import connect_read_only

EXPORT_DIR = Path(__file__).parent / "sql" / "export"
TABLES = ("runs", "run_events", "samples", "sites", "maps", "faces", "metrics")


class ExportError(ValueError):
    pass


def export_run(store_path, run_id: str, target) -> dict[str, tuple[Path, int]]:
    """Write the run's tables; returns {table: (path, rows)}. Unknown run -> ExportError."""
    out = Path(target)
    con = connect_read_only(store_path)
    try:
        sql = (EXPORT_DIR / "runs.sql").read_text()
        if not con.execute(sql, {"run_id": run_id}).fetchall():
            known = [r[0] for r in con.execute("select run_id from runs order by created_at").fetchall()]
            raise ExportError(f"run {run_id!r} is not in the store {store_path}; runs: {known[:20]}")
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for table in TABLES:
            arrow = con.sql((EXPORT_DIR / f"{table}.sql").read_text(), params={"run_id": run_id}).to_arrow_table()
            path = out / f"{table}.parquet"
            tmp = path.with_suffix(".parquet.tmp")
            pq.write_table(arrow, tmp, compression="zstd")
            os.replace(tmp, path)
            written[table] = (path, arrow.num_rows)
        return written
    finally:
        con.close()
