"""Building the catalog (STORE/catalog.duckdb): the store id, the macros and views of
store/sql rendered with it, typed empty placeholder files, the storage version.

The catalog is always built on a private copy under STORE/tmp and published with one
atomic rename, so readers that hold the old file open are never disturbed and a failed
build changes nothing.  The views hold no path: they read the folder of the catalog file
the connection opened (sql/macros/store_root.sql), so a moved or copied store answers from
its own files, and they check the store id of that folder (sql/macros/store_guard.sql).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from .schema import SQL_DIR, Migration, apply_migrations, check_applied, sql_string_literal, write_table
from .layout import TABLE_FILES, Layout, StoreError, publish, replace_file

STORE_ID_MARK = "{{ store_id }}"
_STORE_ID_RE = re.compile(r"[0-9a-f]{32}")
#: storage version of catalog.duckdb (ATTACH ... (STORAGE_VERSION ...)): DuckDB 1.0 and every
#: later release open the file; the views are checked with the DuckDB CLI 1.4.4 and 1.5.6 and
#: duckdb 2.0.0 (store/README.md, "Which DuckDB").  The catalog holds no data, so nothing is
#: lost by not using a newer format.
CATALOG_STORAGE_VERSION = "v1.0.0"
_GLOB_CHARS = set("*?[]{}")
_OBJECT_RE = re.compile(r"create\s+or\s+replace\s+(?:view|macro)\s+([a-z_][a-z0-9_]*)", re.I)


def check_store_path(layout: Layout) -> None:
    root = str(layout.root)
    if _GLOB_CHARS & set(root):
        raise StoreError(f"store path {root!r} contains glob characters {sorted(_GLOB_CHARS & set(root))}"
                         " that read_parquet would interpret; use another folder")


def render_sql(template: str, store_id: str) -> str:
    """Substitute the store id (32 hex digits, as a quoted literal) for {{ store_id }}."""
    if not _STORE_ID_RE.fullmatch(store_id):
        raise StoreError(f"bad store id {store_id!r}: expected 32 hex digits")
    rendered = template.replace(STORE_ID_MARK, sql_string_literal(store_id))
    if "{{" in rendered:
        raise StoreError("unknown template marker in SQL: only {{ store_id }} is substituted")
    return rendered


def store_id(layout: Layout) -> str:
    """The store's id (data/store_id.parquet), created once for a new store folder.  A copy of
    the folder keeps the id; the views check that the folder they read holds their id."""
    f = layout.store_id_file
    if not f.exists():
        tmp = layout.new_tmp(".parquet")
        pq.write_table(pa.table({"store_id": [uuid.uuid4().hex]}), tmp)
        publish(tmp, f)  # first writer wins: concurrent openers agree on one id
    value = pq.read_table(f).column("store_id")[0].as_py()
    if not isinstance(value, str) or not _STORE_ID_RE.fullmatch(value):
        raise StoreError(f"{f} holds no valid store id ({value!r}); restore the file from a copy "
                         "of the store, or delete it to give the store a new id")
    return value


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


def _fingerprint(migrations: list[Migration], objects: list[tuple[str, str]], sid: str) -> str:
    h = hashlib.sha256(f"{duckdb.__version__}:{CATALOG_STORAGE_VERSION}:{sid}".encode())
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
        tags = con.execute("select tags from duckdb_databases() where database_name = current_database()"
                           ).fetchall()[0][0]
        info["storage_tag"] = (tags or {}).get("storage_version", "")
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


def _build_connection(layout: Layout, path) -> duckdb.DuckDBPyConnection:
    """A connection to the catalog being built: older storage version, and temp_directory
    pointing at the store's catalog so that the views bind to the store's files
    (macros/store_root.sql); nothing is ever spilled there (the catalog holds no data)."""
    return duckdb.connect(str(path), config={
        "storage_compatibility_version": CATALOG_STORAGE_VERSION,
        "temp_directory": str(layout.catalog) + ".tmp",
        "max_temp_directory_size": "0B",
    })


def _build(layout: Layout, migrations: list[Migration], objects, fingerprint: str, fresh: bool,
           sid: str) -> list[int]:
    tmp = layout.new_tmp(".duckdb")
    if not fresh:
        shutil.copyfile(layout.catalog, tmp)
    try:
        con = _build_connection(layout, tmp)
        try:
            applied_now = apply_migrations(con, migrations)
            existing = {r[0] for r in con.execute(
                "select view_name from duckdb_views() where not internal and schema_name = 'main' "
                "union all select function_name from duckdb_functions() "
                "where not internal and schema_name = 'main' and function_type like '%macro%'").fetchall()}
            if existing - {n for n, _ in objects}:
                con.close()
                tmp.unlink()
                return _build(layout, migrations, objects, fingerprint, True, sid)  # an object was removed
            _write_placeholders(layout, con)
            _create_objects(con, sid, objects, validate=not fresh)
            con.execute("create table if not exists main.catalog_info (key varchar primary key, value varchar)")
            con.execute("delete from main.catalog_info where key = 'store_root'")  # older catalogs
            con.executemany("insert or replace into main.catalog_info values (?, ?)",
                            [["store_id", sid], ["fingerprint", fingerprint],
                             ["duckdb_version", duckdb.__version__],
                             ["storage_version", CATALOG_STORAGE_VERSION]])
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


def _create_objects(con, sid: str, objects, validate: bool) -> None:
    """Create macros and views in dependency order; with validate, check that every view binds
    (a copied catalog may hold views bound to older definitions)."""
    for name, sql in _dependency_order(objects):
        try:
            con.execute(render_sql(sql, sid))
        except duckdb.Error as e:
            raise StoreError(f"cannot create catalog object {name}: {e}") from e
    for name, _ in objects if validate else ():
        if con.execute("select count(*) from duckdb_views() where view_name = ?", [name]).fetchall()[0][0]:
            con.table(name).limit(0).fetchall()


def ensure_catalog(layout: Layout, migrations: list[Migration]) -> list[int]:
    """Create the store folder if needed and (re)build its catalog when it is missing, was
    written in another storage version, has pending migrations or outdated views/macros.
    Returns the migration versions applied now.  A moved or copied store needs no rebuild."""
    check_store_path(layout)
    layout.ensure()
    sid = store_id(layout)
    objects = catalog_objects()
    fingerprint = _fingerprint(migrations, objects, sid)
    state = _catalog_state(layout)
    fresh = state is None
    if state is not None:
        info, applied = state
        if (info.get("fingerprint") == fingerprint and info["storage_tag"] == CATALOG_STORAGE_VERSION + "+"
                and set(applied) == {m.version for m in migrations}
                and all(applied[m.version] == m.checksum for m in migrations) and _placeholders_ok(layout)):
            return []
        if info["storage_tag"] != CATALOG_STORAGE_VERSION + "+":
            check_applied(applied, migrations)  # a catalog in a newer storage version: rebuilt fresh
            fresh = True
    return _build(layout, migrations, objects, fingerprint, fresh, sid)
