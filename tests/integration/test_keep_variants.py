"""fastface.sweeps.keep (the Studio's Keep, issue 26): a base preset and an edited config written
as two runs of a store, like ``capture --vary`` writes them: the edit in the stored config, the
variation in grid_cells, the same sample and seed in both, and nothing new on a second call."""
from __future__ import annotations

import json

import duckdb
import pytest
from PIL import Image
from skimage.data import astronaut

from fastface.method.config import ConfigError, load_preset
from fastface.method.paths import set_value
from fastface.sweeps.keep import one_sample_dataset, plan_variants, studio_spec, write_variants

pytestmark = [pytest.mark.timeout(300)]


def test_keep_writes_the_base_and_the_edit_once(tmp_path):
    from fastface.models.pipeline import load_pipeline

    Image.fromarray(astronaut()).save(tmp_path / "astronaut.png")
    pipe = load_pipeline("hyper", tiny=True, world="random", device="cpu", face_backend="dlib")
    loads = []

    def load(checkpoint):
        loads.append(checkpoint)
        return pipe

    base = load_preset("ff-am1")
    edited = set_value(base, "am.am1.scale_up", 1.2, num_steps=4)
    spec = studio_spec(world="random", capture="summaries_only", seed=7)
    data = one_sample_dataset("astro", str(tmp_path / "astronaut.png"), "a photo of a person")
    variants = [(base, {}), (edited, {"am.am1.scale_up": 1.2})]
    store = tmp_path / "store"
    plans, counts = write_variants(str(store), spec, data, "ff-am1", variants, load=load)
    assert counts["written"] == 2 and counts["failed"] == 0 and loads == ["hyper"]  # the loaded pipe, once
    again, counts2 = write_variants(str(store), spec, data, "ff-am1", variants, load=load)
    assert [p.run_id for p in again] == [p.run_id for p in plans] and counts2["written"] == 0
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    try:
        runs = {r[0]: (json.loads(r[1]), r[2]) for r in con.execute(
            "select run_id, config_json, preset from runs").fetchall()}
        cells = con.execute("select run_id, path, value from grid_cells order by path nulls first").fetchall()
        samples = con.execute("select run_id, sample_key, seed, status from samples").fetchall()
    finally:
        con.close()
    assert len(runs) == 2
    assert runs[plans[0].run_id][0]["am"]["am1"]["scale_up"] == 1.45  # ff-am1: METHOD.md's 1.45
    assert runs[plans[1].run_id][0]["am"]["am1"]["scale_up"] == 1.2
    assert {p for _, p in runs.values()} == {"ff-am1"}
    assert cells == [(plans[0].run_id, None, None), (plans[1].run_id, "am.am1.scale_up", 1.2)]
    assert len({(k, s) for _, k, s, _ in samples}) == 1 and samples[0][2] == 7 and {r[3] for r in samples} == {"ok"}


def test_plan_variants_refuses_a_schedule_past_the_step_count():
    base = load_preset("ff-am2")
    bad = base.__class__.from_dict({**base.to_dict(), "guidance": {**base.to_dict()["guidance"],
                                                                    "beta": [1, 2, 3, 4, 5]}})
    data = one_sample_dataset("a", "a.png", "p")
    with pytest.raises(ConfigError, match="5 values but the run has 4 steps"):
        plan_variants(studio_spec(), data, "ff-am2", [(base, {}), (bad, {"guidance.beta": [1, 2, 3, 4, 5]})])
    with pytest.raises(ConfigError, match="same config and coordinates"):
        plan_variants(studio_spec(), data, "ff-am2", [(base, {}), (base, {})])
