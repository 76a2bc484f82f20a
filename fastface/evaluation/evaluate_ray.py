"""``fastface evaluate --ray``: per-sample metrics computed by a pool of Ray actors.

The driver (the ``fastface evaluate`` process) lists the ok samples of the chosen runs (one
query on a read-only catalog, no image bytes, **no model loaded**), cuts them into batches of
``--batch-size`` samples of one run, and hands the batches to a pool of Ray actors
(:mod:`fastface.sweeps.distributed`). Each actor loads the evaluation models once (one actor per GPU,
``num_gpus=1``; on CPU one per requested CPU), opens the store read-only and with its own
``StoreWriter(worker_id="ray-eval<slot>")``, and for each batch: finds the metric keys each
sample still lacks (the run's existing keys are read once per actor and run), reads the images,
computes, and commits one ``add_metrics`` per sample, exactly like the single-process evaluation
(:func:`fastface.evaluation.runner.evaluate_batch`). The driver receives counts only and
drives one tqdm bar over every sample of the chosen runs.

Fault tolerance: an actor that dies (killed, out of memory) has its in-flight batches sent to
another actor (and is replaced). A batch may therefore be evaluated twice; each sample's commit
is named after the sample and its metric keys (``metrics=eval-<digest>``), so the second commit
is discarded (counted as ``duplicates``) and no metric row is written twice. A batch that was
running alone on ``max_attempts`` actors that died is reported as not computed; like every other
missing value it is computed by the next run. An evaluation interrupted as a whole resumes: the
next run computes exactly the missing keys.

As with ``fastface capture --ray``, the store must be the same, writable path on every node, and
every node must run the same fastface code; an actor checks both before it loads any model.
Values equal the single-process evaluation's for the same device and thread count (each actor
uses ``--ray-cpus-per-actor`` torch threads on CPU).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Sequence

from fastface.evaluation.evaluate import EvalConfig, EvalSummary, EvaluationError, Evaluator, SampleWork
from fastface.evaluation.runner import chosen_runs, evaluate_batch

#: the packages whose sources the driver and the actors must share
CODE = ("fastface", "fastface.evaluation", "store")


class EvalWorker:
    """The per-actor state of a distributed evaluation (also usable in-process, e.g. in tests)."""

    def __init__(self, cfg: EvalConfig, store_path: str, worker_id: str, threads: int | None = None,
                 marker: str | None = None, code: str | None = None):
        from fastface.sweeps.ray_setup import check_node, quiet_progress_bars

        check_node(store_path, worker_id, marker=marker, code=code, packages=CODE)
        quiet_progress_bars()
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        from store.db import connect_read_only
        from store.writer import StoreWriter

        self.worker_id = worker_id
        self.ev = Evaluator(cfg)
        self.con = connect_read_only(store_path)
        self.writer = StoreWriter(store_path, worker_id=worker_id)
        self._existing: dict[str, set] = {}  # run_id -> {(sample_key, name, model)} when first seen

    def _have(self, run_id: str) -> set:
        if run_id not in self._existing:
            from store.queries import run_query

            keys = run_query(self.con, "report_metric_keys", runs=run_id)
            self._existing[run_id] = set(zip(keys["sample_key"], keys["name"], keys["model"]))
        return self._existing[run_id]

    def __call__(self, batch: list[dict]) -> dict:
        work = []
        for row in batch:
            have = self._have(row["run_id"])
            missing = {(n, m) for n, m in self.ev.wanted(row) if (row["sample_key"], n, m) not in have}
            if missing:
                work.append(SampleWork(row, missing))
        tally = EvalSummary(runs=[])
        evaluate_batch(self.con, self.ev, self.writer, work, tally, idempotent=True)
        return {"samples": len(batch), "complete": len(batch) - len(work), "evaluated": tally.n_evaluated,
                "rows": tally.n_rows, "per_metric": dict(tally.per_metric), "problems": dict(tally.problems),
                "duplicates": tally.duplicates, "notes": list(self.ev.notes), "worker_id": self.worker_id,
                "pid": os.getpid()}

    def close(self) -> None:
        self.writer.close()
        self.con.close()


def _setup(cfg: EvalConfig, store_path: str, marker: str, code: str, info) -> EvalWorker:
    threads = max(1, int(info.num_cpus)) if info.num_cpus else None
    return EvalWorker(cfg, store_path, worker_id=f"ray-eval{info.slot}" + (f"r{info.incarnation}" if info.incarnation
                                                                           else ""),
                      threads=threads, marker=marker, code=code)


def batches_of(rows: Sequence[dict], size: int) -> list[list[dict]]:
    """Consecutive batches of at most ``size`` rows, never mixing runs (rows sorted by run)."""
    out: list[list[dict]] = []
    for row in rows:
        if out and len(out[-1]) < size and out[-1][0]["run_id"] == row["run_id"]:
            out[-1].append(row)
        else:
            out.append([row])
    return out


def evaluate_store_ray(store_path, cfg: EvalConfig, *, runs: Sequence[str] | None = None, progress: bool = True,
                       address: str | None = None, actors: int | None = None, gpus_per_actor: float | None = None,
                       cpus_per_actor: float = 1, max_attempts: int = 3, max_restarts: int = 2,
                       hook=None) -> EvalSummary:
    """:func:`fastface.evaluation.runner.evaluate_store` on a Ray cluster (module docstring).

    ``address``, ``actors``, ``gpus_per_actor``, ``cpus_per_actor``: as for ``fastface capture
    --ray`` (:func:`fastface.sweeps.sweep_ray.run_sweep_ray`). ``hook(pool, stats)`` is called after
    each batch (tests)."""
    from tqdm import tqdm

    from fastface.sweeps.distributed import ActorPool, PoolError, default_pool_options, import_ray, ray_session
    from fastface.sweeps.ray_setup import source_fingerprint
    from store.db import connect_read_only
    from store.layout import Layout
    from store.queries import run_query

    import_ray()  # not installed: say so before anything else
    t0 = time.perf_counter()
    store_path = os.path.abspath(os.fspath(store_path))
    if not Path(store_path).is_dir():
        raise EvaluationError(f"store {store_path}: no such folder")
    con = connect_read_only(store_path)
    try:
        chosen = chosen_runs(con, runs)
        rows = run_query(con, "report_eval_samples", runs=",".join(chosen)).to_dict("records")
    finally:
        con.close()
    summary = EvalSummary(runs=chosen, n_samples=len(rows))
    summary.ray = {"actors": 0, "actor_deaths": 0, "resubmitted": 0}
    if not rows:
        summary.seconds = time.perf_counter() - t0
        return summary
    work = batches_of(rows, cfg.batch_size)
    notes: dict[str, None] = {}

    def on_result(batch, res: dict) -> None:
        bar.update(len(batch))
        summary.n_complete += res["complete"]
        summary.n_evaluated += res["evaluated"]
        summary.n_rows += res["rows"]
        summary.per_metric.update(res["per_metric"])
        summary.problems.update(res["problems"])
        summary.duplicates += res["duplicates"]
        notes.update(dict.fromkeys(res["notes"]))

    def on_give_up(batch, error: BaseException) -> None:
        first = (str(error).strip().splitlines() or [""])[0]
        summary.problems[f"the Ray workers that evaluated this batch died ({type(error).__name__}: {first})"[:300]] \
            += len(batch)
        bar.update(len(batch))

    layout = Layout(store_path)
    layout.locks.mkdir(parents=True, exist_ok=True)
    marker = layout.locks / f"ray-eval-{uuid.uuid4().hex}.driver"
    marker.write_text(f"{socket.gethostname()} {os.getpid()}\n")
    bar = tqdm(total=len(rows), unit="sample", desc="evaluate (ray)", dynamic_ncols=True, disable=not progress)

    try:
        with ray_session(address) as ray:
            options = default_pool_options(ray, actors, gpus_per_actor, cpus_per_actor,
                                           max_attempts=max_attempts, max_restarts=max_restarts)
            options = dataclasses.replace(options, actors=min(options.actors, len(work)))
            summary.ray["actors"] = options.actors
            print(f"ray: {options.actors} actor(s) x ({options.num_cpus:g} CPU, {options.num_gpus:g} GPU), "
                  f"{len(rows)} sample(s) in {len(work)} batch(es)", file=sys.stderr)
            setup = functools.partial(_setup, cfg, store_path, str(marker), source_fingerprint(CODE))
            stats = ActorPool(setup, options).run(work, on_result=on_result, on_give_up=on_give_up, hook=hook)
            summary.ray.update(actor_deaths=stats.actor_deaths, resubmitted=stats.resubmitted)
    except PoolError as e:
        raise PoolError(f"{e}; the metrics committed so far are kept: run the same command again to resume") from e
    finally:
        bar.close()
        marker.unlink(missing_ok=True)
    summary.notes = list(notes)
    summary.seconds = time.perf_counter() - t0
    return summary
