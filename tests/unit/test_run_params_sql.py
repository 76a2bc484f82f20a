"""The SQL views of parameter grids (store/sql/views/run_params.sql, grid_cells.sql; issue 26)
agree with fastface.method.paths: the view's path and schedule lists are param_paths() and
SCHEDULES, and a run's rows hold the values its config states (preset files read by hand)."""
import json
import re
from pathlib import Path

import duckdb

from fastface.method.config import load_preset
from fastface.method.paths import SCHEDULES, param_paths
from store.records import RunRecord
from store.writer import StoreWriter

VIEW = Path(__file__).resolve().parents[2] / "store" / "sql" / "views" / "run_params.sql"


def _lists():
    sql = VIEW.read_text()
    blocks = re.findall(r"unnest\(\[(.*?)\]\)", sql, re.S)
    return [re.findall(r"'([^']+)'", b) for b in blocks[:2]]


def test_the_views_paths_are_param_paths_and_its_schedules_are_schedules():
    fields, schedules = _lists()
    assert fields == param_paths()
    assert schedules == list(SCHEDULES)


def test_run_params_and_grid_cells_read_the_stored_config_and_coordinates(tmp_path):
    raw = load_preset("ff-am2").to_dict()
    edited = json.loads(json.dumps(raw))
    edited["am"]["am1"]["scale_up"] = 1.2
    edited["guidance"]["beta"] = [1.0, 3.0, 3.0, 3.0]
    store = tmp_path / "store"
    with StoreWriter(store) as w:
        w.begin_run(RunRecord(run_id="plain", config=raw, preset="ff-am2"))
        w.begin_run(RunRecord(run_id="cell", config=edited, preset="ff-am2", variation={
            "base": "ff-am2", "grid": "g1", "coords": {"am.am1.scale_up": 1.2, "guidance.beta[3]": 3.0}}))
        w.begin_run(RunRecord(run_id="base", config=raw, preset="ff-am2",
                              variation={"base": "ff-am2", "grid": "g1", "coords": {}}))
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        q = con.execute
        assert q("select run_id from run_params where path = 'am.am1.scale_up' and value = 1.2").fetchall() == [("cell",)]
        assert sorted(q("select run_id from run_params where path = 'am.am1.scale_up' and value = 1.45"
                        ).fetchall()) == [("base",), ("plain",)]
        # the per-step rows of a schedule, as ff-am2.json states them
        got = q("select step, value from run_params where run_id = 'plain' and field = 'guidance.beta' "
                "and step is not null order by step").fetchall()
        assert got == [(0, 1.0), (1, 3.0), (2, 3.0), (3, 1.0)]  # ff-am2.json's beta
        assert q("select text, value from run_params where run_id = 'plain' and path = 'am.parts'").fetchall() == [
            ("down/up", None)]
        assert q("select value from run_params where run_id = 'plain' and path = 'am.am2.adain_weight'"
                 ).fetchall() == [(0.7,)]  # a one-value schedule: its constant
        assert q("select text from run_params where run_id = 'plain' and path = 'am.kind'").fetchall() == [("am2",)]
        # every path once, plus 4 steps of each of the 5 four-value schedules of ff-am2.json
        # (alpha, beta, steepness, quantile, scale; adain_weight is one value)
        assert q("select count(*) from run_params where run_id = 'plain'").fetchall() == [(len(param_paths()) + 5 * 4,)]
        assert q("select path, value, text from grid_cells where run_id = 'cell' order by path").fetchall() == [
            ("am.am1.scale_up", 1.2, "1.2"), ("guidance.beta[3]", 3.0, "3.0")]
        assert q("select path, n_coords, grid from grid_cells where run_id = 'base'").fetchall() == [(None, 0, "g1")]
        assert q("select count(*) from grid_cells where run_id = 'plain'").fetchall() == [(0,)]
        assert q("select path from run_params where run_id = 'cell' and varied order by path").fetchall() == [
            ("am.am1.scale_up",), ("guidance.beta[3]",)]
    finally:
        con.close()


def test_a_run_file_written_before_migration_0004_still_reads(tmp_path):
    import pyarrow.parquet as pq

    store = tmp_path / "store"
    with StoreWriter(store) as w:
        w.begin_run(RunRecord(run_id="old", config=load_preset("am1").to_dict(), preset="am1"))
    f = store / "runs" / "old" / "run.parquet"
    table = pq.read_table(f)
    pq.write_table(table.drop(["variation_json"]), f)  # the columns of a run written before 0004
    assert "variation_json" not in pq.read_schema(f).names
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        assert con.execute("select run_id, variation_json from runs").fetchall() == [("old", None)]
        assert con.execute("select count(*) from grid_cells").fetchall() == [(0,)]
        assert con.execute("select value from run_params where run_id = 'old' and path = 'am.am1.scale_up'"
                           ).fetchall() == [(1.45,)]  # METHOD.md: AM1's up-block scale 1.45
    finally:
        con.close()
