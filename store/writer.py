"""StoreWriter: commits runs, samples, status events and late metrics as Parquet.

Every commit is built under STORE/tmp/<pid>-<uuid>-<host> by COPYing the typed
tables of an in-memory DuckDB connection (migrations applied, so every row is
type- and constraint-checked) and published with one rename.  Any number of
writer processes may write the same store (and the same run) concurrently; the
first commit of a sample wins, later ones are discarded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from typing import Iterable, Sequence

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .compact import manifest_values, merged_dir_names
from .db import open_store
from .schema import INSERT_SQL, load_migrations, schema_version, typed_memory_connection, write_table
from .layout import HOST, Layout, StoreError, key_of, publish, sweep_tmp, validate_id
from .balance import balance_rows
from .records import (STATUSES, BalanceRecord, FaceRecord, MapRecord, MetricRecord, RunRecord, SampleRecord,
                      SiteRecord, utcnow)
from .summaries import generated_faces, summarise_maps


class RunConfigMismatch(StoreError):
    """begin_run was called with a run_id that exists with a different configuration."""


def _map_table(maps: Sequence[MapRecord], base: dict) -> pa.Table:
    """Arrow table of maps (list columns built from one concatenated buffer, no Python loops
    over values)."""
    cols = {k: [getattr(m, k) for m in maps] for k in MapRecord.SCALARS}
    lengths, chunks, valid = [], [], []
    for m in maps:
        d = None if m.data is None else np.asarray(m.data).reshape(-1)
        if d is not None and d.dtype != np.uint16:
            if d.dtype.kind not in "ui" or (d.size and (d.min() < 0 or d.max() > 65535)):
                raise StoreError(f"map data of {m.site} step {m.step} must be uint16 codes")
            d = d.astype(np.uint16)
        valid.append(d is not None)
        lengths.append(0 if d is None else d.size)
        if d is not None:
            chunks.append(d)
    offsets = np.zeros(len(maps) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array(np.concatenate(chunks) if chunks else np.zeros(0, np.uint16), pa.uint16())
    mask = pa.array([not v for v in valid])
    data = pa.ListArray.from_arrays(pa.array(offsets), values, mask=mask)
    hists = [None if m.hist is None else np.asarray(m.hist, dtype=np.int64).tolist() for m in maps]
    table = {k: [v] * len(maps) for k, v in base.items()}
    table.update(cols)
    table["hist"] = pa.array(hists, pa.list_(pa.int32()))
    table["data"] = data
    return pa.table(table)


def compacted_sample_keys(layout: Layout, run_id: str, cache: dict | None = None) -> set[str]:
    """Sample keys listed in the run's segment manifests (segments are immutable, so a
    cache {segment path: keys} may be passed to read each manifest once)."""
    return manifest_values(layout, run_id, "sample_key", cache)


def done_sample_keys(path: Layout | str | os.PathLike, run_id: str, cache: dict | None = None) -> set[str]:
    """Keys of the committed samples of a run (ok or failed; compacted ones included).
    Reads directory names and manifests only: cheap, no catalog needed."""
    layout = path if isinstance(path, Layout) else Layout(path)
    keys = {key_of(d.name) for d in layout.sample_dirs(run_id) if (d / "samples.parquet").exists()}
    return keys | compacted_sample_keys(layout, run_id, cache)


class StoreWriter:
    """Writes one store; safe to use from several processes at once (one writer per process)."""

    def __init__(self, path, worker_id: str | None = None, *, durable: bool = True):
        self.store = open_store(path)
        self.layout: Layout = self.store.layout
        self.worker_id = worker_id
        self.durable = durable  # fsync files before publishing (power-loss safety)
        self.migrations = load_migrations()
        self.schema_version = schema_version(self.migrations)
        self.swept = sweep_tmp(self.layout)  # leftovers of crashed writers
        from .compact import remove_merged  # merged directories past the retention period
        for run_id in self.layout.run_ids():
            remove_merged(self.layout, run_id)
        self._con = typed_memory_connection(self.migrations)
        self._sites_written: set[tuple[str, str]] = set()
        self._runs_checked: set[str] = set()
        self._manifests: dict = {}  # segment dir -> compacted sample keys (segments are immutable)
        self._merged: dict = {}  # segment dir -> names of the directories it merged
        self._before_publish = None  # test hook: callable(tmp_dir) run just before the rename

    # ------------------------------------------------------------ helpers
    def close(self) -> None:
        self._con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _insert(self, table: str, rows: list[dict] | pa.Table, base: dict | None = None) -> None:
        if isinstance(rows, list):
            if not rows:
                return
            rows = pa.Table.from_pylist([{**(base or {}), **r} for r in rows])
        self._con.register("incoming", rows)
        try:
            self._con.execute(INSERT_SQL[table]).fetchall()
        except duckdb.ConstraintException as e:
            raise StoreError(f"{table}: {e}") from e
        finally:
            with contextlib.suppress(duckdb.Error):  # an aborted transaction drops it anyway
                self._con.unregister("incoming")

    def _copy_out(self, tables: Iterable[str], directory) -> None:
        """COPY each (non-empty) typed table to <directory>/<table>.parquet (zstd)."""
        for t in tables:
            write_table(self._con, t, directory / f"{t}.parquet")

    def _commit(self, build, target) -> bool:
        """Run build(tmp_dir) inside a transaction that is rolled back afterwards (the typed
        tables stay empty), then publish tmp_dir as target."""
        tmp = self.layout.new_tmp()
        tmp.mkdir(parents=True)
        try:
            self._con.begin()
            try:
                build(tmp)
            finally:
                self._con.rollback()
            if self._before_publish is not None:
                self._before_publish(tmp)
            return publish(tmp, target, durable=self.durable)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    # ------------------------------------------------------------ runs
    def _read_run(self, run_id: str) -> dict | None:
        f = self.layout.run_dir(run_id) / "run.parquet"
        if not f.exists():
            return None
        return pq.read_table(f).to_pylist()[0]

    def begin_run(self, run: RunRecord) -> dict:
        """Create the run (idempotent).  Returns the stored run row; a run_id that exists with
        another configuration raises RunConfigMismatch.  Records a 'running' event."""
        validate_id("run_id", run.run_id)
        row = {**run.row(), "schema_version": self.schema_version}
        existing = self._read_run(run.run_id)
        if existing is None:
            def build(tmp):
                self._insert("runs", [row])
                write_table(self._con, "runs", tmp / "run.parquet")
                (tmp / "events").mkdir()
            self._commit(build, self.layout.run_dir(run.run_id))  # False: another process won
            existing = self._read_run(run.run_id)
            if existing is None:
                raise StoreError(f"run {run.run_id} could not be created")
        diff = [f for f in RunRecord.IDENTITY_FIELDS if existing.get(f) != row.get(f)]
        if diff:
            raise RunConfigMismatch(
                f"run {run.run_id!r} exists with a different configuration (fields {diff}); "
                "use a new run_id")
        self._runs_checked.add(run.run_id)
        self.set_status(run.run_id, "running")
        return existing

    def set_status(self, run_id: str, status: str, *, n_done: int | None = None, n_failed: int | None = None,
                   n_total: int | None = None, message: str | None = None) -> None:
        """Append a status event (runs/<run_id>/events/<ts>-<pid>-<uuid>.parquet)."""
        if status not in STATUSES:
            raise StoreError(f"status must be one of {STATUSES}, not {status!r}")
        self._require_run(run_id)
        at = utcnow()
        event = {"event_id": uuid.uuid4().hex, "run_id": run_id, "at": at, "status": status,
                 "n_done": n_done, "n_failed": n_failed, "n_total": n_total, "message": message,
                 "host": HOST, "pid": os.getpid(), "worker_id": self.worker_id,
                 "schema_version": self.schema_version}
        name = f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}-{event['event_id'][:8]}.parquet"
        tmp = self.layout.new_tmp(".parquet")
        self._con.begin()
        try:
            self._insert("run_events", [event])
            write_table(self._con, "run_events", tmp)
        finally:
            self._con.rollback()
        publish(tmp, self.layout.run_dir(run_id) / "events" / name, durable=self.durable)

    def _require_run(self, run_id: str) -> None:
        if run_id in self._runs_checked:
            return
        if not (self.layout.run_dir(run_id) / "run.parquet").exists():
            raise StoreError(f"unknown run {run_id!r}: call begin_run first")
        self._runs_checked.add(run_id)

    # ------------------------------------------------------------ samples
    def compacted_sample_keys(self, run_id: str) -> set[str]:
        return compacted_sample_keys(self.layout, run_id, self._manifests)

    def _merged_dirs(self, run_id: str) -> set[str]:
        """Names of the directories that the run's segments merged (their manifests)."""
        return merged_dir_names(self.layout, run_id, self._merged)

    def done_sample_keys(self, run_id: str) -> set[str]:
        """Keys of the committed samples of a run (ok or failed; compacted ones included)."""
        return done_sample_keys(self.layout, run_id, self._manifests)

    def write_sample(self, run_id: str, sample: SampleRecord, maps: Sequence[MapRecord] = (),
                     faces: Sequence[FaceRecord] = (), metrics: Sequence[MetricRecord] = (),
                     sites: Sequence[SiteRecord] = (), balance: Sequence[BalanceRecord] = ()) -> bool:
        """Commit one sample and its rows atomically.  False when the sample was already
        committed (by anyone, compacted included): nothing is written.  ``balance``: the probe's
        :class:`BalanceRecord` rows (``Probe.pop_balance``); their face-box split is computed here."""
        self._require_run(run_id)
        key = validate_id("sample_key", sample.sample_key)
        target = self.layout.sample_dir(run_id, key)
        if target.exists() or key in self.compacted_sample_keys(run_id):
            return False
        base = {"run_id": run_id, "sample_key": key, "schema_version": self.schema_version}
        srow = sample.row() | {"worker_id": self.worker_id}
        if srow["capture_bytes"] is None:
            srow["capture_bytes"] = int(sum(0 if m.data is None else np.asarray(m.data).nbytes for m in maps))
        new_sites = [s for s in sites if (run_id, s.site) not in self._sites_written]
        now = utcnow()

        def build(tmp):
            self._insert("samples", [srow], base)
            n_face_mass = 0
            if maps:  # the maps and their summary rows (store/summaries.py)
                table = _map_table(maps, base)
                self._insert("maps", table)
                geometry = generated_faces([srow | base], [f.row() | base for f in faces])
                stats, face_mass = summarise_maps(table, geometry, self.schema_version)
                self._insert("map_stats", stats)
                self._insert("face_mass", face_mass)
                n_face_mass = face_mass.num_rows
            if balance:  # the ID-versus-text balance (store/balance.py)
                geometry = generated_faces([srow | base], [f.row() | base for f in faces])
                self._insert("balance", balance_rows(balance, geometry.get((run_id, key)), base))
            self._insert("faces", [f.row() for f in faces], base)
            self._insert("metrics", [m.row() | {"created_at": now} for m in metrics], base)
            self._insert("sites", [s.row() for s in new_sites],
                         {"run_id": run_id, "schema_version": self.schema_version})
            written = {"samples": 1, "maps": len(maps), "map_stats": len(maps), "face_mass": n_face_mass,
                       "faces": len(faces), "metrics": len(metrics), "sites": len(new_sites),
                       "balance": len(balance)}
            self._copy_out([t for t, n in written.items() if n], tmp)

        ok = self._commit(build, target)
        if ok:
            self._sites_written.update((run_id, s.site) for s in new_sites)
        return ok

    def add_metrics(self, run_id: str, sample_key: str, metrics: Sequence[MetricRecord], *,
                    commit_id: str | None = None) -> bool:
        """Metrics computed after the sample was committed (an evaluator).  Written atomically
        to data/run=<id>/metrics=<ts>-<uuid>/metrics.parquet; the metrics view keeps, per
        (run_id, sample_key, name, model), the row with the latest created_at.

        ``commit_id`` (letters, digits, '.', '-', '_'): the directory is metrics=<commit_id>, and a
        second commit with the same id (a retried evaluation) is discarded: returns False.
        Returns True when written."""
        self._require_run(run_id)
        if sample_key not in self.done_sample_keys(run_id):
            raise StoreError(f"sample {sample_key!r} of run {run_id!r} is not committed")
        if not metrics:
            return False
        now = utcnow()
        base = {"run_id": run_id, "sample_key": sample_key, "schema_version": self.schema_version,
                "created_at": now}
        if commit_id is not None:
            validate_id("commit_id", commit_id)
            target = self.layout.run_data(run_id) / f"metrics={commit_id}"
            if target.name in self._merged_dirs(run_id):  # committed, then compacted into a segment
                return False
        else:
            target = self.layout.run_data(run_id) / f"metrics={now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:12]}"

        def build(tmp):
            self._insert("metrics", [m.row() for m in metrics], base)
            self._copy_out(["metrics"], tmp)

        if self._commit(build, target):
            return True
        if commit_id is None:
            raise StoreError(f"metrics directory {target.name} exists")  # uuid collision: impossible
        return False
