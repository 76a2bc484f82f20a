"""Migrations and the typed tables: the numbered migrations of store/sql/migrations, the
typed ``raw.*`` tables with their insert and Parquet copy statements, and the audited SQL
string quoting.  Both the catalog (store/catalog.py) and opening a store (store/db.py)
build on this module.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .layout import StoreError

SQL_DIR = Path(__file__).resolve().parent / "sql"
#: qualified names of the typed tables (constants: never built from input)
RAW_TABLES = {"runs": "raw.runs", "run_events": "raw.run_events", "samples": "raw.samples",
              "sites": "raw.sites", "maps": "raw.maps", "faces": "raw.faces", "metrics": "raw.metrics",
              "manifest": "raw.manifest", "map_stats": "raw.map_stats", "face_mass": "raw.face_mass",
              "balance": "raw.balance"}
#: the writers' insert statements (constants: never built from input); `incoming` is a
#: registered Arrow table
INSERT_SQL = {
    "runs": "insert into raw.runs by name select * from incoming",
    "run_events": "insert into raw.run_events by name select * from incoming",
    "samples": "insert into raw.samples by name select * from incoming",
    "sites": "insert into raw.sites by name select * from incoming",
    "maps": "insert into raw.maps by name select * from incoming",
    "faces": "insert into raw.faces by name select * from incoming",
    "metrics": "insert into raw.metrics by name select * from incoming",
    "manifest": "insert into raw.manifest by name select * from incoming",
    "map_stats": "insert into raw.map_stats by name select * from incoming",
    "face_mass": "insert into raw.face_mass by name select * from incoming",
    "balance": "insert into raw.balance by name select * from incoming",
}
#: how the typed tables are written to Parquet (constants: never built from input; $path is
#: bound). Parquet format v2 (DELTA_BINARY_PACKED integers, data page v2) + zstd: attention
#: maps stored as float16 bit patterns take ~1.6 B/value instead of ~1.9 with format v1
#: (store/README.md). Every Parquet reader of the last years (DuckDB, pyarrow/pandas, Polars,
#: Spark >= 3.3) reads it; ``fastface export`` writes format-v1 files for the others.
COPY_SQL = {
    "runs": "copy raw.runs to $path (format parquet, compression zstd, parquet_version v2)",
    "run_events": "copy raw.run_events to $path (format parquet, compression zstd, parquet_version v2)",
    "samples": "copy raw.samples to $path (format parquet, compression zstd, parquet_version v2)",
    "sites": "copy raw.sites to $path (format parquet, compression zstd, parquet_version v2)",
    "maps": "copy raw.maps to $path (format parquet, compression zstd, parquet_version v2)",
    "faces": "copy raw.faces to $path (format parquet, compression zstd, parquet_version v2)",
    "metrics": "copy raw.metrics to $path (format parquet, compression zstd, parquet_version v2)",
    "manifest": "copy raw.manifest to $path (format parquet, compression zstd, parquet_version v2)",
    "map_stats": "copy raw.map_stats to $path (format parquet, compression zstd, parquet_version v2)",
    "face_mass": "copy raw.face_mass to $path (format parquet, compression zstd, parquet_version v2)",
    "balance": "copy raw.balance to $path (format parquet, compression zstd, parquet_version v2)",
}


class MigrationError(StoreError):
    pass


def write_table(con: duckdb.DuckDBPyConnection, table: str, path) -> None:
    """Write the typed table ``raw.<table>`` of ``con`` to the Parquet file ``path`` (COPY_SQL)."""
    con.execute(COPY_SQL[table], {"path": str(path)}).fetchall()


# ---------------------------------------------------------------- migrations
@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Migrations NNNN_name.sql of a directory (default store/sql/migrations), in order."""
    out: dict[int, Migration] = {}
    for f in sorted((directory or SQL_DIR / "migrations").glob("*.sql")):
        m = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", f.name)
        if not m:
            raise MigrationError(f"bad migration file name {f.name!r}: expected NNNN_name.sql")
        v = int(m[1])
        if v in out:
            raise MigrationError(f"two migrations with version {v}")
        out[v] = Migration(v, m[2], f.read_text(encoding="utf-8"))
    return [out[v] for v in sorted(out)]


def schema_version(migrations: list[Migration] | None = None) -> int:
    return max(m.version for m in (migrations or load_migrations()))


def check_applied(applied: dict[int, str], migrations: list[Migration]) -> None:
    """Refuse (MigrationError) applied migrations {version: checksum} that this code does not
    know (newer code wrote them) or whose text changed since."""
    known = {m.version: m for m in migrations}
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise MigrationError(f"database has migrations {unknown} unknown to this code (newer code wrote it)")
    for v, checksum in applied.items():
        if known[v].checksum != checksum:
            raise MigrationError(
                f"migration {v:04d}_{known[v].name} changed after it was applied; migrations are "
                "append-only: add a new one (the catalog is derived state: deleting catalog.duckdb "
                "rebuilds it)")


def apply_migrations(conn: duckdb.DuckDBPyConnection, migrations: list[Migration]) -> list[int]:
    """Apply the migrations not yet recorded in main.schema_migrations, each in its own
    transaction together with its record.  Returns the versions applied now.

    Refuses (MigrationError, nothing applied) when an applied migration's text changed
    or the database has versions this code does not know."""
    conn.execute("""create table if not exists main.schema_migrations (
        version integer primary key, name varchar not null, checksum varchar not null,
        applied_at timestamp not null)""")
    applied = dict(conn.execute("select version, checksum from main.schema_migrations").fetchall())
    check_applied(applied, migrations)
    done = []
    for m in migrations:
        if m.version in applied:
            continue
        conn.begin()
        try:
            conn.execute(m.sql)
            conn.execute("insert into main.schema_migrations values (?, ?, ?, now()::timestamp)",
                         [m.version, m.name, m.checksum])
            conn.commit()
        except Exception as e:
            conn.rollback()
            raise MigrationError(f"migration {m.version:04d}_{m.name} failed, rolled back: {e}") from e
        done.append(m.version)
    return done


def typed_memory_connection(migrations: list[Migration] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the typed (empty) raw.* tables: what writers insert into."""
    conn = duckdb.connect(":memory:")
    try:
        apply_migrations(conn, migrations or load_migrations())
    except BaseException:
        conn.close()
        raise
    return conn


# ---------------------------------------------------------------- SQL text
def sql_string_literal(value: str) -> str:
    """AUDITED: the only place where a value becomes SQL text.

    Standard SQL string literal: wrap in single quotes, double embedded quotes
    (DuckDB standard strings have no backslash escapes).  NUL is refused."""
    if "\x00" in value:
        raise StoreError("NUL character in a SQL string literal")
    return "'" + value.replace("'", "''") + "'"
