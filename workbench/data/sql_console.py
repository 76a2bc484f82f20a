"""Safe SQL over a store: the sandboxed DuckDB connection and the console's query runner.

Design (layers, each enough on its own for the cases it covers):

1. Engine.  The connection is an in-memory DuckDB with the store's catalog ATTACHed
   READ_ONLY (``USE store``), so no table, view or macro of the store can be created,
   changed or dropped.  ``allowed_directories`` is the store's ``data/`` and ``runs/``
   folders only (what the views read), then ``enable_external_access = false``: every
   other path (``/etc/passwd``, ``$HOME``, the catalog's folder, ``tmp/``), extension
   install/load, ATTACH of another file and remote URLs are refused by DuckDB.  Nothing is
   ever spilled to disk (``max_temp_directory_size = 0B``; ``temp_directory`` names
   ``STORE/catalog.duckdb.tmp`` only because the views find the store folder through it) and
   a memory limit.  ``lock_configuration = true`` comes last, so no statement can undo any
   of this (``SET enable_external_access = true`` fails).
2. Statement filter.  The text is parsed by DuckDB's own parser
   (``extract_statements``); exactly one statement of type SELECT is accepted (this
   includes FROM-first, WITH, VALUES, DESCRIBE, SHOW, SUMMARIZE).  This is what refuses
   COPY ... TO and EXPORT DATABASE into the allowed folders, CREATE [TEMP] ..., INSERT /
   UPDATE / DELETE, SET / RESET, ATTACH / DETACH / USE, PRAGMA, CALL, LOAD / INSTALL,
   EXPLAIN ANALYZE and multi-statement scripts.
3. Limits.  At most ``max_rows`` rows are fetched (streamed in Arrow batches; the rest is
   never materialised) and a query runs in a worker thread that is interrupted
   (``cursor.interrupt()``) after ``timeout_s``.

Errors come back as a message in ``QueryResult.error`` (never a traceback).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

MEMORY_LIMIT = os.environ.get("FASTFACE_WORKBENCH_MEMORY", "2GB")
THREADS = 2
DEFAULT_MAX_ROWS = 5000
DEFAULT_TIMEOUT_S = 10.0
CATALOG_ALIAS = "store"


class QueryRefused(Exception):
    """The statement is not allowed in the console (message says why)."""


@dataclass
class QueryResult:
    df: pd.DataFrame | None = None
    error: str | None = None
    truncated: bool = False          # more rows existed than max_rows
    timed_out: bool = False
    elapsed_s: float = 0.0
    sql: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _quote(value: str) -> str:
    """SQL string literal (ATTACH takes no bound parameter)."""
    from store.schema import sql_string_literal  # the store's audited quoting function

    return sql_string_literal(value)


class Sandbox:
    """A locked-down read-only connection to one store (thread-safe cursor factory)."""

    def __init__(self, store_root: str | os.PathLike, catalog: str | os.PathLike | None = None,
                 *, memory_limit: str = MEMORY_LIMIT, threads: int = THREADS):
        self.root = Path(os.path.abspath(os.fspath(store_root)))
        self.catalog = Path(catalog) if catalog else self.root / "catalog.duckdb"
        self._lock = threading.Lock()
        con = duckdb.connect(":memory:", config={
            # the views find the store folder through temp_directory (store/sql/macros/store_root.sql);
            # a 0-byte limit: nothing is ever spilled there
            "temp_directory": str(self.catalog) + ".tmp",
            "max_temp_directory_size": "0B",
            "memory_limit": memory_limit,
            "threads": threads,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        })
        try:
            con.execute(f"ATTACH {_quote(str(self.catalog))} AS {CATALOG_ALIAS} (READ_ONLY)")
            con.execute(f"USE {CATALOG_ALIAS}")
            con.execute("SET allowed_directories = $dirs",
                        {"dirs": [str(self.root / "data") + os.sep, str(self.root / "runs") + os.sep]})
            con.execute("SET enable_external_access = false")
            con.execute("SET lock_configuration = true")
        except Exception:
            con.close()
            raise
        self.con = con

    # -------------------------------------------------------------- cursors
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor (own connection to the same database) with the store as default."""
        with self._lock:
            cur = self.con.cursor()
        cur.execute(f"USE {CATALOG_ALIAS}")
        return cur

    def query_df(self, sql: str, params=None) -> pd.DataFrame:
        """Trusted query of the app itself (SQL text from workbench/data/sql; bound parameters)."""
        cur = self.cursor()
        try:
            return cur.execute(sql, params or None).df() if params else cur.execute(sql).df()
        finally:
            cur.close()

    def close(self) -> None:
        self.con.close()

    # -------------------------------------------------------------- console
    def check(self, sql: str) -> str:
        """Return the single SELECT statement's text, or raise QueryRefused."""
        if not sql or not sql.strip():
            raise QueryRefused("Empty query: write one SELECT statement.")
        try:
            with self._lock:
                statements = self.con.extract_statements(sql)
        except duckdb.Error as e:
            raise QueryRefused(f"Syntax error: {_first_line(e)}") from None
        if len(statements) == 0:
            raise QueryRefused("Empty query: write one SELECT statement.")
        if len(statements) > 1:
            raise QueryRefused(f"Only a single statement is allowed (got {len(statements)}).")
        st = statements[0]
        if st.type != duckdb.StatementType.SELECT:
            kind = str(st.type).rsplit(".", 1)[-1]
            raise QueryRefused(f"Only read-only SELECT queries are allowed here (got a {kind} statement). "
                               "The store is opened read-only.")
        return sql

    def run(self, sql: str, *, max_rows: int = DEFAULT_MAX_ROWS,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> QueryResult:
        """Check and run one console query with a row limit and a time limit."""
        res = QueryResult(sql=sql)
        t0 = time.perf_counter()
        try:
            self.check(sql)
        except QueryRefused as e:
            res.error = str(e)
            return res
        cur = self.cursor()
        box: dict = {}

        def work():
            try:
                reader = cur.sql(sql).to_arrow_reader(min(max(max_rows, 1), 2048))
                batches, n = [], 0
                for batch in reader:
                    batches.append(batch)
                    n += batch.num_rows
                    if n > max_rows:
                        break
                table = (pa.Table.from_batches(batches) if batches else reader.schema.empty_table())
                box["table"] = table
            except BaseException as e:  # noqa: BLE001 reported as a message
                box["error"] = e

        worker = threading.Thread(target=work, name="workbench-sql", daemon=True)
        worker.start()
        worker.join(timeout_s)
        if worker.is_alive():
            res.timed_out = True
            cur.interrupt()
            worker.join(5.0)
        res.elapsed_s = time.perf_counter() - t0
        try:
            cur.close()
        except duckdb.Error:
            pass
        if res.timed_out:
            res.error = f"Query stopped: it ran longer than the time limit of {timeout_s:g} s."
            return res
        if "error" in box:
            res.error = _message(box["error"])
            return res
        table: pa.Table = box["table"]
        if table.num_rows > max_rows:
            res.truncated = True
            table = table.slice(0, max_rows)
        res.df = _to_pandas(table)
        return res

    def schema(self) -> pd.DataFrame:
        """Views/tables of the store and their columns (for the console's schema browser)."""
        return self.query_df(
            "select table_name, column_name, data_type, comment from duckdb_columns() "
            "where database_name = $db and schema_name = 'main' order by table_name, column_index",
            {"db": CATALOG_ALIAS})

    def macros(self) -> pd.DataFrame:
        return self.query_df(
            "select distinct function_name, parameters, function_type from duckdb_functions() "
            "where database_name = $db and schema_name = 'main' and function_type like '%macro%' "
            "order by 1", {"db": CATALOG_ALIAS})


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    try:
        return table.to_pandas()
    except (pa.ArrowException, ValueError, TypeError):  # exotic types: fall back to Python objects
        return pd.DataFrame(table.to_pylist(), columns=table.column_names)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _message(e: BaseException) -> str:
    if isinstance(e, duckdb.InterruptException):
        return "Query interrupted."
    if isinstance(e, duckdb.PermissionException):
        return ("Not allowed: the console may read only the store's own data "
                f"({_first_line(e)})")
    if isinstance(e, duckdb.OutOfMemoryException):
        return f"Query needs more memory than the console allows ({MEMORY_LIMIT}): {_first_line(e)}"
    if isinstance(e, duckdb.Error):
        lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
        return "\n".join(lines[:3]) or type(e).__name__
    return f"{type(e).__name__}: {_first_line(e)}"
