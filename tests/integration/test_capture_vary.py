"""``fastface capture --vary`` (issue 26, item 1): a 2x2 parameter grid over the tiny world makes 4
runs whose stored configs hold the values set here by hand, with the same samples and seeds in
every run, found by their coordinates from plain DuckDB (views grid_cells, run_params); bad
grids are refused with one line, exit 2 and the store untouched."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from skimage.data import astronaut

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fastface.cli import main  # noqa: E402
from tests.cli_helpers import assert_one_line_error, snapshot  # noqa: E402

pytestmark = [pytest.mark.timeout(300)]

GRID = ["--vary", "am.am1.scale_up=1.0,1.2", "--vary", "guidance.beta[3]=1,3"]
#: ff-am1.json's guidance (METHOD.md section 5): beta 1, 3, 3, 1 and alpha 1, 1.5, 1.5, 1 over 4 steps
FF_AM1_BETA = [1.0, 3.0, 3.0, 1.0]

#: plain DuckDB in its own process and folder (no project code on the path)
PLAIN = r"""
import json, sys
import duckdb
assert not any(m == "store" or m.startswith(("store.", "fastface", "tests")) for m in sys.modules)
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps([con.execute(q).fetchall() for q in json.loads(sys.argv[2])], default=str))
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vary")
    photos = root / "photos"
    photos.mkdir()
    Image.fromarray(astronaut()).save(photos / "astronaut.png")  # a face dlib finds
    prompts = root / "prompts.txt"
    prompts.write_text("a photo of a person\n")
    return root, photos, prompts


def _capture(capsys, inputs, store, *extra) -> tuple[int, str]:
    _, photos, prompts = inputs
    rc = main(["capture", "--photos", str(photos), "--prompts", str(prompts), "--store", str(store), "--tiny",
               "--capture", "summaries_only", *extra])
    return rc, capsys.readouterr().err


def _plain(store: Path, cwd: Path, queries: list[str]) -> list:
    res = subprocess.run([sys.executable, "-c", PLAIN, str(store / "catalog.duckdb"), json.dumps(queries)],
                         cwd=str(cwd), capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""},
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def grid_store(inputs):
    root, photos, prompts = inputs
    store = root / "store"
    rc = main(["capture", "--photos", str(photos), "--prompts", str(prompts), "--store", str(store), "--tiny",
               "--capture", "summaries_only", "--presets", "ff-am1", *GRID])
    assert rc == 0
    return store


def test_a_2x2_grid_is_4_runs_with_the_configs_set_by_hand(grid_store, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    runs, samples = _plain(grid_store, elsewhere, [
        "select run_id, preset, config_json, variation_json, status from runs order by run_id",
        "select run_id, sample_key, seed, identity, prompt, status from samples order by run_id"])
    assert len(runs) == 4 and len({r[0] for r in runs}) == 4
    got = set()
    for run_id, preset, config_json, variation_json, status in runs:
        config, variation = json.loads(config_json), json.loads(variation_json)
        assert preset == "ff-am1" and status == "completed"
        assert variation["base"] == "ff-am1" and set(variation["coords"]) == {"am.am1.scale_up", "guidance.beta[3]"}
        up, b3 = config["am"]["am1"]["scale_up"], config["guidance"]["beta"]
        assert b3[:3] == FF_AM1_BETA[:3]  # the steps not varied keep the preset's values
        assert config["guidance"]["alpha"] == [1.0, 1.5, 1.5, 1.0] and config["am"]["kind"] == "am1"
        assert (variation["coords"]["am.am1.scale_up"], variation["coords"]["guidance.beta[3]"]) == (up, b3[3])
        got.add((up, b3[3]))
    assert got == {(1.0, 1.0), (1.0, 3.0), (1.2, 1.0), (1.2, 3.0)}
    assert len({json.loads(r[3])["grid"] for r in runs}) == 1  # one grid
    # the same sample (identity, prompt, seed 50 = --seed + pair 0, key) in every cell
    assert len(samples) == 4 and {r[0] for r in samples} == {r[0] for r in runs}
    assert {tuple(r[1:]) for r in samples} == {(samples[0][1], 50, "astronaut", "a photo of a person", "ok")}


def test_sql_finds_the_cells_by_their_coordinates(grid_store, tmp_path):
    by_params, by_cells, one, labels = _plain(grid_store, tmp_path, [
        "select run_id from run_params where path = 'am.am1.scale_up' and value = 1.2 order by 1",
        "select run_id from grid_cells where path = 'am.am1.scale_up' and value = 1.2 order by 1",
        "select run_id from run_params where path = 'am.am1.scale_up' and value = 1.2 intersect "
        "select run_id from run_params where path = 'guidance.beta[3]' and value = 3",
        "select run_id, config_json from runs"])
    assert len(by_params) == 2 and by_params == by_cells
    configs = {r[0]: json.loads(r[1]) for r in labels}
    assert {r[0] for r in by_params} == {k for k, c in configs.items() if c["am"]["am1"]["scale_up"] == 1.2}
    assert len(one) == 1
    cfg = configs[one[0][0]]
    assert cfg["am"]["am1"]["scale_up"] == 1.2 and cfg["guidance"]["beta"] == [1.0, 3.0, 3.0, 3.0]


def test_the_duckdb_1x_cli_finds_the_cells(grid_store, tmp_path):
    """The catalog's views as the DuckDB CLI of the 1.x line reads them (older JSON functions)."""
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("duckdb_cli")  # the duckdb-cli wheel (as test_store_clients.py)
    binary = Path(list(spec.submodule_search_locations)[0]) / "duckdb" if spec and spec.submodule_search_locations \
        else None
    cli = str(binary) if binary is not None and binary.is_file() else shutil.which("duckdb")
    if cli is None:
        pytest.skip("duckdb-cli is not installed (pip install -r requirements.txt installs it)")
    sql = ("select r.value, g.value as cell, g.text from run_params r join grid_cells g using (run_id, path) "
           "where r.path = 'guidance.beta[3]' order by all")
    res = subprocess.run([cli, "-readonly", "-json", str(grid_store / "catalog.duckdb"), "-c", sql], cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert [tuple(r.values()) for r in json.loads(res.stdout)] == [(1.0, 1.0, "1.0")] * 2 + [(3.0, 3.0, "3.0")] * 2


def test_the_same_command_again_writes_nothing(grid_store, inputs, capsys):
    before = snapshot(grid_store / "runs")
    n_runs = len([p for p in (grid_store / "runs").iterdir() if not p.name.startswith("_")])
    rc, err = _capture(capsys, inputs, grid_store, "--presets", "ff-am1", *GRID)
    assert rc == 0 and n_runs == 4
    assert len([p for p in (grid_store / "runs").iterdir() if not p.name.startswith("_")]) == 4
    assert {k for k in snapshot(grid_store / "runs") if k.endswith("run.parquet")} == \
        {k for k in before if k.endswith("run.parquet")}  # same run ids: resumed, nothing new


@pytest.mark.parametrize("extra, needles", [
    (["--presets", "ff-am1", "--vary", "am.am1.scale_upp=1,2"], ["'am.am1.scale_upp'", "am.am1.scale_up"]),
    (["--presets", "ff-am2", "--vary", "am.am2.steepness[0]=5,-1"], ["am.am2.steepness[0]=-1", "minimum 0"]),
    (["--presets", "ff-am2", "--vary", "am.am2.steepness[7]=1,2"], ["step 7 is past", "4 steps"]),
    (["--presets", "ff-am2", "--vary", "guidance.beta=1/2/3/4/5"], ["guidance.beta", "5 values", "4 steps"]),
    (["--presets", "ff-am1,ff-am2", "--vary", "am.am1.scale_up=1,2"], ["exactly one preset", "ff-am1, ff-am2"]),
    (["--presets", "ff-am1", "--vary", "ip_scale=0.5,0.8", "--ip-scales", "0.5"], ["--vary ip_scale", "--ip-scales"]),
    (["--presets", "ff-am1", "--vary", "am.kind=am3"], ["am.kind=am3", "none, am1, am2"]),
])
def test_a_bad_grid_is_refused_with_one_line_and_nothing_written(capsys, inputs, tmp_path, extra, needles):
    from store.db import open_store

    store = tmp_path / "store"
    open_store(store)
    before = snapshot(store)
    rc, err = _capture(capsys, inputs, store, *extra)
    assert_one_line_error(rc, err, *needles)
    assert snapshot(store) == before
    assert not list((store / "runs").glob("[!_]*"))
