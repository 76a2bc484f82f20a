"""``fastface capture --ray``: a capture sweep whose samples run on a Ray cluster.

The driver (the ``fastface capture`` process) plans the sweep exactly like
:func:`fastface.sweeps.sweep.run_sweep` (same runs, run ids, sample keys and per-sample seeds),
creates the runs in the store, skips the samples already committed (resume), and hands the
rest to a pool of Ray actors (:mod:`fastface.sweeps.distributed`). Each actor loads the pipeline once
per checkpoint, keeps one probe open, and **writes its own samples** with its own
``StoreWriter(worker_id="ray<slot>")``; the driver receives a few bytes per sample (key, status,
whether it was written), drives the tqdm bar over the whole sweep, records run statuses and
compacts each run once all of its samples are in.

Why actor-side writes: a sample's maps can be megabytes ("everything" capture), so routing
them through the driver would serialise the whole sweep on one process and copy every map
through Ray's object store; the store is built for many concurrent writers (atomic per-sample
rename, first commit wins). The price: **the store path must be the same, writable path on
every node** (a shared filesystem mounted at the same place). Every actor checks this before it
loads anything: the driver puts a marker file in ``STORE/locks/`` for the duration of the sweep,
and an actor that does not see it (no such path, or a node-local folder of the same name) stops
the sweep with an error. So does an actor whose fastface/probes/store sources differ from the
driver's (another version installed on its node).

Fault tolerance: an actor that dies has its in-flight samples resubmitted to the other actors
and is replaced (:mod:`fastface.sweeps.distributed`). A sample may therefore be generated twice; the
second ``write_sample`` finds the sample directory (or loses the rename race) and returns False,
so nothing is written twice. A sample that was running alone on ``max_attempts`` actors that died
(it kills every worker that tries it) is committed by the driver as a failed sample, like any
other failure of a sample; the sweep goes on.
A sweep interrupted as a whole (Ctrl-C, driver killed) resumes from the store when the same
command is run again.

Results are the same as the single-process sweep's: seeds are per sample
(``seed + pair index``), and a sample's image and maps do not depend on which actor ran it or
in which order. On CPU, PyTorch's results depend on the number of intra-op threads, so each
actor sets ``torch.set_num_threads(cpus_per_actor)``; a plain sweep run with the same thread
count (``OMP_NUM_THREADS``) gives bit-identical images. On GPUs, compare on the same GPU model.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import socket
import sys
import uuid
from collections import Counter
from typing import Callable

from fastface.sweeps.dataset import Dataset
from fastface.sweeps.sweep import (RunPlan, SampleRunner, SweepSpec, begin_runs, error_kind, finish_run, pipe_site_records,
                            plan_runs)


class CaptureWorker:
    """The per-actor state of a distributed capture (also usable in-process, e.g. in tests):
    one pipeline (of the checkpoint of the current task), one open probe, one StoreWriter."""

    def __init__(self, spec: SweepSpec, store_path: str, load: Callable[[str], object], worker_id: str,
                 threads: int | None = None, marker: str | None = None, code: str | None = None):
        from fastface.sweeps.ray_setup import check_node, quiet_progress_bars
        from store.writer import StoreWriter

        check_node(store_path, worker_id, marker=marker, code=code)
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        quiet_progress_bars()
        self.spec, self.load, self.worker_id = spec, load, worker_id
        self.writer = StoreWriter(store_path, worker_id=worker_id)
        self.checkpoint = None
        self.pipe = self.runner = self.probe = None
        self._capture = None
        self._sites: list | None = None

    def _switch(self, checkpoint: str) -> None:
        from probes.capture import capture

        self._close_capture()
        self.pipe = self.runner = None
        self.pipe = self.load(checkpoint)
        self.checkpoint = checkpoint
        self.runner = SampleRunner(self.pipe, self.spec)
        self._capture = capture(self.pipe, self.spec.capture_spec())
        self.probe = self._capture.__enter__()
        self._sites = None

    def _close_capture(self) -> None:
        if self._capture is not None:
            cm, self._capture, self.probe = self._capture, None, None
            cm.__exit__(None, None, None)

    def __call__(self, task: tuple[RunPlan, tuple]) -> dict:
        plan, item = task
        if plan.checkpoint != self.checkpoint:
            self._switch(plan.checkpoint)
        sample, maps, faces, metrics = self.runner.run_sample(self.probe, plan, item)
        if self._sites is None and maps:
            self._sites = pipe_site_records(self.pipe)
        written = self.writer.write_sample(plan.run_id, sample, maps=maps, faces=faces, metrics=metrics,
                                           sites=self._sites or [], balance=self.probe.pop_balance(sample.sample_key))
        return {"run_id": plan.run_id, "sample_key": sample.sample_key, "status": sample.status,
                "error": sample.error,
                "written": written, "worker_id": self.worker_id, "pid": os.getpid()}

    def close(self) -> None:
        self._close_capture()
        self.writer.close()


def _setup(spec: SweepSpec, store_path: str, load: Callable[[str], object], marker: str, code: str,
           info) -> CaptureWorker:
    threads = max(1, int(info.num_cpus)) if info.num_cpus else None
    return CaptureWorker(spec, store_path, load, worker_id=info.worker_id, threads=threads, marker=marker, code=code)


def _failed_record(item, error: BaseException):
    from store.records import SampleRecord, utcnow

    index, ident, prompt, seed, key = item
    now = utcnow()
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return SampleRecord(sample_key=key, identity=ident.name, prompt=prompt.text, category=prompt.category, seed=seed,
                        id_image_path=ident.path, sample_index=index, started_at=now, finished_at=now,
                        status="failed",
                        error=f"the Ray workers that ran this sample died ({type(error).__name__}: {first})"[:1000])


def _interrupted(writer, left: dict, by_id: dict, error: BaseException) -> None:
    for run_id, n in left.items():
        if n > 0:
            writer.set_status(run_id, "interrupted", message=f"{type(error).__name__}: {error}"[:500],
                              n_total=len(by_id[run_id].samples))


def run_sweep_ray(
    spec: SweepSpec,
    dataset: Dataset,
    store_path: str,
    *,
    load: Callable[[str], object],
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float = 1,
    progress: Callable[[int, int], None] | None = None,
    compact: bool = True,
    max_attempts: int = 3,
    max_restarts: int = 2,
    hook=None,
) -> dict:
    """:func:`fastface.sweeps.sweep.run_sweep` on a Ray cluster (see the module docstring); returns the
    same counts plus ``actors``, ``resubmitted``, ``actor_deaths`` and ``duplicates`` (samples
    an actor generated again but did not write, because they were already committed).

    ``load(checkpoint)`` runs inside the actors (it is pickled: a module-level function or a
    closure over picklable values). ``address``: see :func:`fastface.sweeps.distributed.ray_session`.
    ``actors`` default: one per GPU of the cluster, else 1; ``gpus_per_actor`` default: 1 when
    the cluster has GPUs, else 0. ``hook(pool, stats)`` is called after each result (tests)."""
    from tqdm import tqdm

    from fastface.sweeps.distributed import ActorPool, PoolError, default_pool_options, import_ray, ray_session
    from fastface.sweeps.ray_setup import source_fingerprint
    from store.writer import StoreWriter

    import_ray()  # not installed: say so before anything is written
    store_path = os.path.abspath(os.fspath(store_path))
    plans = plan_runs(spec, dataset)
    writer = StoreWriter(store_path, worker_id="ray-driver")
    todo = begin_runs(writer, spec, dataset, plans)
    by_id = {p.run_id: p for p in plans}
    tasks = []  # checkpoint-major, as planned: each actor loads each checkpoint about once
    for plan in plans:
        light = RunPlan(plan.run_id, plan.checkpoint, plan.preset, plan.config)  # no sample list
        tasks += [(light, item) for item in todo[plan.run_id]]
    total = len(tasks)
    counts = {"runs": len(plans), "written": 0, "failed": 0, "skipped": sum(len(p.samples) for p in plans) - total,
              "duplicates": 0, "actors": 0, "resubmitted": 0, "actor_deaths": 0, "errors": Counter()}
    left = {run_id: len(items) for run_id, items in todo.items()}
    failed = {run_id: 0 for run_id in todo}

    def run_done(run_id: str) -> None:
        left[run_id] -= 1
        if left[run_id] == 0:
            finish_run(writer, store_path, by_id[run_id], failed[run_id], compact)

    def on_result(task, result: dict) -> None:
        run_id = result["run_id"]
        if result["written"]:
            counts["written"] += 1
            if result["status"] == "failed":
                counts["failed"] += 1
                counts["errors"][error_kind(result.get("error"))] += 1
                failed[run_id] += 1
        else:
            counts["duplicates"] += 1
        run_done(run_id)

    def on_give_up(task, error: BaseException) -> None:
        plan, item = task
        if writer.write_sample(plan.run_id, _failed_record(item, error)):
            counts["written"] += 1
            counts["failed"] += 1
            counts["errors"][type(error).__name__] += 1
            failed[plan.run_id] += 1
        run_done(plan.run_id)

    for plan in plans:  # nothing left to do: record it (begin_run has just marked the run "running")
        if not todo[plan.run_id]:
            finish_run(writer, store_path, plan, 0, compact)
    if total == 0:
        writer.close()
        return counts
    # a file only this sweep's driver wrote: an actor that cannot see it is not looking at this store
    marker = writer.layout.locks / f"ray-{uuid.uuid4().hex}.driver"
    marker.write_text(f"{socket.gethostname()} {os.getpid()}\n")
    bar = tqdm(total=total, unit="sample", desc="capture (ray)", dynamic_ncols=True)

    def tick(done: int, n: int) -> None:
        bar.update(done - bar.n)
        if progress:
            progress(done, n)

    try:
        with ray_session(address) as ray:
            options = default_pool_options(ray, actors, gpus_per_actor, cpus_per_actor,
                                           max_attempts=max_attempts, max_restarts=max_restarts)
            options = dataclasses.replace(options, actors=min(options.actors, total))
            counts["actors"] = options.actors
            print(f"ray: {options.actors} actor(s) x ({options.num_cpus:g} CPU, {options.num_gpus:g} GPU), "
                  f"{total} sample(s) to capture", file=sys.stderr)
            setup = functools.partial(_setup, spec, store_path, load, str(marker), source_fingerprint())
            pool = ActorPool(setup, options)
            stats = pool.run(tasks, on_result=on_result, on_give_up=on_give_up, progress=tick, hook=hook)
            counts.update(resubmitted=stats.resubmitted, actor_deaths=stats.actor_deaths)
    except PoolError as e:
        _interrupted(writer, left, by_id, e)
        raise PoolError(f"{e}; the samples committed so far are kept: run the same command again to resume") from e
    except BaseException as e:
        _interrupted(writer, left, by_id, e)
        raise
    finally:
        bar.close()
        writer.close()
        marker.unlink(missing_ok=True)
    return counts

