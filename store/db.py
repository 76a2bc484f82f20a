"""Opening a store and read-only connections.

The catalog (STORE/catalog.duckdb) holds no data: main.schema_migrations,
main.catalog_info, the typed (empty) raw.* tables, the macros of store/sql/macros and
the views of store/sql/views over the store's Parquet files.  store/catalog.py builds it;
the migrations and typed tables are in store/schema.py.
"""

from __future__ import annotations

import duckdb

from .layout import Layout
from .schema import Migration, load_migrations


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
    """Create the folder if needed and (re)build the catalog when it is missing, was written in
    another storage version, has pending migrations or outdated views/macros.  A moved or
    copied store needs no rebuild: its views read the folder of the catalog file."""
    from .catalog import ensure_catalog  # pyarrow: imported when a store is opened

    layout = Layout(path)
    return Store(layout, ensure_catalog(layout, migrations or load_migrations()))


def connect_read_only(path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the store's catalog (views over the Parquet files).

    New commits are visible to the next query (the view globs are expanded per query).
    Several processes may hold such connections while writers commit."""
    return open_store(path).connect_read_only()
