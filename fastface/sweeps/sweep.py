"""Capture sweeps: checkpoints x presets x ip-scales x lora-scales x identities x prompts.

Each (checkpoint, preset, ip_scale, lora_scale) is one *run* with a deterministic id, so
running the same command again resumes it: samples already committed are skipped. Each
sample (image, maps, faces) is committed atomically by :class:`store.writer.StoreWriter`;
an interrupted sweep (Ctrl-C, kill -9, out of memory) loses at most the sample in flight.
A sample that fails (no face in its ID photo, out of memory, ...) is committed as a failed
row with its error, and the sweep goes on.

Seeds are per sample (``seed + index of the (identity, prompt) pair``), so a sample's image
does not depend on which samples ran before it or on which worker ran it (a ``--worker i/n``
process or a Ray actor: :mod:`fastface.sweeps.sweep_ray`). The paper's
release instead draws from one generator seeded 50 and consumed sequentially over the
dataset; that makes every image depend on the order of the whole sweep.
"""
from __future__ import annotations

import hashlib
import io
import json
import platform
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable

import numpy as np

from fastface.method.config import ConfigError, FastFaceConfig, load_preset
from fastface.sweeps.dataset import Dataset, IdentitySpec, PromptSpec

PACKAGES = ("fastface-workbench", "torch", "diffusers", "transformers", "peft", "duckdb", "insightface", "dlib-bin")


@dataclass(frozen=True)
class SweepSpec:
    """The grid of a sweep and how to capture it (serialisable; stored with every run)."""

    checkpoints: tuple[str, ...] = ("hyper",)
    presets: tuple[str, ...] = ("baseline", "ff-am2")
    ip_scales: tuple[float, ...] = (0.8,)
    lora_scales: tuple[float, ...] = (1.0,)
    seed: int = 50
    steps: int | None = None
    tiny: bool = False
    world: str = "random"  # with tiny: "random" (random weights) or "face" (the trained face world)
    capture: str | dict = "head_mean"
    face_backend: str | None = None
    limit: int | None = None
    on_multiple_faces: str = "first"  # the release takes the first face
    height: int | None = None  # image size (default: the checkpoint's, or the offline world's)
    width: int | None = None
    clip_crop_order: str | None = None  # the ID crop's channel order for CLIP (default: bgr real, rgb offline)
    vary: tuple[str, ...] = ()  # "PATH=v1,v2,..." axes of a parameter grid over the one preset (variation.py)

    def capture_spec(self):
        from probes.spec import CaptureSpec, named_spec

        return named_spec(self.capture) if isinstance(self.capture, str) else CaptureSpec.from_dict(self.capture)

    def runs(self) -> list[tuple[str, str, float, float]]:
        return [(c, p, ip, lo) for c in self.checkpoints for p in self.presets
                for ip in self.ip_scales for lo in self.lora_scales]

    def validate(self) -> None:
        """Check the whole grid before anything is loaded or written: every checkpoint, preset,
        scale, the step count, --limit and the capture spec.  Raises ConfigError naming every
        bad value and the option to fix, in one line."""
        from fastface.models.checkpoints import CHECKPOINTS

        problems = []
        for flag, values in (("--checkpoints", self.checkpoints), ("--presets", self.presets),
                             ("--ip-scales", self.ip_scales), ("--lora-scales", self.lora_scales)):
            if not values:
                problems.append(f"{flag} is empty: give at least one value")
        bad = [c for c in self.checkpoints if c not in CHECKPOINTS]
        if bad:
            problems.append(f"unknown checkpoint(s) {', '.join(map(repr, bad))} in --checkpoints; "
                            f"choose from {', '.join(CHECKPOINTS)}")
        configs = []
        for preset in self.presets:
            try:
                configs.append(load_preset(preset))
            except (ConfigError, ValueError, OSError) as e:
                problems.append(f"--presets: {e}")
        for ip in self.ip_scales:
            for lora in self.lora_scales:
                try:
                    (configs[0] if configs else FastFaceConfig()).with_scales(ip, lora)
                except (ConfigError, ValueError) as e:
                    problems.append(f"--ip-scales {ip:g} / --lora-scales {lora:g}: {e}")
        if self.steps is not None and self.steps < 1:
            problems.append(f"--steps {self.steps}: give a step count >= 1")
        elif self.steps is not None:
            for c in (CHECKPOINTS[c] for c in self.checkpoints if c in CHECKPOINTS):
                try:
                    c.weight_file(self.steps)
                except ValueError as e:
                    problems.append(str(e))
        for config in configs:
            for c in (CHECKPOINTS[c] for c in self.checkpoints if c in CHECKPOINTS):
                try:
                    config.validate_for_steps(self.steps or c.steps)
                except (ConfigError, ValueError) as e:
                    problems.append(f"preset {config.name!r} with {c.name} ({self.steps or c.steps} steps): {e}")
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 1):
            problems.append(f"--limit {self.limit}: give N >= 1 (at most N (identity, prompt) pairs), "
                            "or leave it out for every pair")
        try:
            self.capture_spec()
        except (ConfigError, ValueError, KeyError, TypeError) as e:
            problems.append(f"--capture: {e}")
        if self.vary:
            problems.extend(self._grid_problems(configs[:1]))
        if problems:
            raise ConfigError("; ".join(dict.fromkeys(" ".join(str(p).split()) for p in problems)))


    def num_steps(self, checkpoint: str) -> int:
        from fastface.models.checkpoints import CHECKPOINTS

        return self.steps or CHECKPOINTS[checkpoint].steps

    def _grid_problems(self, configs: list[FastFaceConfig]) -> list[str]:
        """Every cell of the --vary grid over the base preset, for each checkpoint's step count."""
        from fastface.models.checkpoints import CHECKPOINTS
        from fastface.sweeps.variation import check_vary_flags, grid_variants, parse_axes

        problems = []
        try:
            check_vary_flags(self.vary, self.presets, {"ip_scale": len(self.ip_scales) > 1,
                                                       "lora_scale": len(self.lora_scales) > 1})
            axes = parse_axes(self.vary)
        except ConfigError as e:
            return [str(e) if str(e).startswith("--vary") else f"--vary: {e}"]
        for config in configs:
            for c in (c for c in self.checkpoints if c in CHECKPOINTS):
                for ip in self.ip_scales:
                    for lora in self.lora_scales:
                        try:
                            grid_variants(config.with_scales(ip, lora), axes, self.num_steps(c))
                        except (ConfigError, ValueError) as e:
                            problems.append(f"--vary over preset {config.name!r} with {c} "
                                            f"({self.num_steps(c)} steps): {e}")
        return problems


@dataclass
class RunPlan:
    run_id: str
    checkpoint: str
    preset: str
    config: FastFaceConfig
    samples: list[tuple[int, IdentitySpec, PromptSpec, int, str]] = field(default_factory=list)  # index, id, prompt, seed, key
    variation: dict | None = None  # a grid cell's {"base", "grid", "coords"} (runs.variation_json)

    @property
    def name(self) -> str:
        from fastface.sweeps.variation import coords_label

        label = f"{self.checkpoint}/{self.preset}"
        return f"{label} [{coords_label(self.variation['coords']) or 'base'}]" if self.variation else label


def run_id_for(checkpoint: str, preset: str, config: FastFaceConfig, extra: dict) -> str:
    digest = hashlib.sha1(json.dumps({"config": config.to_dict(), **extra}, sort_keys=True).encode()).hexdigest()[:10]
    return f"{checkpoint}-{preset}-ip{config.ip_scale:g}-lora{config.lora_scale:g}-{digest}"


def plan_runs(spec: SweepSpec, dataset: Dataset) -> list[RunPlan]:
    """The runs of a sweep: one per (checkpoint, preset, ip, lora), or with ``spec.vary`` one per
    cell of the grid over the preset."""
    entries = []
    for checkpoint, preset, ip, lora in spec.runs():
        config = load_preset(preset).with_scales(ip, lora)
        if not spec.vary:
            entries.append((checkpoint, preset, config, None))
            continue
        from fastface.sweeps.variation import grid_id, grid_variants, parse_axes, variation_record

        axes = parse_axes(spec.vary)
        grid = grid_id(preset, axes)
        for v in grid_variants(config, axes, spec.num_steps(checkpoint)):
            entries.append((checkpoint, preset, v.config, variation_record(preset, grid, v.coords)))
    return plan_entries(spec, dataset, entries)


def plan_entries(spec: SweepSpec, dataset: Dataset,
                 entries: list[tuple[str, str, FastFaceConfig, dict | None]]) -> list[RunPlan]:
    """RunPlans of (checkpoint, preset, config, variation) entries: deterministic run ids (a
    variation is part of the id), and the same samples (identity, prompt, seed, key) in each."""
    from store.records import sample_key

    cap = spec.capture_spec().to_dict()
    if spec.limit is not None and spec.limit < 1:
        raise ConfigError(f"limit {spec.limit}: give N >= 1 (at most N pairs) or None for every pair")
    pairs = dataset.pairs()[: spec.limit] if spec.limit is not None else dataset.pairs()
    plans = []
    for checkpoint, preset, config, variation in entries:
        extra = {"checkpoint": checkpoint, "steps": spec.steps, "tiny": spec.tiny, "capture": cap,
                 "seed": spec.seed, "face_backend": spec.face_backend}
        if spec.tiny and spec.world != "random":
            extra["world"] = spec.world
        for key in ("height", "width", "clip_crop_order"):  # only when set: run ids of earlier sweeps stay
            if getattr(spec, key) is not None:
                extra[key] = getattr(spec, key)
        if variation is not None:
            extra["variation"] = variation
        plan = RunPlan(run_id_for(checkpoint, preset, config, extra), checkpoint, preset, config,
                       variation=variation)
        for index, ident, prompt in pairs:
            seed = spec.seed + index
            plan.samples.append((index, ident, prompt, seed, sample_key(ident.name, prompt.text, seed)))
        plans.append(plan)
    return plans


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _png(image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class SampleRunner:
    """Generates, probes and analyses the samples of runs that share one checkpoint."""

    def __init__(self, pipe, spec: SweepSpec):
        self.pipe = pipe
        self.spec = spec
        self._identities: dict[str, object] = {}  # name -> Identity or the exception raised

    def identity(self, ident: IdentitySpec):
        if ident.name not in self._identities:
            try:
                self._identities[ident.name] = self.pipe.encode_identity(
                    ident.path, name=ident.name, on_multiple=self.spec.on_multiple_faces)
            except Exception as e:  # recorded per sample: a bad ID photo must not stop the sweep
                self._identities[ident.name] = e
        return self._identities[ident.name]

    def faces(self, image: np.ndarray, reference) -> list:
        from store.records import FaceRecord

        analyzer = self.pipe.analyzer
        ref = reference.face
        rows = [FaceRecord(role="reference", detected=True, backend=analyzer.name, n_faces=1, bbox=ref.bbox,
                           kps=ref.kps, score=ref.score, embedding=ref.embedding)]
        found = analyzer.detect(image)
        if not found:
            rows.append(FaceRecord(role="generated", detected=False, backend=analyzer.name, n_faces=0))
            return rows
        face = max(found, key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]))
        sim = None
        if face.embedding is not None and ref.embedding is not None:
            sim = float(np.dot(face.embedding, ref.embedding) /
                        (np.linalg.norm(face.embedding) * np.linalg.norm(ref.embedding)))
        rows.append(FaceRecord(role="generated", detected=True, backend=analyzer.name, n_faces=len(found),
                               bbox=face.bbox, kps=face.kps, score=face.score,
                               area_ratio=face.area_ratio(image.shape), embedding=face.embedding, similarity=sim))
        return rows

    def run_sample(self, probe, plan: RunPlan, item) -> tuple:
        """(SampleRecord, maps, faces, metrics) for one sample; failures become a failed record."""
        from store.records import MetricRecord, SampleRecord, utcnow

        index, ident, prompt, seed, key = item
        started = utcnow()
        t0 = time.perf_counter()
        base = dict(sample_key=key, identity=ident.name, prompt=prompt.text, category=prompt.category, seed=seed,
                    id_image_path=ident.path, sample_index=index, started_at=started)
        identity = self.identity(ident)
        if isinstance(identity, Exception):
            return SampleRecord(**base, status="failed", error=f"ID photo: {identity}", finished_at=utcnow()), [], [], []
        try:
            result, maps = probe.generate(key, prompt.text, identity, plan.config, seed=seed, steps=self.spec.steps,
                                          height=self.spec.height, width=self.spec.width)
        except Exception as e:  # out of memory and the like: recorded, the sweep goes on
            _free_cuda()
            return SampleRecord(**base, status="failed", error=f"{type(e).__name__}: {e}", finished_at=utcnow()), [], [], []
        image = np.asarray(result.image.convert("RGB"))
        faces = self.faces(image, identity)
        gen = faces[-1]
        metrics = [MetricRecord("face_detected", float(gen.detected), self.pipe.analyzer.name)]
        if gen.similarity is not None:
            metrics.append(MetricRecord("id_sim", gen.similarity, self.pipe.analyzer.name))
        if gen.area_ratio is not None:
            metrics.append(MetricRecord("face_size", gen.area_ratio, self.pipe.analyzer.name))
        sample = SampleRecord(**base, status="ok", image_png=_png(result.image), width=result.width,
                              height=result.height, finished_at=utcnow(), gen_seconds=result.seconds,
                              capture_bytes=getattr(probe, "last_bytes", None))
        return sample, maps, faces, metrics


def error_kind(error: str | None) -> str:
    """The kind of a failed sample's error: the text before its first colon ("ID photo",
    "OutOfMemoryError", ...)."""
    return (error or "").split(":", 1)[0].strip() or "unknown"


def summarize_failures(counts: dict) -> str:
    """'N of M samples failed (kind: n, ...)' for the counts of a sweep."""
    kinds = ", ".join(f"{k}: {n}" for k, n in sorted(counts.get("errors", {}).items(), key=lambda kv: -kv[1]))
    return f"{counts['failed']} of {counts['written']} samples failed" + (f" ({kinds})" if kinds else "")


def _free_cuda() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def begin_runs(writer, spec: SweepSpec, dataset: Dataset, plans: list[RunPlan],
               worker: tuple[int, int] = (0, 1)) -> dict[str, list]:
    """Create (or reopen) the runs of ``plans`` in the store; returns, per run id, the samples of
    this worker's share that are not committed yet (resume)."""
    from store.records import RunRecord

    todo = {}
    for plan in plans:
        writer.begin_run(RunRecord(
            run_id=plan.run_id, config=plan.config.to_dict(), name=plan.name, variation=plan.variation,
            preset=plan.preset, checkpoint=plan.checkpoint, ip_scale=plan.config.ip_scale,
            lora_scale=plan.config.lora_scale, seed=spec.seed,
            capture_spec=spec.capture_spec().to_dict(), package_versions=package_versions(),
            notes=json.dumps({"sweep": _spec_dict(spec), "dataset": dataset.source, "tiny": spec.tiny}),
        ))
        done = writer.done_sample_keys(plan.run_id)
        todo[plan.run_id] = [s for s in plan.samples[worker[0]::worker[1]] if s[4] not in done]
        if todo[plan.run_id]:  # the planned count is known from the start (the pages' "N of M")
            writer.set_status(plan.run_id, "running", n_done=len(done), n_total=len(plan.samples))
    return todo


def finish_run(writer, store_path: str, plan: RunPlan, n_failed: int | None, compact: bool) -> str:
    """Record the run's status ("completed" once every sample is committed, by anyone) and
    compact a completed run; returns the status."""
    n_done = len(writer.done_sample_keys(plan.run_id))
    status = "completed" if n_done >= len(plan.samples) else "running"
    writer.set_status(plan.run_id, status, n_done=n_done, n_failed=n_failed, n_total=len(plan.samples))
    if compact and status == "completed":
        from store.compact import compact as compact_run

        compact_run(store_path, plan.run_id)
    return status


def pipe_site_records(pipe) -> list:
    """SiteRecords of the pipeline's attention sites (call after a generation: the latent size
    is known then)."""
    from probes.sites import sites_of

    lat = pipe.context.latent_hw
    return [s.site_record(lat) for s in sites_of(pipe.pipe.unet)]


def run_sweep(
    spec: SweepSpec,
    dataset: Dataset,
    store_path: str,
    *,
    load: Callable[[str], object],
    progress: Callable[[int, int], None] | None = None,
    worker: tuple[int, int] = (0, 1),
    compact: bool = True,
    plans: list[RunPlan] | None = None,
    adapt_threads: bool = False,
) -> dict:
    """Run (or resume) a sweep into ``store_path``; returns counts.

    ``load(checkpoint)`` gives a FastFacePipeline; ``worker=(i, n)`` takes every n-th sample
    (offset i) so that several processes can split one sweep over the same store. A run whose
    samples are all committed is compacted into one segment (fewer, larger Parquet files).
    ``plans`` (default: ``plan_runs(spec, dataset)``): runs planned otherwise, e.g. the variants
    of :func:`fastface.sweeps.keep.plan_variants`.
    ``adapt_threads`` (the CLI's captures): on the CPU, torch's thread count is chosen before
    each sample from the cores other processes leave free (fastface.sweeps.cpu_threads);
    otherwise the caller's setting stands.
    """
    from tqdm import tqdm

    from fastface.sweeps.cpu_threads import ThreadPolicy, on_cpu
    from probes.capture import capture
    from store.writer import StoreWriter

    plans = plan_runs(spec, dataset) if plans is None else plans
    # the first checkpoint loads before anything is written: a broken file stops the sweep with
    # nothing in the store
    loaded = {spec.checkpoints[0]: load(spec.checkpoints[0])} if spec.checkpoints else {}
    writer = StoreWriter(store_path, worker_id=f"w{worker[0]}of{worker[1]}")
    todo = begin_runs(writer, spec, dataset, plans, worker)
    for plan in plans:  # nothing left here: begin_run marked it running, record its real status
        if not todo[plan.run_id]:
            finish_run(writer, store_path, plan, None, compact=False)
    total = sum(len(v) for v in todo.values())
    counts = {"runs": len(plans), "written": 0, "failed": 0, "skipped": sum(len(p.samples) for p in plans) - total,
              "errors": Counter()}
    bar = tqdm(total=total, unit="sample", desc="capture", dynamic_ncols=True)
    finished: set[str] = set()
    threads = None
    try:
        for checkpoint in spec.checkpoints:
            runs = [p for p in plans if p.checkpoint == checkpoint and todo[p.run_id]]
            if not runs:
                continue
            pipe = loaded.pop(checkpoint, None) or load(checkpoint)
            runner = SampleRunner(pipe, spec)
            if adapt_threads and threads is None and on_cpu(pipe):
                threads = ThreadPolicy()
            site_records = None
            for plan in runs:
                n_failed = 0
                with capture(pipe, spec.capture_spec()) as probe:
                    for item in todo[plan.run_id]:
                        if threads is not None:
                            threads.update()  # the cores other processes leave free (cpu_threads)
                        sample, maps, faces, metrics = runner.run_sample(probe, plan, item)
                        if site_records is None and maps:
                            site_records = pipe_site_records(pipe)
                        writer.write_sample(plan.run_id, sample, maps=maps, faces=faces, metrics=metrics,
                                            sites=site_records or [], balance=probe.pop_balance(sample.sample_key))
                        counts["written"] += 1
                        if sample.status == "failed":
                            counts["failed"] += 1
                            counts["errors"][error_kind(sample.error)] += 1
                            n_failed += 1
                        bar.update(1)
                        if progress:
                            progress(bar.n, total)
                finish_run(writer, store_path, plan, n_failed, compact)
                finished.add(plan.run_id)
    except BaseException as e:
        # every run this process began and did not finish (a checkpoint that failed to load
        # included) is recorded as interrupted, not left 'running'
        for plan in plans:
            if todo[plan.run_id] and plan.run_id not in finished:
                writer.set_status(plan.run_id, "interrupted", message=f"{type(e).__name__}: {e}"[:500],
                                  n_total=len(plan.samples))
        raise
    finally:
        bar.close()
        if threads is not None:
            threads.restore()
    return counts


def _spec_dict(spec: SweepSpec) -> dict:
    from dataclasses import asdict

    return asdict(spec)
