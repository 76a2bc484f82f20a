"""The evaluation loop over a store: which samples lack which metric keys (``plan``), their
images read and scored in batches (``evaluate_batch``), one ``StoreWriter.add_metrics`` commit
per sample, and ``evaluate_store`` (``fastface evaluate``), incremental and resumable.

The metrics, their model strings and the models themselves are :mod:`fastface.evaluation.evaluate`.
"""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fastface.evaluation.evaluate import EvalConfig, EvalSummary, EvaluationError, Evaluator, SampleWork


def decode_png(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def chosen_runs(con, runs: Sequence[str] | None) -> list[str]:
    from store.queries import run_query

    known = run_query(con, "report_runs", runs="")["run_id"].tolist()
    if not runs:
        return known
    unknown = [r for r in runs if r not in known]
    if unknown:
        raise EvaluationError(f"unknown run(s) {unknown} in this store; runs: {known[:20]}")
    return list(dict.fromkeys(runs))


def plan(con, evaluator: Evaluator, runs: list[str]) -> tuple[list[SampleWork], int]:
    """(work items, number of ok samples) for the runs."""
    from store.queries import run_query

    arg = ",".join(runs)
    samples = run_query(con, "report_eval_samples", runs=arg)
    have = run_query(con, "report_metric_keys", runs=arg)
    existing = set(zip(have["run_id"], have["sample_key"], have["name"], have["model"]))
    work = []
    for row in samples.to_dict("records"):
        missing = {(n, m) for n, m in evaluator.wanted(row)
                   if (row["run_id"], row["sample_key"], n, m) not in existing}
        if missing:
            work.append(SampleWork(row, missing))
    return work, len(samples)


def evaluate_batch(con, ev: Evaluator, writer, batch: list[SampleWork], summary: EvalSummary, *,
                   idempotent: bool = False) -> None:
    """Read the images of ``batch``, compute its missing metrics, commit them (one
    ``add_metrics`` per sample) and count what was done in ``summary``.

    ``idempotent``: each sample's commit gets a name derived from the sample and its metric
    keys, so evaluating the same batch twice (a Ray actor died after committing it and the batch
    was retried elsewhere) commits it once; the second commit counts in ``summary.duplicates``."""
    from store.queries import run_query

    ready = []
    for w in batch:
        row = w.row
        img = run_query(con, "sample_image", run_id=row["run_id"], sample_key=row["sample_key"])
        try:
            w.image = decode_png(img["image_png"].iloc[0])
        except Exception as e:  # noqa: BLE001  a damaged image: report, go on
            summary.problems[f"image of {row['run_id']}/{row['sample_key']} unreadable: "
                             f"{type(e).__name__}: {e}"] += 1
            continue
        ready.append(w)
    records = ev.compute(ready, summary.problems)
    for w, recs in zip(ready, records):
        w.image = None
        if not recs:
            continue
        commit_id = metrics_commit_id(w.row, recs) if idempotent else None
        if writer.add_metrics(w.row["run_id"], w.row["sample_key"], recs, commit_id=commit_id) is False:
            summary.duplicates += 1
            continue
        summary.n_evaluated += 1
        summary.n_rows += len(recs)
        for r in recs:
            summary.per_metric[f"{r.name} {r.model}"] += 1


def metrics_commit_id(row: dict, recs) -> str:
    """A name for one sample's metric commit that depends only on the sample and its keys."""
    import hashlib

    keys = sorted(f"{r.name}\0{r.model}" for r in recs)
    text = "\n".join([row["run_id"], row["sample_key"], *keys])
    return "eval-" + hashlib.sha1(text.encode()).hexdigest()[:24]


def evaluate_store(store_path, cfg: EvalConfig, *, runs: Sequence[str] | None = None, progress: bool = True,
                   dry_run: bool = False, echo: Callable[[str], None] = print,
                   evaluator: Evaluator | None = None,
                   on_batch: Callable[[int, int], None] | None = None) -> EvalSummary:
    """Evaluate (or resume evaluating) the runs of a store; returns what was done.
    ``on_batch(samples done, samples to do)`` is called after each batch (benchmarks)."""
    from tqdm import tqdm

    from store.db import connect_read_only
    from store.writer import StoreWriter

    t0 = time.perf_counter()
    if not Path(store_path).is_dir():
        raise EvaluationError(f"store {store_path}: no such folder")
    con = connect_read_only(store_path)
    try:
        chosen = chosen_runs(con, runs)
        ev = evaluator or Evaluator(cfg)
        work, n_samples = plan(con, ev, chosen)
        summary = EvalSummary(runs=chosen, n_samples=n_samples, n_complete=n_samples - len(work), notes=list(ev.notes))
        for w in work:
            for n, m in w.missing:
                summary.planned[f"{n} {m}"] += 1
        if dry_run or not work:
            summary.seconds = time.perf_counter() - t0
            return summary
        writer = StoreWriter(store_path, worker_id="evaluate")
        bar = tqdm(total=len(work), unit="sample", desc="evaluate", dynamic_ncols=True, disable=not progress)
        try:
            for start in range(0, len(work), cfg.batch_size):
                batch = work[start:start + cfg.batch_size]
                evaluate_batch(con, ev, writer, batch, summary)
                bar.update(len(batch))
                if on_batch is not None:
                    on_batch(start + len(batch), len(work))
        finally:
            bar.close()
            writer.close()
        summary.seconds = time.perf_counter() - t0
        return summary
    finally:
        con.close()
