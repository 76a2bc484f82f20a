"""Data contracts (store/sql/tests/*.sql) on a populated store, and on injected violations."""

import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from store.compact import compact  # noqa: E402
from store.db import connect_read_only  # noqa: E402
from store.queries import list_contracts, run_contracts  # noqa: E402
from store.records import MetricRecord  # noqa: E402
from store.writer import StoreWriter  # noqa: E402
from tests.store_helpers import make_run, make_sample, write_samples  # noqa: E402


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    root = tmp_path_factory.mktemp("contracts") / "store"
    w = StoreWriter(root, worker_id="w0", durable=False)
    w.begin_run(make_run("r1"))
    write_samples(w, "r1", range(6))
    write_samples(w, "r1", range(6, 9), encoding="u8")
    write_samples(w, "r1", [9], encoding="none")
    w.write_sample("r1", make_sample(10, fail=True)[0])
    w.add_metrics("r1", make_sample(0)[0].sample_key, [MetricRecord("clip_t", 0.3, "clip-vit-l-14@1")])
    w.set_status("r1", "completed", n_done=11, n_total=11)
    w.begin_run(make_run("r2", seed=5))
    write_samples(w, "r2", range(4))
    compact(root, "r2", activation_delay_s=0)   # active at once
    write_samples(w, "r2", range(4, 6))          # after compaction: sample dirs + a segment
    w.close()
    return root


def test_contracts_pass_on_a_populated_store(populated):
    assert set(list_contracts()) >= {"unique_keys", "not_null", "accepted_values", "relationships",
                                     "row_consistency"}
    with connect_read_only(populated) as con:
        assert con.execute("select count(*) from samples").fetchall() == [(17,)]
        for name, df in run_contracts(con).items():
            assert len(df) == 0, f"{name}:\n{df}"


def _rewrite(src: Path, dst: Path, **columns):
    t = pq.read_table(src)
    for name, value in columns.items():
        i = t.schema.get_field_index(name)
        field = t.schema.field(i).with_nullable(True)   # DuckDB writes NOT NULL columns as required
        t = t.set_column(i, field, pa.array([value] * len(t), field.type))
    dst.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, dst)


def test_contracts_catch_injected_violations(populated, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(populated, root)            # also exercises the rebuild of a moved store
    data = root / "data" / "run=r1"
    k0 = make_sample(0)[0].sample_key
    src = data / f"sample={k0}"
    # 1. the same samples in two segments (two compactions racing without the lock)
    seg = next((root / "data" / "run=r2").glob("segment=*"))
    shutil.copytree(seg, seg.with_name("segment=copy"))
    _rewrite(seg / "manifest.parquet", seg.with_name("segment=copy") / "manifest.parquet", segment_id="copy")
    k_r2 = make_sample(1)[0].sample_key
    # 2. maps of a sample that does not exist
    _rewrite(src / "maps.parquet", data / "sample=orphan" / "maps.parquet", sample_key="orphan")
    # 3. a sample row breaking accepted values, not-null and the ok/image rule
    _rewrite(src / "samples.parquet", data / "sample=bad1" / "samples.parquet", sample_key="bad1",
             status="weird", identity=None, image_png=None)
    # 4. an undetected face that still has a box
    _rewrite(src / "faces.parquet", data / "sample=bad2" / "faces.parquet", sample_key="bad2", detected=False)
    with connect_read_only(root) as con:
        res = run_contracts(con)
    uk = res["unique_keys"]
    assert ((uk.table_name == "samples") & (uk.run_id == "r2") & (uk.sample_key == k_r2)).any()
    assert ((uk.table_name == "maps") & (uk.sample_key == k_r2)).any()
    assert ((uk.table_name == "faces") & (uk.sample_key == k_r2)).any()
    rel = res["relationships"]
    assert ((rel.table_name == "maps") & (rel.sample_key == "orphan")).any()
    av = res["accepted_values"]
    assert (av.detail == "status = weird").any()
    nn = res["not_null"]
    assert ((nn.sample_key == "bad1") & nn.detail.str.contains("identity")).any()
    rc = res["row_consistency"]
    assert ((rc.sample_key == "bad1") & (rc.table_name == "samples")).any()
    assert ((rc.table_name == "faces") & rc.detail.str.startswith("undetected")).any()


def test_contract_catches_conflicting_site_definitions(populated, tmp_path):
    root = tmp_path / "sites"
    shutil.copytree(populated, root)
    data = root / "data" / "run=r1"
    first = next(d for d in sorted(data.iterdir()) if (d / "sites.parquet").exists())
    _rewrite(first / "sites.parquet", data / "sample=zz" / "sites.parquet", heads=99)
    with connect_read_only(root) as con:
        rc = run_contracts(con, ["row_consistency"])["row_consistency"]
    assert (rc.table_name == "sites").sum() == 3 and rc.detail.str.contains("2 different definitions").all()
