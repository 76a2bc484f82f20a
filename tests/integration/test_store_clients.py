"""Issue 13: a store opened by clients that use none of the project's code.

* moved, copied (original deleted; original kept and then changed) and opened with plain DuckDB
  from another working directory: the answers equal the original's, or the query fails with an
  error, never answers from another folder;
* ATTACHed to another connection: an error naming the fix, or the right answers after it;
* the newest DuckDB CLI from PyPI (duckdb-cli, a binary in a wheel) runs the VIEWS.md examples.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from store.compact import compact  # noqa: E402
from store.views_doc import example_queries  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.store_helpers import make_run, write_samples  # noqa: E402

pytestmark = [pytest.mark.timeout(300)]

#: a plain-DuckDB client: runs the VIEWS.md examples on the catalog given, from its own cwd
PLAIN = r"""
import json, sys
import duckdb
assert not any(m == "store" or m.startswith(("store.", "tests")) for m in sys.modules)
con = duckdb.connect(sys.argv[1], read_only=True)
out = []
for q in json.loads(sys.argv[2]):
    try:
        rows = con.execute(q).fetchall()  # floats rounded: parallel sums differ in the last digit
        out.append({"rows": [[str(round(v, 9) if isinstance(v, float) else v) for v in r] for r in rows]})
    except duckdb.Error as e:
        out.append({"error": str(e)})
con.close()
print(json.dumps(out))
"""


def make_store(root: Path, n: int = 6, start: int = 0) -> Path:
    """A store with a compacted part and loose sample directories (both read by the views)."""
    w = StoreWriter(root, durable=False)
    w.begin_run(make_run("r1"))
    write_samples(w, "r1", range(start, start + n - 2))
    compact(root, "r1", activation_delay_s=0, durable=False)
    write_samples(w, "r1", range(start + n - 2, start + n))
    w.close()
    return root


def plain(catalog, cwd) -> list[dict]:
    """The answers of the VIEWS.md examples from a plain-DuckDB process started in ``cwd``."""
    queries = example_queries() + ["select count(*), count(distinct sample_key) from samples",
                                   "select count(*) from maps"]
    res = subprocess.run([sys.executable, "-c", PLAIN, str(catalog), json.dumps(queries)], cwd=str(cwd),
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def without_root(answers: list[dict]) -> list[dict]:
    """store_identity's root differs between copies by design; everything else must be equal."""
    return [{"rows": [[a["rows"][0][0]]]} if i == 0 and "rows" in a else a for i, a in enumerate(answers)]


def test_examples_cover_every_kind_of_view():
    text = " ".join(example_queries())
    for view in ("store_identity", "runs", "samples", "maps", "map_values", "site_summary", "face_summary",
                 "metrics", "map_face_mass"):
        assert f"from {view}" in text, view


def test_moved_store_answers_from_its_new_folder_from_any_working_directory(tmp_path):
    original = plain(make_store(tmp_path / "a") / "catalog.duckdb", tmp_path)
    assert all("rows" in a for a in original) and original[-2]["rows"] == [["6", "6"]]
    shutil.move(str(tmp_path / "a"), str(tmp_path / "moved"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for catalog, cwd in [(tmp_path / "moved" / "catalog.duckdb", elsewhere),      # absolute path
                         (Path("../moved/catalog.duckdb"), elsewhere),            # relative path
                         (Path("catalog.duckdb"), tmp_path / "moved")]:           # from the store itself
        answers = plain(catalog, cwd)
        assert without_root(answers) == without_root(original), (catalog, cwd)
        assert Path(cwd, answers[0]["rows"][0][1]).resolve() == (tmp_path / "moved").resolve()


def test_copy_with_the_original_deleted_answers_like_the_original(tmp_path):
    original = plain(make_store(tmp_path / "a") / "catalog.duckdb", tmp_path)
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    shutil.rmtree(tmp_path / "a")
    assert without_root(plain(tmp_path / "copy" / "catalog.duckdb", tmp_path)) == without_root(original)


def test_copy_never_answers_from_the_original_after_the_original_changed(tmp_path):
    original = plain(make_store(tmp_path / "a") / "catalog.duckdb", tmp_path)
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    make_store(tmp_path / "a", n=4, start=100)                  # the original grows: 10 samples
    changed = plain(tmp_path / "a" / "catalog.duckdb", tmp_path)
    assert changed[-2]["rows"] == [["10", "10"]]
    # the copy, opened from the original's folder (a relative path would resolve there), still 6
    for cwd, catalog in [(tmp_path, tmp_path / "copy" / "catalog.duckdb"),
                         (tmp_path / "a", Path("../copy/catalog.duckdb"))]:
        assert without_root(plain(catalog, cwd)) == without_root(original)


def _error(con, sql) -> str:
    with pytest.raises(duckdb.Error) as e:
        con.execute(sql).fetchall()
    return str(e.value)


def test_attached_catalog_answers_only_with_its_own_folder_or_fails_loudly(tmp_path):
    a = make_store(tmp_path / "a")
    b = make_store(tmp_path / "b", n=3, start=50)
    shutil.copytree(a, tmp_path / "a_copy")
    # in-memory connection + ATTACH: no guess from the working directory, an error naming the fix
    con = duckdb.connect()
    try:
        con.execute(f"attach '{b / 'catalog.duckdb'}' as b (read_only)")
        assert "SET temp_directory" in _error(con, "select count(*) from b.samples")
        con.execute(f"set temp_directory = '{b / 'catalog.duckdb.tmp'}'")   # the documented fix
        assert con.execute("select count(*) from b.samples").fetchall() == [(3,)]
    finally:
        con.close()
    # store A's connection, store B attached: B's views would read A's folder -> refused
    con = duckdb.connect(str(a / "catalog.duckdb"), read_only=True)
    try:
        con.execute(f"attach '{b / 'catalog.duckdb'}' as b (read_only)")
        for view in ("samples", "maps", "runs", "metrics", "sites", "store_manifest", "store_identity"):
            assert "belongs to store" in _error(con, f"select count(*) from b.{view}"), view
        con.execute("detach b")
        assert con.execute("select count(*) from samples").fetchall() == [(6,)]
        con.execute(f"attach '{tmp_path / 'a_copy' / 'catalog.duckdb'}' as a_copy (read_only)")
        assert "2 catalogs of store" in _error(con, "select count(*) from a_copy.samples")
        assert "2 catalogs of store" in _error(con, "select count(*) from samples")
    finally:
        con.close()


def test_folder_of_another_store_under_the_catalog_is_refused(tmp_path):
    a = make_store(tmp_path / "a")
    b = make_store(tmp_path / "b", n=3, start=50)
    shutil.copyfile(b / "data" / "store_id.parquet", a / "data" / "store_id.parquet")  # a's folder, b's id
    con = duckdb.connect(str(a / "catalog.duckdb"), read_only=True)
    try:
        assert "belongs to store" in _error(con, "select count(*) from samples")
    finally:
        con.close()


def duckdb_cli() -> str | None:
    """The binary of the duckdb-cli wheel (requirements.txt), not a shell script wrapper."""
    spec = importlib.util.find_spec("duckdb_cli")
    if spec is None or not spec.submodule_search_locations:
        return None
    binary = Path(list(spec.submodule_search_locations)[0]) / "duckdb"
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else shutil.which("duckdb")


def _normal(v):
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, list):
        return [_normal(x) for x in v]
    return v if v is None or isinstance(v, (int, bool)) else str(v)


def test_newest_duckdb_cli_runs_the_views_md_examples(tmp_path):
    cli = duckdb_cli()
    if cli is None:
        pytest.skip("duckdb-cli is not installed (pip install -r requirements.txt installs it)")
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, timeout=60).stdout.split()[0]
    assert version.lstrip("v").split(".")[0] == "1", f"expected a 1.x CLI, the release line before ours: {version}"
    store = make_store(tmp_path / "s")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        for sql in example_queries():
            res = subprocess.run([cli, "-readonly", "-json", str(store / "catalog.duckdb"), "-c", sql],
                                 cwd=str(elsewhere), capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, f"duckdb {version}: {sql}\n{res.stderr}{res.stdout}"
            rows = json.loads(res.stdout or "[]")
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            expected = [dict(zip(names, r)) for r in cur.fetchall()]
            assert len(rows) == len(expected) and rows, sql
            for got, want in zip(rows, expected):
                assert list(got) == names, sql
                for k in names:
                    if k != "first_values" and not isinstance(want[k], (list, dict)):
                        assert _normal(got[k]) == _normal(want[k]), (sql, k)
    finally:
        con.close()
