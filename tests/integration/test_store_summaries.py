"""The pre-aggregated summary tables (map_stats, face_mass; store/summaries.py) give the answers of
the decode / full-scan SQL they replace, before and after compaction and after a backfill.

Tolerance: float columns within 1e-9 absolute and relative (sums of float32 map values in float64,
added in another order); integer and text columns equal.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.backfill import backfill, missing_summaries  # noqa: E402
from store.compact import compact  # noqa: E402
from store.db import connect_read_only  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.store_helpers import make_run, write_samples  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).resolve().parent / "reference_sql"
TOL = 1e-9
#: (workbench query, its parameters): the new SQL (workbench/data/sql) against the old (reference_sql)
PAGE_QUERIES = [
    ("hist_sum", dict(run_ids=["r1", "r2"], part=None, block=None, step=None, token=None, branch=None)),
    ("hist_sum", dict(run_ids=["r1"], part="up", block=0, step=1, token=-1, branch="id")),
    ("step_stats", dict(run_ids=["r1", "r2"], branch=None, tokens=None)),
    ("step_stats", dict(run_ids=["r2"], branch="text_id", tokens=[-1])),
    ("face_mass", dict(run_id="r1", stage="post", branch="id", tokens=[-1])),
    ("face_mass", dict(run_id="r2", stage="post", branch="text_id", tokens=None)),
    ("map_facets", dict(run_ids=["r1", "r2"])),
]


def assert_frames_close(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    assert list(a.columns) == list(b.columns), what
    assert len(a) == len(b), f"{what}: {len(a)} rows vs {len(b)}"
    for c in a.columns:
        x, y = a[c].reset_index(drop=True), b[c].reset_index(drop=True)
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            x, y = x.astype(float).to_numpy(), y.astype(float).to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), f"{what}.{c}: nulls differ"
            np.testing.assert_allclose(x, y, rtol=TOL, atol=TOL, equal_nan=True, err_msg=f"{what}.{c}")
        else:
            assert x.astype(str).tolist() == y.astype(str).tolist(), f"{what}.{c}"


def sorted_df(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns[: min(len(df.columns), 8)]), kind="stable").reset_index(drop=True)


def check_all(root) -> None:
    with connect_read_only(root) as con:
        new = con.execute("select * from map_face_mass order by all").df()
        old = con.execute("select * from map_face_mass_at(0.5) order by all").df()
        assert len(new) > 0
        assert_frames_close(new, old, "map_face_mass")
        for name, params in PAGE_QUERIES:
            sql_new = (ROOT / "workbench" / "data" / "sql" / f"{name}.sql").read_text()
            sql_old = (REFERENCE / f"{name}.sql").read_text()
            a = sorted_df(con.execute(sql_new, params).df())
            b = sorted_df(con.execute(sql_old, params).df())
            assert len(a) > 0, name
            assert_frames_close(a, b, f"{name}{params}")
        n_maps = con.execute("select count(*) from maps").fetchone()[0]
        assert con.execute("select sum(n_maps), sum(n_face_maps) from map_stats").fetchone() == (
            n_maps, len(new))


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    w = StoreWriter(root, durable=False)
    for run in ("r1", "r2"):
        w.begin_run(make_run(run))
    write_samples(w, "r1", range(0, 9), hw=8)                  # i % 7 == 3: face not detected
    write_samples(w, "r1", range(9, 12), hw=4, encoding="u8")  # another grid, u8 maps
    write_samples(w, "r1", [12], fail=True)                    # failed: no maps
    write_samples(w, "r2", range(20, 26), hw=8, n_steps=3)
    write_samples(w, "r2", range(26, 28), encoding="none")     # summaries only: no face mass
    w.close()
    return root


def test_summaries_match_the_decoding_sql(store):
    check_all(store)


def test_summaries_survive_compaction(store):
    with connect_read_only(store) as con:
        before = con.execute("select * from map_stats order by all").df()
    compact(store, "r1", activation_delay_s=0, retention_s=0)
    w = StoreWriter(store, durable=False)
    write_samples(w, "r1", range(30, 33), hw=8)   # uncompacted samples next to the segment
    w.close()
    check_all(store)
    with connect_read_only(store) as con:
        r2 = con.execute("select * from map_stats where run_id = 'r2' order by all").df()
    assert_frames_close(r2, before[before.run_id == "r2"].reset_index(drop=True), "map_stats r2")


def test_backfill_writes_what_the_writer_wrote(store):
    compact(store, "r2", activation_delay_s=0, retention_s=0)
    with connect_read_only(store) as con:
        stats = con.execute("select * exclude (hist) from map_stats order by all").df()
        mass = con.execute("select * from map_face_mass order by all").df()
    removed = 0
    for d in sorted((store / "data").glob("run=r*/*=*")):
        for name in ("map_stats.parquet", "face_mass.parquet"):
            if (d / name).exists():
                os.remove(d / name)
                removed += 1
    assert removed and missing_summaries(store) > 0
    with connect_read_only(store) as con:
        assert con.execute("select count(*) from map_stats").fetchone()[0] == 0
    r = backfill(store)
    assert r.n_segments == 1 and r.n_sample_dirs == 12 and missing_summaries(store) == 0
    assert backfill(store).n_maps == 0     # idempotent
    with connect_read_only(store) as con:
        assert_frames_close(con.execute("select * exclude (hist) from map_stats order by all").df(), stats,
                            "map_stats")
        assert_frames_close(con.execute("select * from map_face_mass order by all").df(), mass, "map_face_mass")
    check_all(store)
