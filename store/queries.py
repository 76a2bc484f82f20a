"""Named SQL queries (store/sql/queries/*.sql) and data contracts (store/sql/tests/*.sql).

Queries take `$name` parameters, bound by DuckDB (never formatted into the text):

    from store.db import connect_read_only
    from store.queries import run_query
    con = connect_read_only("runs/store")
    df = run_query(con, "maps_for_sample", run_id="r1", sample_key="ab12...")

Contracts return the rows that violate them: zero rows means the store is consistent.
:func:`read_tables` reads whole views of a store into DataFrames (``fastface.read_store``).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import duckdb
import pandas as pd

from .db import connect_read_only
from .layout import StoreError
from .schema import SQL_DIR

QUERIES_DIR = SQL_DIR / "queries"
CONTRACTS_DIR = SQL_DIR / "tests"
_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_STRIP_RE = re.compile(r"--[^\n]*|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
# errors of a query racing the removal of merged files by a compaction (retried)
_RACE_MARKERS = ("No such file", "No files found", "Cannot open file", "could not be opened")


class UnknownQueryError(StoreError, KeyError):
    pass


def _names(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.sql"))


def list_queries() -> list[str]:
    return _names(QUERIES_DIR)


def list_contracts() -> list[str]:
    return _names(CONTRACTS_DIR)


def _load(directory: Path, name: str, kind: str) -> str:
    names = _names(directory)
    if name not in names:
        raise UnknownQueryError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(names)}")
    return (directory / f"{name}.sql").read_text(encoding="utf-8")


def load_query(name: str) -> str:
    return _load(QUERIES_DIR, name, "query")


def query_params(sql: str) -> set[str]:
    """The $names a query binds (ignoring comments and string literals)."""
    return set(_PARAM_RE.findall(_STRIP_RE.sub(" ", sql)))


def execute_df(conn: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None,
               retries: int = 3) -> pd.DataFrame:
    """Execute with bound parameters; retry when a compaction removed a file mid-query."""
    for attempt in range(retries + 1):
        try:
            return conn.execute(sql, params or {}).df()
        except duckdb.IOException as e:
            if attempt == retries or not any(m in str(e) for m in _RACE_MARKERS):
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def run_query(conn: duckdb.DuckDBPyConnection, name: str, **params) -> pd.DataFrame:
    """Run the named query with its $parameters bound from keyword arguments."""
    sql = load_query(name)
    expected = query_params(sql)
    missing, extra = expected - set(params), set(params) - expected
    if missing or extra:
        raise StoreError(f"query {name!r} takes parameters {sorted(expected)}; "
                         f"missing {sorted(missing)}, unexpected {sorted(extra)}")
    return execute_df(conn, sql, params)


def run_contracts(conn: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """Run the contracts (all by default); returns {name: violating rows}."""
    return {n: execute_df(conn, _load(CONTRACTS_DIR, n, "contract")) for n in (names or list_contracts())}


def contract_violations(conn: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """Only the contracts that returned rows."""
    return {n: df for n, df in run_contracts(conn).items() if len(df)}


#: the views :func:`read_tables` reads by default (maps and map_values are large: ask for them by name)
DEFAULT_TABLES = ("runs", "samples", "faces", "metrics")


def read_tables(store_path, tables=DEFAULT_TABLES) -> dict[str, pd.DataFrame]:
    """A store's views as pandas DataFrames, ``{view: DataFrame}`` (read-only; see store/VIEWS.md
    for the views and their columns)."""
    views = {p.stem for p in (SQL_DIR / "views").glob("*.sql")}
    unknown = [t for t in tables if t not in views]
    if unknown:
        raise StoreError(f"no view {unknown} in a store; the views are {sorted(views)}")
    con = connect_read_only(store_path)
    try:
        return {t: execute_df(con, f'select * from "{t}"') for t in tables}
    finally:
        con.close()
