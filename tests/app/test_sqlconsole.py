"""The SQL console's sandbox: what it refuses or stops, and that the store stays unchanged."""

import threading

import pytest

from tests.app.conftest import store_snapshot
from workbench.data.sql_console import Sandbox


@pytest.fixture(scope="module")
def sandbox(fixture_store):
    from store.db import open_store

    store = open_store(fixture_store["path"])
    sb = Sandbox(store.path, store.catalog_path)
    yield sb
    sb.close()


COUNTS = "select (select count(*) from runs), (select count(*) from samples), (select count(*) from maps)"

REFUSED = [
    ("create table t as select 1", "CREATE"),
    ("create temp table t as select 1", "CREATE"),
    ("insert into runs (run_id) values ('x')", "INSERT"),
    ("delete from samples", "DELETE"),
    ("update samples set prompt = 'x'", "UPDATE"),
    ("drop view runs", "DROP"),
    ("copy (select * from runs) to '{root}/data/leak.csv'", "COPY"),
    ("copy (select 1) to '/tmp/leak.csv'", "COPY"),
    ("export database '{root}/data/dump'", "EXPORT"),
    ("attach '/tmp/other.duckdb' as other", "ATTACH"),
    ("attach ':memory:' as m", "ATTACH"),
    ("detach store", "DETACH"),
    ("use memory", "SET"),
    ("set enable_external_access = true", "SET"),
    ("reset lock_configuration", "RESET"),
    ("pragma enable_profiling", "PRAGMA"),
    ("call checkpoint()", "CALL"),
    ("install httpfs", "LOAD"),
    ("load httpfs", "LOAD"),
    ("explain analyze copy (select 1) to '{root}/data/x.csv'", "EXPLAIN"),
    ("select 1; select 2", "single statement"),
    ("select 1; delete from samples", "single statement"),
]


@pytest.mark.parametrize("sql,why", REFUSED, ids=[s[:40] for s, _ in REFUSED])
def test_refused_statements(sandbox, fixture_store, sql, why):
    before = store_snapshot(fixture_store["path"])
    res = sandbox.run(sql.format(root=fixture_store["path"]), timeout_s=5)
    assert not res.ok and res.df is None
    assert why.lower() in res.error.lower() or "only read-only select" in res.error.lower()
    assert "Traceback" not in res.error
    assert store_snapshot(fixture_store["path"]) == before


@pytest.mark.parametrize("sql", [
    "select * from read_csv('/etc/passwd')",
    "select * from read_text('/etc/hostname')",
    "select * from glob('/etc/*')",
    "select * from read_parquet('{root}/../ids/*.png')",
    "select * from glob('{root}/tmp/*')",
    "select * from read_blob('{root}/locks/*')",
    "select * from read_parquet('{root}/data/../../ids/id0.png')",
    "select * from read_csv('https://example.com/x.csv')",
])
def test_files_outside_the_store_data_are_not_readable(sandbox, fixture_store, sql):
    res = sandbox.run(sql.format(root=fixture_store["path"]), timeout_s=5)
    assert not res.ok
    assert "not allowed" in res.error.lower() or "disabled" in res.error.lower() or "permission" in res.error.lower()


def test_configuration_is_locked_even_from_a_cursor(sandbox):
    cur = sandbox.cursor()
    with pytest.raises(Exception, match="locked"):
        cur.execute("set enable_external_access = true")
    assert cur.execute("select current_setting('enable_external_access')").fetchone()[0] is False
    cur.close()


def _console_threads() -> list:
    return [t for t in threading.enumerate() if t.name == "workbench-sql" and t.is_alive()]


def test_runaway_query_is_stopped_within_the_limit(sandbox, fixture_store):
    """The time limit is enforced by cancelling the query (cursor.interrupt), not by abandoning
    it: when run() returns, the worker thread that ran it has ended (unstopped, this query runs
    for hours). No wall clock is read here."""
    before = store_snapshot(fixture_store["path"])
    assert _console_threads() == []
    res = sandbox.run("select count(*) from range(10000000000) a cross join range(10000000) b", timeout_s=1.0)
    assert res.timed_out and not res.ok and "time limit" in res.error
    assert _console_threads() == [], "the query's worker thread still runs: the query was not cancelled"
    assert sandbox.run("select 42 as x").df["x"].tolist() == [42]  # still usable afterwards
    assert store_snapshot(fixture_store["path"]) == before


class _CountingCursor:
    """A sandbox cursor whose relations' Arrow readers count the rows the console pulls."""

    def __init__(self, cursor, pulled: list):
        self._cursor, self._pulled = cursor, pulled

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def sql(self, query):
        relation, pulled = self._cursor.sql(query), self._pulled

        class Relation:
            def to_arrow_reader(self, batch_size):
                reader = relation.to_arrow_reader(batch_size)

                class Reader:
                    schema = reader.schema

                    def __iter__(self):
                        for batch in reader:
                            pulled.append(batch.num_rows)
                            yield batch
                return Reader()
        return Relation()


def test_row_limit_streams_only_what_is_shown(sandbox, monkeypatch):
    """The row limit is enforced on the stream: the console pulls at most max_rows rows plus one
    batch from DuckDB (counted by a reader wrapped around the real one), never the 10^10 rows."""
    pulled: list[int] = []
    real = sandbox.cursor
    monkeypatch.setattr(sandbox, "cursor", lambda: _CountingCursor(real(), pulled))
    res = sandbox.run("select * from range(10000000000)", max_rows=100)
    assert res.ok and res.truncated and len(res.df) == 100
    assert res.df["range"].tolist() == list(range(100))
    assert 100 < sum(pulled) <= 200, pulled  # the batch size is min(max_rows, 2048) = 100
    assert _console_threads() == []


def test_store_views_are_queryable_and_unchanged(sandbox, fixture_store):
    before = store_snapshot(fixture_store["path"])
    counts = sandbox.run(COUNTS).df.iloc[0].tolist()
    for view in ("runs", "samples", "maps", "map_values", "faces", "metrics", "sites", "map_face_mass",
                 "site_summary", "step_summary", "face_summary"):
        res = sandbox.run(f"select count(*) as n from {view}")
        assert res.ok, (view, res.error)
    assert sandbox.run("describe samples").ok and sandbox.run("summarize runs").ok
    assert sandbox.run("from samples select identity limit 1").ok
    for sql, _ in REFUSED:
        sandbox.run(sql.format(root=fixture_store["path"]), timeout_s=2)
    assert sandbox.run(COUNTS).df.iloc[0].tolist() == counts
    assert counts[0] == 3 and counts[1] == 11
    assert store_snapshot(fixture_store["path"]) == before


def test_errors_are_messages(sandbox):
    for sql, needle in (("select * from nope", "nope"), ("selec 1", "syntax"), ("", "empty"),
                        ("-- only a comment", "empty")):
        res = sandbox.run(sql)
        assert not res.ok and needle in res.error.lower()


def test_schema_lists_views_and_columns(sandbox):
    schema = sandbox.schema()
    assert {"runs", "samples", "maps", "faces", "metrics", "map_face_mass"} <= set(schema["table_name"])
    assert "image_png" in set(schema.loc[schema["table_name"] == "samples", "column_name"])
    assert "f16_to_float" in set(sandbox.macros()["function_name"])
