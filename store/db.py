"""Migrations, the catalog (STORE/catalog.duckdb) and read-only connections.

The catalog holds no data: main.schema_migrations, main.catalog_info, the typed
(empty) raw.* tables, the macros of store/sql/macros and the views of
store/sql/views over the store's Parquet files.  It is always built on a private
copy under STORE/tmp and published with one atomic rename, so readers that hold
the old file open are never disturbed and a failed build changes nothing.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from .layout import TABLE_FILES, Layout, StoreError, replace_file

SQL_DIR = Path(__file__).resolve().parent / "sql"
STORE_ROOT_MARK = "{{ store_root }}"
_GLOB_CHARS = set("*?[]{}")
#: qualified names of the typed tables (constants: never built from input)
RAW_TABLES = {"runs": "raw.runs", "run_events": "raw.run_events", "samples": "raw.samples",
              "sites": "raw.sites", "maps": "raw.maps", "faces": "raw.faces", "metrics": "raw.metrics",
              "manifest": "raw.manifest"}
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
}
_OBJECT_RE = re.compile(r"create\s+or\s+replace\s+(?:view|macro)\s+([a-z_][a-z0-9_]*)", re.I)


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


def apply_migrations(conn: duckdb.DuckDBPyConnection, migrations: list[Migration]) -> list[int]:
    """Apply the migrations not yet recorded in main.schema_migrations, each in its own
    transaction together with its record.  Returns the versions applied now.

    Refuses (MigrationError, nothing applied) when an applied migration's text changed
    or the database has versions this code does not know."""
    conn.execute("""create table if not exists main.schema_migrations (
        version integer primary key, name varchar not null, checksum varchar not null,
        applied_at timestamp not null)""")
    applied = dict(conn.execute("select version, checksum from main.schema_migrations").fetchall())
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


def render_sql(template: str, layout: Layout) -> str:
    """Substitute the store root (as a quoted literal) for {{ store_root }}."""
    root = str(layout.root)
    if _GLOB_CHARS & set(root):
        raise StoreError(f"store path {root!r} contains glob characters {sorted(_GLOB_CHARS & set(root))}"
                         " that read_parquet would interpret; use another folder")
    rendered = template.replace(STORE_ROOT_MARK, sql_string_literal(root))
    if "{{" in rendered:
        raise StoreError("unknown template marker in SQL: only {{ store_root }} is substituted")
    return rendered


def catalog_objects() -> list[tuple[str, str]]:
    """(name, sql) of the macros then the views, each file one `create or replace` object."""
    out = []
    for sub in ("macros", "views"):
        for f in sorted((SQL_DIR / sub).glob("*.sql")):
            sql = f.read_text(encoding="utf-8")
            m = _OBJECT_RE.search(sql)
            if not m or m[1] != f.stem:
                raise StoreError(f"{f} must define exactly `create or replace view|macro {f.stem}`")
            out.append((f.stem, sql))
    return out


def _fingerprint(migrations: list[Migration], objects: list[tuple[str, str]]) -> str:
    h = hashlib.sha256(duckdb.__version__.encode())
    for m in migrations:
        h.update(f"{m.version}:{m.checksum}".encode())
    for name, sql in objects:
        h.update(name.encode() + b"\0" + sql.encode())
    return h.hexdigest()


# ---------------------------------------------------------------- catalog
def _catalog_state(layout: Layout) -> tuple[dict, dict] | None:
    if not layout.catalog.exists():
        return None
    try:
        con = duckdb.connect(str(layout.catalog), read_only=True)
    except duckdb.Error:
        return None  # unreadable (e.g. other DuckDB storage version): rebuild from scratch
    try:
        info = dict(con.execute("select key, value from main.catalog_info").fetchall())
        applied = dict(con.execute("select version, checksum from main.schema_migrations").fetchall())
        return info, applied
    except duckdb.Error:
        return None
    finally:
        con.close()


def _placeholder_targets(layout: Layout) -> dict:
    targets = {(t, d): d / (t + ".parquet") for d in layout.empty_dirs for t in TABLE_FILES
               if t != "manifest" or d.name.startswith("segment=")}
    targets["runs"] = layout.empty_run / "run.parquet"
    targets["run_events"] = layout.empty_run / "events" / "_empty.parquet"
    return targets


def _placeholders_ok(layout: Layout) -> bool:
    return all(p.exists() for p in _placeholder_targets(layout).values())


def _write_placeholders(layout: Layout, con: duckdb.DuckDBPyConnection) -> None:
    """Typed empty Parquet files inside every view glob: views work on an empty store."""
    shutil.rmtree(layout.data / "_empty", ignore_errors=True)  # placeholders of early versions
    for table, target in _placeholder_targets(layout).items():
        tmp = layout.new_tmp(".parquet")
        table = table[0] if isinstance(table, tuple) else table
        write_table(con, table, tmp)
        replace_file(tmp, target)


def _build(layout: Layout, migrations: list[Migration], objects, fingerprint: str, fresh: bool) -> list[int]:
    tmp = layout.new_tmp(".duckdb")
    if not fresh:
        shutil.copyfile(layout.catalog, tmp)
    try:
        con = duckdb.connect(str(tmp))
        try:
            applied_now = apply_migrations(con, migrations)
            existing = {r[0] for r in con.execute(
                "select view_name from duckdb_views() where not internal and schema_name = 'main' "
                "union all select function_name from duckdb_functions() "
                "where not internal and schema_name = 'main' and function_type like '%macro%'").fetchall()}
            if existing - {n for n, _ in objects}:
                con.close()
                tmp.unlink()
                return _build(layout, migrations, objects, fingerprint, fresh=True)  # an object was removed
            _write_placeholders(layout, con)
            _create_objects(con, layout, objects, validate=not fresh)
            con.execute("create table if not exists main.catalog_info (key varchar primary key, value varchar)")
            con.executemany("insert or replace into main.catalog_info values (?, ?)",
                            [["store_root", str(layout.root)], ["fingerprint", fingerprint],
                             ["duckdb_version", duckdb.__version__]])
            con.execute("checkpoint")
        finally:
            con.close()
        replace_file(tmp, layout.catalog)
        return applied_now
    finally:
        for p in (tmp, Path(str(tmp) + ".wal")):
            if p.exists():
                p.unlink()


def _dependency_order(objects) -> list[tuple[str, str]]:
    """Macros and views ordered so each comes after the objects its SQL mentions."""
    names = {n for n, _ in objects}
    deps = {}
    for name, sql in objects:
        code = re.sub(r"--[^\n]*|'(?:[^']|'')*'", " ", sql)  # comments and string literals
        deps[name] = {w for w in re.findall(r"[a-z_][a-z0-9_]*", code) if w in names and w != name}
    ordered, done = [], set()

    def visit(name, path=()):
        if name in done:
            return
        if name in path:
            raise StoreError(f"catalog objects depend on each other in a cycle: {path + (name,)}")
        for d in sorted(deps[name]):
            visit(d, path + (name,))
        done.add(name)
        ordered.append(name)

    for name in sorted(names):
        visit(name)
    sql_of = dict(objects)
    return [(n, sql_of[n]) for n in ordered]


def _create_objects(con, layout: Layout, objects, validate: bool) -> None:
    """Create macros and views in dependency order; with validate, check that every view binds
    (a copied catalog may hold views bound to older definitions)."""
    for name, sql in _dependency_order(objects):
        try:
            con.execute(render_sql(sql, layout))
        except duckdb.Error as e:
            raise StoreError(f"cannot create catalog object {name}: {e}") from e
    for name, _ in objects if validate else ():
        if con.execute("select count(*) from duckdb_views() where view_name = ?", [name]).fetchall()[0][0]:
            con.table(name).limit(0).fetchall()


class Store:
    """An opened store folder.  Use StoreWriter to write, connect_read_only() to read."""

    def __init__(self, layout: Layout, applied_now: list[int]):
        self.layout = layout
        self.path = layout.root
        self.catalog_path = layout.catalog
        self.applied_now = applied_now  # migration versions applied by this open (usually [])

    def connect_read_only(self) -> duckdb.DuckDBPyConnection:
        """Read-only connection to the catalog.  Parquet footers are cached per connection
        (parquet_metadata_cache): safe because published files are never rewritten in place."""
        con = duckdb.connect(str(self.catalog_path), read_only=True)
        try:
            con.execute("set parquet_metadata_cache = true").fetchall()
        except BaseException:
            con.close()
            raise
        return con

    def applied_migrations(self) -> list[tuple]:
        with self.connect_read_only() as con:
            return con.execute("select version, name, applied_at from schema_migrations order by 1").fetchall()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"


def open_store(path, *, migrations: list[Migration] | None = None) -> Store:
    """Create the folder if needed and (re)build the catalog when it is missing, was built
    for another path (store moved), has pending migrations or outdated views/macros."""
    layout = Layout(path)
    render_sql("", layout)  # validates the path
    layout.ensure()
    migrations = migrations or load_migrations()
    objects = catalog_objects()
    fingerprint = _fingerprint(migrations, objects)
    state = _catalog_state(layout)
    if state is not None:
        info, applied = state
        if (info.get("store_root") == str(layout.root) and info.get("fingerprint") == fingerprint
                and set(applied) == {m.version for m in migrations}
                and all(applied[m.version] == m.checksum for m in migrations) and _placeholders_ok(layout)):
            return Store(layout, [])
    applied_now = _build(layout, migrations, objects, fingerprint, fresh=state is None)
    return Store(layout, applied_now)


def connect_read_only(path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the store's catalog (views over the Parquet files).

    New commits are visible to the next query (the view globs are expanded per query).
    Several processes may hold such connections while writers commit."""
    return open_store(path).connect_read_only()
