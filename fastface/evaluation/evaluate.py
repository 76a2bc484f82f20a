"""``fastface evaluate``: per-sample metrics into the store, incremental and resumable.

For every ok sample of the chosen runs, each requested metric is a key
``(name, model)``; keys already in the store (``report_metric_keys``) are skipped, the rest
are computed and committed with one ``StoreWriter.add_metrics`` per sample (atomic: an
interrupted evaluation loses at most the samples of the batch in flight, and the next run
picks up exactly what is missing).  A second run with the same models writes nothing.

Metric keys (``--metrics``), the rows they write and their model strings:

========== ================================ ============================================
key        metric rows                      model
========== ================================ ============================================
id         id_sim                           face backend (insightface/buffalo_l@..)
ffc        face_detected (0/1)              face backend
face-size  face_size                        face backend
id-dlib    id_sim, face_detected            dlib/face_recognition_resnet_model_v1@..
clip       clip_t                           openai/clip-vit-large-patch14@..
ae         aesthetic                        <predictor>.pth@..+<clip>@..
ir         image_reward                     THUDM/ImageReward@..
fsc        fsc (prompts with 'style; ...')  <clip>@..+<face backend>@..
========== ================================ ============================================

The loop over a store (plan, batches, commits) is :mod:`fastface.evaluation.runner`
(``evaluate_store``); on Ray, :mod:`fastface.evaluation.evaluate_ray`.

``id-dlib`` is the independent second opinion on identity (buffalo_l also makes the
conditioning embedding); it is skipped when the face backend is dlib itself.  Null values
are written where a metric is undefined (no face found: id_sim, face_size, fsc), so that they
are not recomputed; a value that cannot be computed for a reason that may go away (the ID
photo is missing) is not written and is reported, every run, until it can be.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from fastface.evaluation.models import ModelUnavailable

METRICS: dict[str, tuple[str, ...]] = {
    "id": ("id_sim",), "ffc": ("face_detected",), "face-size": ("face_size",),
    "id-dlib": ("id_sim", "face_detected"), "clip": ("clip_t",), "ae": ("aesthetic",),
    "ir": ("image_reward",), "fsc": ("fsc",),
}
ALL_METRICS = tuple(METRICS)
FACE_KEYS = ("id", "ffc", "face-size", "fsc")


class EvaluationError(ValueError):
    """The evaluation cannot start (unknown run or metric, missing models); the message says why."""


@dataclass
class EvalConfig:
    metrics: tuple[str, ...] = ALL_METRICS
    face_backend: str | None = None          # default: insightface (dlib with tiny)
    device: str | None = None
    weights_root: str | None = None
    cache_dir: str | None = None
    insightface_root: str | None = None
    tiny: bool = False                       # the tiny evaluation world (random weights)
    id_photos: str | None = None             # folder of ID photos (by identity = file stem)
    batch_size: int = 8
    clip_model: str | None = None
    aesthetic_model: str | None = None
    image_reward_model: str | None = None

    def __post_init__(self):
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise EvaluationError(f"unknown metric(s) {unknown}; choose from {', '.join(ALL_METRICS)}")
        if self.batch_size < 1:
            raise EvaluationError("--batch-size must be >= 1")


def parse_metrics(text: str | Sequence[str] | None) -> tuple[str, ...]:
    if text is None:
        return ALL_METRICS
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(m.strip() for m in items if m.strip()))
    unknown = [m for m in out if m not in METRICS]
    if unknown or not out:
        raise EvaluationError(f"--metrics {text!r}: unknown {unknown}; choose from {', '.join(ALL_METRICS)}")
    return out


@dataclass
class SampleWork:
    row: dict                      # report_eval_samples row
    missing: set                   # {(name, model)}
    image: np.ndarray | None = None


@dataclass
class EvalSummary:
    runs: list[str]
    n_samples: int = 0             # ok samples of the runs
    n_complete: int = 0            # samples with nothing to compute
    n_evaluated: int = 0           # samples that got new rows
    n_rows: int = 0                # metric rows written
    per_metric: Counter = field(default_factory=Counter)   # "name model" -> rows written
    problems: Counter = field(default_factory=Counter)      # reason -> samples
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    planned: Counter = field(default_factory=Counter)      # "name model" -> rows to compute
    duplicates: int = 0            # samples whose metrics a retried batch had committed already
    ray: dict | None = None        # --ray: actors, actor_deaths, resubmitted (batches)

    def lines(self) -> list[str]:
        out = [f"runs: {len(self.runs)}; ok samples: {self.n_samples}; already complete: {self.n_complete}; "
               f"evaluated now: {self.n_evaluated}; metric rows written: {self.n_rows} ({self.seconds:.1f} s)"]
        out += [f"  {k}: {v}" for k, v in sorted(self.per_metric.items())]
        if self.ray is not None:
            out.append(f"ray: {self.ray['actors']} actors, {self.ray['actor_deaths']} died, "
                       f"{self.ray['resubmitted']} batches resubmitted, {self.duplicates} samples evaluated twice "
                       "and committed once")
        out += [f"note: {n}" for n in self.notes]
        if self.problems:
            out.append(f"not computed (will be retried by the next run): {sum(self.problems.values())}")
            out += [f"  {v} x {k}" for k, v in self.problems.most_common(20)]
        return out


class Evaluator:
    """The models of the requested metrics (model strings known before any weights load)."""

    def __init__(self, cfg: EvalConfig):
        from fastface.checkpoints import default_device

        self.cfg = cfg
        self.device = cfg.device or default_device()
        self.metrics = set(cfg.metrics)
        self.notes: list[str] = []
        weights_root = cfg.weights_root
        prefix = ""
        if cfg.tiny:
            from fastface.evaluation.tiny import build_tiny_eval_world

            weights_root = str(build_tiny_eval_world(cfg.weights_root))
            prefix = "tiny:"
        self.weights_root = weights_root
        backend = cfg.face_backend or ("dlib" if cfg.tiny else "insightface")
        self.backend = backend
        errors: list[str] = []
        self.face = self.face2 = self.clip = self.ae = self.ir = None

        def attempt(build):
            try:
                return build()
            except (ModelUnavailable, FileNotFoundError, RuntimeError, ImportError, OSError) as e:
                errors.append(str(e))
                return None

        from fastface.evaluation.face_scores import FaceScorer

        if self.metrics & set(FACE_KEYS):
            self.face = attempt(lambda: FaceScorer(backend, device=self.device, root=cfg.insightface_root))
            if self.face is not None and "id" in self.metrics and backend == "skimage":
                errors.append("metric 'id': the skimage backend gives no face embedding; use --face-backend "
                              "insightface or dlib, or leave 'id' out")
        if "id-dlib" in self.metrics:
            if backend == "dlib":
                self.notes.append("id-dlib skipped: the face backend is dlib already")
                self.metrics.discard("id-dlib")
            else:
                self.face2 = attempt(lambda: FaceScorer("dlib", device=self.device))
        if self.metrics & {"clip", "ae", "fsc"}:
            from fastface.evaluation.clip_scores import CLIP_ID, ClipScorer

            repo = cfg.clip_model or CLIP_ID
            key = next(m for m in ("clip", "ae", "fsc") if m in self.metrics)
            self.clip = attempt(lambda: ClipScorer(repo, weights_root=weights_root, cache_dir=cfg.cache_dir,
                                                   device=self.device, label=prefix + repo, metric_key=key))
        if "ae" in self.metrics and self.clip is not None:
            from fastface.evaluation.clip_scores import AestheticScorer

            self.ae = attempt(lambda: AestheticScorer(self.clip, repo=cfg.aesthetic_model, weights_root=weights_root,
                                                      cache_dir=cfg.cache_dir, label_prefix=prefix))
        if "ir" in self.metrics:
            from fastface.evaluation.image_reward import IMAGE_REWARD_ID, ImageRewardScorer

            repo = cfg.image_reward_model or IMAGE_REWARD_ID
            self.ir = attempt(lambda: ImageRewardScorer(repo, weights_root=weights_root, cache_dir=cfg.cache_dir,
                                                        device=self.device, label=prefix + repo))
        if errors:
            raise EvaluationError("cannot evaluate; missing models:\n  - " + "\n  - ".join(errors))
        self.fsc_model = f"{self.clip.model_id}+{self.face.model_id}" if "fsc" in self.metrics else None
        self._id_photos = _photo_index(cfg.id_photos) if cfg.id_photos else None

    # ------------------------------------------------------------------ planning
    def wanted(self, row: dict) -> list[tuple[str, str]]:
        """The (name, model) keys this sample should have."""
        out = []
        m = self.metrics
        if "id" in m:
            out.append(("id_sim", self.face.model_id))
        if "ffc" in m:
            out.append(("face_detected", self.face.model_id))
        if "face-size" in m:
            out.append(("face_size", self.face.model_id))
        if "id-dlib" in m:
            out += [("id_sim", self.face2.model_id), ("face_detected", self.face2.model_id)]
        if "clip" in m:
            out.append(("clip_t", self.clip.model_id))
        if "ae" in m:
            out.append(("aesthetic", self.ae.model_id))
        if "ir" in m:
            out.append(("image_reward", self.ir.model_id))
        if "fsc" in m and _style(row["prompt"]) is not None:
            out.append(("fsc", self.fsc_model))
        return out

    def model_ids(self) -> dict[str, str]:
        out = {}
        for key in sorted(self.metrics):
            for name in METRICS[key]:
                model = {"id": lambda: self.face.model_id, "ffc": lambda: self.face.model_id,
                         "face-size": lambda: self.face.model_id, "id-dlib": lambda: self.face2.model_id,
                         "clip": lambda: self.clip.model_id, "ae": lambda: self.ae.model_id,
                         "ir": lambda: self.ir.model_id, "fsc": lambda: self.fsc_model}[key]()
                out[f"{name} ({key})"] = model
        return out

    def reference_path(self, row: dict) -> str | None:
        if self._id_photos is not None:
            return self._id_photos.get(row["identity"])
        return row.get("id_image_path")

    # ------------------------------------------------------------------ computing
    def compute(self, items: list[SampleWork], problems: Counter) -> list[list]:
        """MetricRecords (only the missing keys) for each item, in order."""
        from store.records import MetricRecord

        out: list[list] = [[] for _ in items]

        def put(i: int, name: str, model: str, value) -> None:
            if (name, model) in items[i].missing:
                out[i].append(MetricRecord(name, None if value is None else float(value), model))

        fsc_jobs: list[tuple[int, np.ndarray, str]] = []
        for i, it in enumerate(items):
            for scorer, names in ((self.face, ("id_sim", "face_detected", "face_size", "fsc")),
                                  (self.face2, ("id_sim", "face_detected"))):
                if scorer is None:
                    continue
                mine = {(n, scorer.model_id) for n in names} | (
                    {("fsc", self.fsc_model)} if scorer is self.face and self.fsc_model else set())
                if not (mine & it.missing):
                    continue
                ref, why = None, None
                if ("id_sim", scorer.model_id) in it.missing:
                    ref, why = scorer.reference_for(self.reference_path(it.row))
                res = scorer.analyse(it.image, ref)
                put(i, "face_detected", scorer.model_id, float(res.detected))
                put(i, "face_size", scorer.model_id, res.face_size)
                if ("id_sim", scorer.model_id) in it.missing:
                    if ref is None:
                        problems[f"id_sim [{scorer.model_id}]: {why}"] += 1
                    else:
                        put(i, "id_sim", scorer.model_id, res.id_sim)
                if scorer is self.face and ("fsc", self.fsc_model) in it.missing:
                    from fastface.evaluation.clip_scores import face_crop

                    try:
                        crop = face_crop(it.image, res.face.bbox) if res.detected else None
                    except ValueError:  # a box entirely outside the image: no crop, fsc undefined
                        crop = None
                    if crop is not None:
                        fsc_jobs.append((i, crop, _style(it.row["prompt"])))
                    else:
                        put(i, "fsc", self.fsc_model, None)
        clip_idx = [i for i, it in enumerate(items)
                    if (self.clip and ("clip_t", self.clip.model_id) in it.missing)
                    or (self.ae and ("aesthetic", self.ae.model_id) in it.missing)]
        if clip_idx:
            embeds = self.clip.image_embeds([items[i].image for i in clip_idx])
            if "clip" in self.metrics:
                scores = self.clip.scores_from_embeds(embeds, [items[i].row["prompt"] for i in clip_idx])
                for i, s in zip(clip_idx, scores):
                    put(i, "clip_t", self.clip.model_id, s)
            if self.ae is not None:
                for i, s in zip(clip_idx, self.ae.score_embeds(embeds)):
                    put(i, "aesthetic", self.ae.model_id, s)
        if fsc_jobs:
            scores = self.clip.score([c for _, c, _ in fsc_jobs], [t for _, _, t in fsc_jobs])
            for (i, _, _), s in zip(fsc_jobs, scores):
                put(i, "fsc", self.fsc_model, s)
        if self.ir is not None:
            ir_idx = [i for i, it in enumerate(items) if ("image_reward", self.ir.model_id) in it.missing]
            if ir_idx:
                scores = self.ir.score([items[i].image for i in ir_idx], [items[i].row["prompt"] for i in ir_idx])
                for i, s in zip(ir_idx, scores):
                    put(i, "image_reward", self.ir.model_id, s)
        return out


def _style(prompt: str) -> str | None:
    from fastface.evaluation.clip_scores import style_text

    return style_text(prompt)


def _photo_index(folder: str) -> dict[str, str]:
    from fastface.dataset import read_photos

    return {p.name: p.path for p in read_photos(folder)}
