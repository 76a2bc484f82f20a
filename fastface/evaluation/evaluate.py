"""``fastface evaluate``: per-sample metrics into the store, incremental and resumable.

For every ok sample of the chosen runs, each requested metric is a key
``(name, model)``; keys already in the store (``report_metric_keys``) are skipped, the rest
are computed and committed with one ``StoreWriter.add_metrics`` per sample (atomic: an
interrupted evaluation loses at most the samples of the batch in flight, and the next run
picks up exactly what is missing).  A second run with the same models writes nothing.

Metric keys (``--metrics``), the rows they write and their model strings (each followed by
``#protocol=release`` or ``#protocol=corrected``, ``--protocol``; see README "Protocols"):

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
fsc        fsc (every prompt)               <clip>@..+<face backend>@..
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

from fastface.evaluation.models import ModelUnavailable, check_device
from fastface.evaluation.protocol import DEFAULT_PROTOCOL, Protocol, check_protocol, fsc_text

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
    aesthetic_model: str | None = None       # the repo of the aesthetic head
    image_reward_model: str | None = None
    protocol: str = DEFAULT_PROTOCOL         # release | corrected (fastface/evaluation/protocol.py)
    aesthetic_head: str | None = None        # file name in the repo or a path (default: the protocol's)

    def __post_init__(self):
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown:
            raise EvaluationError(f"unknown metric(s) {unknown}; choose from {', '.join(ALL_METRICS)}")
        if self.batch_size < 1:
            raise EvaluationError("--batch-size must be >= 1")
        self.protocol = check_protocol(self.protocol)


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
    """The models of the requested metrics (model strings known before any weights load).

    Every metric row's model string is tagged with the protocol (``<model>#protocol=<name>``)."""

    def __init__(self, cfg: EvalConfig):
        from fastface.models.checkpoints import default_device

        self.cfg = cfg
        self.protocol = Protocol(cfg.protocol)
        self.device = cfg.device or default_device()
        self.metrics = set(cfg.metrics)
        self.notes: list[str] = []
        errors: list[str] = []

        def attempt(build):
            try:
                return build()
            except (ModelUnavailable, FileNotFoundError, RuntimeError, ImportError, OSError) as e:
                errors.append(" ".join(str(e).split()))  # one line per missing model
                return None

        attempt(lambda: check_device(self.device))
        weights_root = cfg.weights_root
        prefix = ""
        if cfg.tiny:
            from fastface.evaluation.tiny import build_tiny_eval_world

            weights_root = str(build_tiny_eval_world(cfg.weights_root))
            prefix = "tiny:"
        self.weights_root = weights_root
        backend = cfg.face_backend or ("dlib" if cfg.tiny else "insightface")
        self.backend = backend
        self.face = self.face2 = self.clip = self.ae = self.ir = None

        from fastface.evaluation.face_scores import FaceScorer

        face_root = cfg.insightface_root
        if backend == "insightface" and not cfg.tiny:  # --insightface-root, <weights-root>/insightface, ~/.insightface
            from fastface.models.weights import insightface_root_for

            face_root = insightface_root_for(cfg.insightface_root, cfg.weights_root)
        if self.metrics & set(FACE_KEYS):
            self.face = attempt(lambda: FaceScorer(backend, device=self.device, root=face_root))
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
        if "ae" in self.metrics:  # located even when CLIP is missing: every missing model is reported
            from fastface.evaluation.clip_scores import AestheticScorer, locate_aesthetic_head

            head = cfg.aesthetic_head or self.protocol.aesthetic_head
            located = attempt(lambda: locate_aesthetic_head(cfg.aesthetic_model, head, weights_root=weights_root,
                                                            cache_dir=cfg.cache_dir, label_prefix=prefix))
            if located is not None and self.clip is not None:
                self.ae = AestheticScorer(self.clip, located=located)
        if "ir" in self.metrics:
            from fastface.evaluation.image_reward import IMAGE_REWARD_ID, ImageRewardScorer

            repo = cfg.image_reward_model or IMAGE_REWARD_ID
            self.ir = attempt(lambda: ImageRewardScorer(repo, weights_root=weights_root, cache_dir=cfg.cache_dir,
                                                        device=self.device, label=prefix + repo))
        if errors:
            raise EvaluationError(f"cannot evaluate ({len(errors)} problem(s)):\n  - " + "\n  - ".join(errors))
        tag = self.protocol.tag
        self.face_model = tag(self.face.model_id) if self.face else None
        self.face2_model = tag(self.face2.model_id) if self.face2 else None
        self.clip_model = tag(self.clip.model_id) if self.clip else None
        self.ae_model = tag(self.ae.model_id) if self.ae else None
        self.ir_model = tag(self.ir.model_id) if self.ir else None
        self.fsc_model = tag(f"{self.clip.model_id}+{self.face.model_id}") if "fsc" in self.metrics else None
        self._id_photos = _photo_index(cfg.id_photos) if cfg.id_photos else None

    # ------------------------------------------------------------------ planning
    def wanted(self, row: dict) -> list[tuple[str, str]]:
        """The (name, model) keys this sample should have (FSC: every prompt, both protocols)."""
        m, out = self.metrics, []
        for key, name, model in (("id", "id_sim", self.face_model), ("ffc", "face_detected", self.face_model),
                                 ("face-size", "face_size", self.face_model), ("id-dlib", "id_sim", self.face2_model),
                                 ("id-dlib", "face_detected", self.face2_model), ("clip", "clip_t", self.clip_model),
                                 ("ae", "aesthetic", self.ae_model), ("ir", "image_reward", self.ir_model),
                                 ("fsc", "fsc", self.fsc_model)):
            if key in m:
                out.append((name, model))
        return out

    def model_ids(self) -> dict[str, str]:
        return {f"{name} ({key})": model for key, name, model in (
            ("id", "id_sim", self.face_model), ("ffc", "face_detected", self.face_model),
            ("face-size", "face_size", self.face_model), ("id-dlib", "id_sim", self.face2_model),
            ("clip", "clip_t", self.clip_model), ("ae", "aesthetic", self.ae_model),
            ("ir", "image_reward", self.ir_model), ("fsc", "fsc", self.fsc_model)) if key in self.metrics}

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
            for scorer, model in ((self.face, self.face_model), (self.face2, self.face2_model)):
                if scorer is not None:
                    fsc = scorer is self.face and self.fsc_model is not None and ("fsc", self.fsc_model) in it.missing
                    self._face_metrics(i, it, scorer, model, fsc, put, problems, fsc_jobs)
        release, clamp = self.protocol.release, self.protocol.clamp_clip
        clip_idx = [i for i, it in enumerate(items)
                    if (self.clip_model and ("clip_t", self.clip_model) in it.missing)
                    or (self.ae_model and ("aesthetic", self.ae_model) in it.missing)]
        if clip_idx:
            images = [items[i].image for i in clip_idx]
            embeds = self.clip.image_embeds(images, pixels=self.clip.release_pixels(images) if release else None)
            if self.clip_model:
                scores = self.clip.scores_from_embeds(embeds, [items[i].row["prompt"] for i in clip_idx], clamp=clamp)
                for i, s in zip(clip_idx, scores):
                    put(i, "clip_t", self.clip_model, s)
            if self.ae is not None:
                for i, s in zip(clip_idx, self.ae.score_embeds(embeds)):
                    put(i, "aesthetic", self.ae_model, s)
        if fsc_jobs:
            crops = [c for _, c, _ in fsc_jobs]
            px = self.clip.release_pixels(crops, value_range="0..255") if release else None  # the release's bug
            scores = self.clip.scores_from_embeds(self.clip.image_embeds(crops, pixels=px),
                                                  [t for _, _, t in fsc_jobs], clamp=clamp)
            for (i, _, _), s in zip(fsc_jobs, scores):
                put(i, "fsc", self.fsc_model, s)
        if self.ir is not None:
            ir_idx = [i for i, it in enumerate(items) if ("image_reward", self.ir_model) in it.missing]
            if ir_idx:
                scores = self.ir.score([items[i].image for i in ir_idx], [items[i].row["prompt"] for i in ir_idx])
                for i, s in zip(ir_idx, scores):
                    put(i, "image_reward", self.ir_model, s)
        return out

    def _face_metrics(self, i, it, scorer, model, fsc, put, problems, fsc_jobs) -> None:
        """face_detected / face_size / id_sim of one backend (and the FSC crop of the primary one)."""
        from fastface.evaluation.protocol import largest_box, release_crop, square_crop

        want = {n for n in ("id_sim", "face_detected", "face_size") if (n, model) in it.missing}
        if not want and not fsc:
            return
        release = self.protocol.release
        # the release needs a face in the ID photo for FFC (face_metrics.py:159-171) and FSC (:228-244)
        ref = None
        if "id_sim" in want or (release and ("face_detected" in want or fsc)):
            ref = scorer.reference_status(self.reference_path(it.row))
            if ref.unknown and not ref.no_face:  # the photo cannot be read: not computed, reported
                for n in sorted(want & ({"id_sim", "face_detected"} if release else {"id_sim"})):
                    problems[f"{n} [{model}]: {ref.error}"] += 1
                if fsc and release:
                    problems[f"fsc [{self.fsc_model}]: {ref.error}"] += 1
        res = scorer.analyse(it.image, ref.face if ref else None, protocol=self.protocol.name)
        ref_ok = ref is not None and not (ref.unknown and not ref.no_face)
        if "face_detected" in want:
            if not release:
                put(i, "face_detected", model, float(res.detected))
            elif ref_ok:
                put(i, "face_detected", model, float(res.detected and ref.face is not None))
        if "face_size" in want:
            put(i, "face_size", model, scorer.release_face_size(it.image, res) if release else res.face_size)
        if "id_sim" in want and ref_ok:
            if ref.face is not None:
                put(i, "id_sim", model, res.id_sim)
            elif release:  # no face in the ID photo: a face failure of the sample, no value
                put(i, "id_sim", model, None)
            else:
                problems[f"id_sim [{model}]: {ref.error}"] += 1
        if not fsc:
            return
        text = fsc_text(it.row["prompt"])
        if release:
            if not ref_ok:
                return
            crop = release_crop(it.image, largest_box(res.faces).bbox) if res.detected and ref.fsc_crop_ok else None
        else:
            crop = square_crop(it.image, res.face.bbox) if res.detected else None
        if crop is None:
            put(i, "fsc", self.fsc_model, None)
        else:
            fsc_jobs.append((i, crop, text))


def _photo_index(folder: str) -> dict[str, str]:
    from fastface.sweeps.dataset import read_photos

    return {p.name: p.path for p in read_photos(folder)}
