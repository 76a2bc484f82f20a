"""A paper-scale synthetic store, built fast: SDXL's 70 decoupled cross-attention sites x 4 steps x
4 ID tokens x pre/post = 2,240 head-mean maps of 32x32 float16 per sample.

Writing 6,480 such samples through ``StoreWriter.write_sample`` and compacting them takes ~1 s
per sample (about two hours on the 2-core machine).  This module writes the same on-disk layout
directly as compacted segments (``data/run=<id>/segment=<uuid>/`` with samples, maps, faces,
metrics, sites, manifest, map_stats and face_mass files, ``compacted_at`` in the past), ~0.2 s per
sample when the machine is free:
  * samples, faces, metrics, sites and manifest go through the store's typed in-memory tables and
    ``store.schema.COPY_SQL`` (Parquet v2, zstd), like the writer;
  * maps: an Arrow table cast to ``raw.maps``' exact column types, written by pyarrow (Parquet v2
    pages, zstd, the row-group size compaction uses: ``store.segment.SEGMENT_TABLES``), rows
    sorted by sample key as compaction merges ``sample=<key>`` folders in name order;
  * map_stats and face_mass: ``store.summaries.summarise_maps`` (the writer's code) per pool entry,
    then compaction's own merge rules (``SEGMENT_TABLES[...].copy_sql()``).
Map values come from a pool of ``POOL`` distinct sample map sets (summaries from ``store.encode``),
and each sample keeps its pool entry's generated face (1 in POOL not detected), so the per-sample
summary rows are computed once per pool entry; samples differ in key, identity, prompt, seed and
metric.
"""
from __future__ import annotations

import datetime as dt
import io
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SDXL_SITES = [  # SDXL base's 70 decoupled cross-attention sites (transformer_layers_per_block (1, 2, 10))
    *(f"down_blocks.1.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(2) for l in range(2)),
    *(f"down_blocks.2.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(2) for l in range(10)),
    *(f"mid_block.attentions.0.transformer_blocks.{l}.attn2" for l in range(10)),
    *(f"up_blocks.0.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(3) for l in range(10)),
    *(f"up_blocks.1.attentions.{a}.transformer_blocks.{l}.attn2" for a in range(3) for l in range(2)),
]
SIDE = 32          # maps stored at 32x32 (down_blocks.1 / up_blocks.1 are 64x64 latent grids, downsampled)
IMAGE = 1024       # generated image side (face boxes are in these pixels)
POOL = 8           # distinct map sets
SEGMENT = 450      # samples per segment (~2 GiB: store.segment.CompactLimits.max_segment_bytes)


def synthetic_maps(rng, sites=SDXL_SITES, grid_of=lambda site: SIDE) -> list:
    """Head-mean maps of one sample: per site and step a softmax over 4 ID tokens (``pre``) and a
    scale-power transform of it (``post``), float16, 4 steps -> 32 maps per site."""
    from store.records import MapRecord

    maps = []
    for s in sites:
        g = grid_of(s)
        for step in range(4):
            logits = rng.randn(g * g, 4) * 2
            probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            for token in range(4):
                m = probs[:, token].reshape(g, g)
                for stage, arr in (("pre", m), ("post", np.minimum(1.5 * m ** 1.3, 10))):
                    maps.append(MapRecord.from_map(arr, site=s, step=step, branch="text_id", token=token,
                                                   stage=stage, encoding="f16", timestep=999 - 250 * step))
    return maps


def _map_set(rng) -> pa.Table:
    """The 2,240 maps of one sample (no run/sample columns), summaries from store.encode."""
    from store.writer import _map_table

    return _map_table(synthetic_maps(rng), {})


def _png(rng) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((rng.rand(64, 64, 3) * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


class SegmentBuilder:
    def __init__(self, store: Path, seed: int = 0):
        from store.db import open_store
        from store.schema import load_migrations, schema_version, typed_memory_connection
        from store.summaries import typed_schema

        self.layout = open_store(store).layout
        self.version = schema_version(load_migrations())
        self.con = typed_memory_connection()
        self.maps_schema = typed_schema(self.con, "maps")
        rng = np.random.RandomState(seed)
        self.pool = [_map_set(rng) for _ in range(POOL)]
        self.pngs = [_png(rng) for _ in range(16)]
        self.rng = rng
        self.summaries: dict = {}

    def _face(self, p: int) -> dict:
        """The generated face of pool entry p (samples reuse their pool entry's face, so their
        summary rows are the pool entry's, computed once)."""
        from store.records import FaceRecord

        x, y = 300 + (p * 37) % 200, 250 + (p * 53) % 200
        if p == 0:  # one in POOL faces is not detected (counts toward FFC)
            return FaceRecord(role="generated", detected=False, backend="dlib").row()
        return FaceRecord(role="generated", detected=True, backend="dlib", bbox=(x, y, x + 420, y + 520),
                          kps=[x + 120, y + 200, x + 300, y + 200, x + 210, y + 300, x + 140, y + 400,
                               x + 280, y + 400], area_ratio=0.2, similarity=0.3 + 0.05 * p).row()

    def _summaries(self, p: int) -> tuple[pa.Table, pa.Table]:
        """map_stats and face_mass rows of pool entry p (store.summaries.summarise_maps), keys blank."""
        from store.summaries import generated_faces, summarise_maps

        if p not in self.summaries:
            t = self._keyed(p, "", "")
            sample = {"run_id": "", "sample_key": "", "status": "ok", "width": IMAGE, "height": IMAGE}
            geometry = generated_faces([sample], [self._face(p) | {"run_id": "", "sample_key": ""}])
            self.summaries[p] = summarise_maps(t, geometry, self.version)
        return self.summaries[p]

    def _keyed(self, p: int, run_id: str, key: str) -> pa.Table:
        t = self.pool[p]
        n = t.num_rows
        t = t.append_column("run_id", pa.array([run_id] * n)).append_column(
            "sample_key", pa.array([key] * n)).append_column("schema_version", pa.array([self.version] * n, pa.int32()))
        return t.select(self.maps_schema.names).cast(self.maps_schema)

    def _rows(self, run_id: str, indices: list[int]) -> tuple[list, list, list]:
        from store.records import MetricRecord, SampleRecord, sample_key

        samples, faces, metrics = [], [], []
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        for i in indices:
            key = sample_key(f"id{i % 54}", f"prompt {i // 54}", 50 + i)
            base = {"run_id": run_id, "sample_key": key, "schema_version": self.version}
            samples.append(SampleRecord(sample_key=key, identity=f"id{i % 54}", prompt=f"prompt {i // 54}",
                                        category="realistic" if i % 2 else "stylistic", seed=50 + i,
                                        image_png=self.pngs[i % 16], width=IMAGE, height=IMAGE,
                                        sample_index=i).row() | base)
            faces.append(self._face(i % POOL) | base)
            if faces[-1]["detected"]:
                metrics.append(MetricRecord("id_sim", float(self.rng.uniform(0.3, 0.9)), "dlib").row()
                               | base | {"created_at": now})
        return samples, faces, metrics

    @staticmethod
    def _rekey(t: pa.Table, run_id: str, key: str) -> pa.Table:
        n = t.num_rows
        t = t.set_column(t.schema.get_field_index("run_id"), "run_id", pa.array([run_id] * n))
        return t.set_column(t.schema.get_field_index("sample_key"), "sample_key", pa.array([key] * n))

    def segment(self, run_id: str, indices: list[int]) -> Path:
        """Write one compacted segment of the given sample numbers; returns its directory."""
        from store.schema import INSERT_SQL, write_table
        from store.layout import publish
        from store.records import SiteRecord
        from store.segment import SEGMENT_TABLES
        from store.summaries import typed_schema

        samples, faces, metrics = self._rows(run_id, indices)
        order = np.argsort([s["sample_key"] for s in samples])  # compaction merges sample=<key> dirs in name order
        samples = [samples[i] for i in order]
        pool_index = [indices[i] % POOL for i in order]
        tmp = self.layout.new_tmp()
        tmp.mkdir(parents=True)
        sites = [SiteRecord.from_key(s, heads=10, height=SIDE, width=SIDE).row()
                 | {"run_id": run_id, "schema_version": self.version} for s in SDXL_SITES]
        segment_id = uuid.uuid4().hex
        manifest = [{"run_id": run_id, "segment_id": segment_id, "source_dir": f"sample={s['sample_key']}",
                     "kind": "sample", "sample_key": s["sample_key"],
                     "compacted_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=5),
                     "schema_version": self.version} for s in samples]
        kinds = {t.name: t for t in SEGMENT_TABLES}
        parts = {"map_stats": [self._summaries(p)[0] for p in pool_index],
                 "face_mass": [self._summaries(p)[1] for p in pool_index]}
        for name, tables in parts.items():  # the summary rows, through compaction's merge rules
            schema = typed_schema(self.con, name)
            rows = pa.concat_tables([self._rekey(t, run_id, s["sample_key"]) for t, s in zip(tables, samples)
                                     if t.num_rows])
            if rows.num_rows:
                pq.write_table(rows.select(schema.names).cast(schema), tmp / f"{name}-part.parquet")
                self.con.execute(kinds[name].copy_sql(), {"files": [str(tmp / f"{name}-part.parquet")],
                                                          "path": str(tmp / f"{name}.parquet")}).fetchall()
                (tmp / f"{name}-part.parquet").unlink()
        self.con.begin()
        try:
            for table, rows in (("samples", samples), ("faces", faces), ("metrics", metrics), ("sites", sites),
                                ("manifest", manifest)):
                if rows:
                    self.con.register("incoming", pa.Table.from_pylist(rows))
                    self.con.execute(INSERT_SQL[table]).fetchall()
                    self.con.unregister("incoming")
                    write_table(self.con, table, tmp / f"{table}.parquet")
        finally:
            self.con.rollback()
        maps = pa.concat_tables([self._keyed(p, run_id, s["sample_key"]) for s, p in zip(samples, pool_index)])
        # pyarrow's writer (~1.5x faster than DuckDB's COPY here): Parquet v2 pages, zstd, and the row
        # groups that compaction writes (store/segment.py: SEGMENT_TABLES, maps)
        pq.write_table(maps, tmp / "maps.parquet", compression="zstd", data_page_version="2.0",
                       row_group_size=int(kinds["maps"].options.split()[-1]))
        publish(tmp, self.layout.run_data(run_id) / f"segment={segment_id}", durable=False)
        return self.layout.run_data(run_id) / f"segment={segment_id}"


def build_sdxl(store: Path, n: int, runs: int = 4, *, log=print) -> float:
    """n samples in `runs` runs (4 presets, like bench_workbench.build), as compacted segments of
    SEGMENT samples.  Returns the seconds taken."""
    from store.records import RunRecord
    from store.writer import StoreWriter

    t0 = time.perf_counter()
    w = StoreWriter(store, durable=False)
    b = SegmentBuilder(store)
    log(f"map pool ready in {time.perf_counter() - t0:.0f} s")
    presets = ["baseline", "am1", "am2", "ff-am2"]
    per_run = n // runs
    for r in range(runs):
        run_id = f"bench-{presets[r % 4]}"
        w.begin_run(RunRecord(run_id=run_id, config={"preset": presets[r % 4], "sites": "sdxl"},
                              preset=presets[r % 4], checkpoint="hyper", ip_scale=0.8, lora_scale=1.0, seed=50))
        for start in range(0, per_run, SEGMENT):
            b.segment(run_id, list(range(start, min(start + SEGMENT, per_run))))
            log(f"{run_id}: {min(start + SEGMENT, per_run)}/{per_run} samples, {time.perf_counter() - t0:.0f} s")
        w.set_status(run_id, "completed", n_done=per_run, n_total=per_run)
    w.close()
    return time.perf_counter() - t0
