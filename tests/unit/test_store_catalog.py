"""Migrations, catalog build, SQL text hygiene, named queries."""

import ast
import hashlib
import shutil
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from store import db, queries, schema  # noqa: E402
from store.db import open_store  # noqa: E402
from store.schema import Migration, MigrationError, apply_migrations, load_migrations  # noqa: E402
from store.layout import StoreError  # noqa: E402

VIEWS = ["runs", "run_events", "samples", "sites", "maps", "faces", "metrics", "map_values",
         "map_face_mass", "site_summary", "step_summary", "face_summary", "store_manifest", "store_identity",
         "map_stats"]


#: the migration files on disk (version, name): what a new store applies
ON_DISK = sorted((int(f.name[:4]), f.stem[5:]) for f in (ROOT / "store" / "sql" / "migrations").glob("*.sql"))
VERSIONS = [v for v, _ in ON_DISK]


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_migrations_applied_once_and_recorded(tmp_path):
    s = open_store(tmp_path / "s")
    assert s.applied_now == VERSIONS and VERSIONS[:2] == [1, 2]
    first = s.applied_migrations()
    assert [(v, n) for v, n, _ in first] == ON_DISK and ON_DISK[:2] == [(1, "init"), (2, "summaries")] and (5, "balance_words") in ON_DISK
    digest = sha(s.catalog_path)
    again = open_store(tmp_path / "s")
    assert again.applied_now == []
    assert again.applied_migrations() == first          # same applied_at: not re-applied
    assert sha(again.catalog_path) == digest             # catalog untouched
    with again.connect_read_only() as con:
        for v in VIEWS:
            n = 1 if v == "store_identity" else 0                # empty store works
            assert con.execute(f"select count(*) from {v}").fetchall() == [(n,)], v


def test_new_migration_applied_in_place_and_old_files_still_read(tmp_path):
    migs = load_migrations() + [Migration(90, "add_note", "alter table raw.samples add column note varchar;")]
    s = open_store(tmp_path / "s")
    s2 = open_store(tmp_path / "s", migrations=migs)
    assert s2.applied_now == [90]
    versions = [v for v, _, _ in s2.applied_migrations()]
    assert versions == VERSIONS + [90]
    with s2.connect_read_only() as con:
        assert con.execute("select count(note) from samples").fetchall() == [(0,)]
    assert s.applied_now == VERSIONS
    # this code does not know version 90: refuses instead of guessing
    with pytest.raises(MigrationError, match="unknown"):
        open_store(tmp_path / "s")


def test_bad_migration_leaves_catalog_unchanged(tmp_path):
    s = open_store(tmp_path / "s")
    digest = sha(s.catalog_path)
    bad = Migration(91, "bad", "create table raw.half_done (a int);\nselect * from no_such_table;")
    with pytest.raises(MigrationError, match="0091_bad failed"):
        open_store(tmp_path / "s", migrations=load_migrations() + [bad])
    assert sha(s.catalog_path) == digest
    assert not [p for p in (tmp_path / "s" / "tmp").iterdir() if p.suffix == ".duckdb"]
    # the transaction itself: neither the table of the first statement nor the record survive
    with duckdb.connect() as con:
        apply_migrations(con, load_migrations())
        with pytest.raises(MigrationError):
            apply_migrations(con, load_migrations() + [bad])
        assert con.execute("select count(*) from duckdb_tables() where table_name = 'half_done'").fetchall() == [(0,)]
        assert con.execute("select max(version) from schema_migrations").fetchall() == [(max(VERSIONS),)]


def test_edited_migration_is_refused(tmp_path):
    open_store(tmp_path / "s")
    m = load_migrations()
    edited = [Migration(1, m[0].name, m[0].sql + "\n-- edited\n")] + m[1:]
    with pytest.raises(MigrationError, match="changed after it was applied"):
        open_store(tmp_path / "s", migrations=edited)


def test_moved_store_needs_no_rebuild_and_reads_its_new_folder(tmp_path):
    from tests.store_helpers import make_run, write_samples
    from store.writer import StoreWriter
    w = StoreWriter(tmp_path / "a", durable=False)
    w.begin_run(make_run("r1"))
    write_samples(w, "r1", range(2))
    w.close()
    digest = sha(tmp_path / "a" / "catalog.duckdb")
    shutil.move(str(tmp_path / "a"), str(tmp_path / "b"))
    with db.connect_read_only(tmp_path / "b") as con:
        assert con.execute("select count(*) from samples").fetchall() == [(2,)]
        assert con.execute("select root from store_identity").fetchall() == [(str(tmp_path / "b"),)]
    assert sha(tmp_path / "b" / "catalog.duckdb") == digest      # the catalog holds no path


def test_catalog_is_written_in_the_older_storage_version_and_rebuilt_from_a_newer_one(tmp_path):
    from store.catalog import CATALOG_STORAGE_VERSION
    s = open_store(tmp_path / "s")
    tags = "select tags from duckdb_databases() where database_name = current_database()"
    with s.connect_read_only() as con:
        assert con.execute(tags).fetchall()[0][0]["storage_version"] == CATALOG_STORAGE_VERSION + "+"
    # a catalog in the newest storage format (as written before this version): rebuilt, same store
    with duckdb.connect(str(s.catalog_path)) as old:
        info = old.execute("select * from catalog_info").fetchall()
    with duckdb.connect(str(tmp_path / "new.duckdb")) as new:   # default: the newest storage version
        apply_migrations(new, load_migrations())
        new.execute("create table main.catalog_info (key varchar primary key, value varchar)")
        new.executemany("insert into main.catalog_info values (?, ?)", [list(r) for r in info])
        assert new.execute(tags).fetchall()[0][0]["storage_version"] != CATALOG_STORAGE_VERSION + "+"
    shutil.move(str(tmp_path / "new.duckdb"), str(s.catalog_path))
    again = open_store(tmp_path / "s")
    assert again.applied_now == VERSIONS
    with again.connect_read_only() as con:
        assert con.execute(tags).fetchall()[0][0]["storage_version"] == CATALOG_STORAGE_VERSION + "+"
        assert con.execute("select count(*) from samples").fetchall() == [(0,)]


def test_store_path_with_quote_is_escaped(tmp_path):
    path = tmp_path / "it's a store"
    with open_store(path).connect_read_only() as con:
        assert con.execute("select count(*) from samples").fetchall() == [(0,)]
    assert schema.sql_string_literal("a'b") == "'a''b'"
    with pytest.raises(StoreError):
        schema.sql_string_literal("a\x00b")
    with pytest.raises(StoreError, match="glob"):
        open_store(tmp_path / "bad[1]")


def test_no_formatted_sql_outside_the_audited_function():
    """No .execute/.sql/.query call in store/ gets an f-string, %-formatted or concatenated text."""
    offenders = []
    for f in (ROOT / "store").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in {"execute", "sql", "query", "executemany"} and node.args:
                a = node.args[0]
                if isinstance(a, (ast.JoinedStr, ast.BinOp)) or (
                        isinstance(a, ast.Call) and getattr(a.func, "attr", "") == "format"):
                    offenders.append(f"{f.name}:{node.lineno}")
    assert offenders == []


def test_every_view_file_is_dbt_style_and_documented():
    for p in sorted((schema.SQL_DIR / "views").glob("*.sql")):
        sql = p.read_text()
        assert sql.startswith("-- " + p.stem + ":"), p.name
        assert sql.rstrip().endswith("select * from final;"), p.name


def test_named_queries_errors(tmp_path):
    with open_store(tmp_path / "s").connect_read_only() as con:
        with pytest.raises(queries.UnknownQueryError, match="maps_for_sample"):
            queries.run_query(con, "no_such_query")
        with pytest.raises(StoreError, match="missing"):
            queries.run_query(con, "maps_for_sample", run_id="r1")
        with pytest.raises(StoreError, match="unexpected"):
            queries.run_query(con, "samples_for_run", run_id="r1", extra=1)
        assert queries.query_params("select $a, '$b' -- $c\n from t where x = $d") == {"a", "d"}
        for name in queries.list_queries():
            params = {p: 0.5 if p == "thr" else "r1" for p in queries.query_params(queries.load_query(name))}
            assert len(queries.run_query(con, name, **params)) == 0, name


def test_views_md_is_up_to_date():
    from store import views_doc
    assert (ROOT / "store" / "VIEWS.md").read_text() == views_doc.render(), \
        "run: python -m store.views_doc --write"
