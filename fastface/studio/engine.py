"""The Studio engine: a pipeline loaded once, one generation at a time, every image generated,
probed and analysed exactly as a sweep's sample (:class:`fastface.sweeps.sweep.SampleRunner`).

The attention maps stay in memory: the probe (:func:`probes.capture.capture`, the ``head_mean``
spec) already returns its maps as :class:`store.records.MapRecord` objects, with the summaries and
histograms the store would hold; Keep writes those very records. A scratch store would add a
Parquet round trip per Generate and give nothing the records do not hold.

Usage::

    engine = StudioEngine.load(ModelChoice("hyper", "face"))
    subject = Subject("astronaut", "/path/astronaut.png", "a portrait of a person", seed=50)
    base, edited = engine.generate(subject, [load_preset("ff-am1"), edited_config])
    base.id_sim, edited.face_size, edited.maps.map(part="up", step=3, tokens=(1, 2, 3), stage="post")
    edited.word_maps.map(part="up", step=3, word="person")  # the text attention of a prompt word
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from fastface.method.config import FastFaceConfig
from fastface.studio.maps import MapSet, WordMapSet

#: what the Studio captures: head-mean maps of every site, step and ID token, pre and post, float16
CAPTURE = "head_mean"
#: and the prompt's words: the text-attention map of every word of the prompt (stream 'text',
#: stage 'pre'; within the noise of a Generate on the face world: 1.4-1.7 s with, 1.2-1.7 s without)
WORDS = "all"


def capture_of(words) -> str | dict:
    """The sweep's capture of the Studio: :data:`CAPTURE`, plus ``words`` (None, 'all' or names)."""
    if words is None:
        return CAPTURE
    from probes.spec import named_spec

    return named_spec(CAPTURE).replace(words=words).to_dict()
WORLDS = {"face": "face world (offline, trained)", "random": "tiny world (offline, random weights)",
          "real": "real weights"}


class StudioError(RuntimeError):
    """A Studio action cannot run; the message says why and what to do."""


@dataclass(frozen=True)
class ModelChoice:
    """A checkpoint in a world: ``face`` (the offline face world), ``random`` (the tiny world) or
    ``real`` (the checkpoint's real weights, through :func:`fastface.models.pipeline.load_pipeline`)."""

    checkpoint: str = "hyper"
    world: str = "face"

    def __post_init__(self) -> None:
        from fastface.models.checkpoints import CHECKPOINTS

        if self.world not in WORLDS:
            raise StudioError(f"world {self.world!r}: choose one of {', '.join(WORLDS)}")
        if self.checkpoint not in CHECKPOINTS:
            raise StudioError(f"checkpoint {self.checkpoint!r}: choose one of {', '.join(CHECKPOINTS)}")

    @property
    def tiny(self) -> bool:
        return self.world != "real"

    @property
    def label(self) -> str:
        return f"{self.checkpoint} · {WORLDS[self.world]}"


@dataclass(frozen=True)
class Subject:
    """What every image of one Generate (or one grid) shares: identity, prompt and seed."""

    identity: str
    photo: str  # path of the ID photo
    prompt: str
    seed: int
    category: str = ""

    @property
    def key(self) -> str:
        from store.records import sample_key

        return sample_key(self.identity, self.prompt, self.seed)  # a sweep's key of the same unit

    def item(self) -> tuple:
        """The sweep's sample item (index, identity, prompt, seed, key)."""
        from fastface.sweeps.dataset import IdentitySpec, PromptSpec, category_of

        return (0, IdentitySpec(self.identity, self.photo),
                PromptSpec(self.prompt, self.category or category_of(self.prompt)), int(self.seed), self.key)


@dataclass
class Outcome:
    """One generated image: the sweep's records of the sample and the config that made it."""

    config: FastFaceConfig
    sample: object  # store.records.SampleRecord
    map_records: list = field(default_factory=list)
    faces: list = field(default_factory=list)  # FaceRecords: reference, generated
    metrics: list = field(default_factory=list)  # MetricRecords: face_detected, id_sim, face_size
    seconds: float = 0.0  # generation, probe and face analysis

    @property
    def ok(self) -> bool:
        return self.sample.status == "ok"

    @property
    def error(self) -> str | None:
        return self.sample.error

    @property
    def png(self) -> bytes | None:
        return self.sample.image_png

    def image(self) -> np.ndarray | None:
        from PIL import Image

        return None if self.png is None else np.asarray(Image.open(io.BytesIO(self.png)).convert("RGB"))

    @property
    def generated_face(self):
        return next((f for f in self.faces if f.role == "generated"), None)

    @property
    def detected(self) -> bool | None:
        f = self.generated_face
        return None if f is None else bool(f.detected)

    @property
    def id_sim(self) -> float | None:
        f = self.generated_face
        return None if f is None else f.similarity

    @property
    def face_size(self) -> float | None:
        f = self.generated_face
        return None if f is None else f.area_ratio

    @property
    def box(self) -> tuple | None:
        f = self.generated_face
        return None if f is None or not f.detected else tuple(f.bbox)

    @property
    def maps(self) -> MapSet:
        if not hasattr(self, "_maps"):
            self._maps = MapSet(self.map_records)
        return self._maps

    @property
    def word_maps(self) -> WordMapSet:
        if not hasattr(self, "_word_maps"):
            self._word_maps = WordMapSet(self.map_records)
        return self._word_maps


@dataclass(frozen=True)
class Reference:
    """An ID photo the face backend accepted: its face and the aligned crop shown to the user."""

    name: str
    path: str
    image: np.ndarray
    bbox: tuple[float, float, float, float]
    crop: np.ndarray | None
    backend: str


def photo_cache() -> Path:
    """Where uploaded ID photos are kept (outside any store): ``$FASTFACE_CACHE/studio-photos``."""
    root = Path(os.environ.get("FASTFACE_CACHE", Path.home() / ".cache" / "fastface"))
    return root / "studio-photos"


def dataset_photo(identity: str, path: str | None) -> str | None:
    """A readable ID photo for a store identity: its stored path, else (the offline demo's
    identities, whose dataset folder may be gone) the shipped sample photo of that name saved
    under :func:`photo_cache`; None when neither exists."""
    if path and os.path.isfile(path) and os.access(path, os.R_OK):
        return path
    from fastface.faces.photos import sample_photos

    photos = sample_photos(group_crops=identity.startswith("t1_"))
    if identity not in photos:
        return None
    from PIL import Image

    folder = photo_cache()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"sample-{identity}.png"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        Image.fromarray(photos[identity]).save(tmp, format="PNG")
        os.replace(tmp, out)
    return str(out)


class StudioEngine:
    """One loaded pipeline and what the Studio does with it. ``lock``: one generation at a time."""

    def __init__(self, pipe, choice: ModelChoice, words=WORDS):
        from fastface.sweeps.sweep import SampleRunner, SweepSpec

        self.pipe = pipe
        self.choice = choice
        self.words = words  # the prompt words captured beside the ID maps (None: none)
        self.spec = SweepSpec(checkpoints=(choice.checkpoint,), presets=(), tiny=choice.tiny,
                              world=choice.world if choice.tiny else "random", capture=capture_of(words),
                              face_backend=pipe.analyzer.name if pipe.analyzer is not None else None)
        self.runner = SampleRunner(pipe, self.spec)
        self.lock = threading.Lock()
        self.generated = 0  # images generated by this engine (all sessions)

    @classmethod
    def load(cls, choice: ModelChoice, **kwargs) -> "StudioEngine":
        """Load the pipeline of ``choice`` (the face world: ~10 s on 2 CPU cores; real weights:
        the checks and loading of :func:`fastface.models.pipeline.load_pipeline`)."""
        from fastface.models.pipeline import load_pipeline

        world = choice.world if choice.tiny else "random"
        pipe = load_pipeline(choice.checkpoint, tiny=choice.tiny, world=world, **kwargs)
        if pipe.analyzer is None:
            raise StudioError("the pipeline has no face backend; the Studio needs one for ID photos")
        return cls(pipe, choice)

    @property
    def num_steps(self) -> int:
        return self.pipe.checkpoint.steps

    @property
    def busy(self) -> bool:
        return self.lock.locked()

    # --- ID photos ---------------------------------------------------------------------------
    def reference(self, name: str, photo) -> Reference:
        """Detect and embed the face of an ID photo (a path or an RGB array); raises
        :class:`fastface.faces.base.FaceImageError` (no face, unreadable file) with its message."""
        from fastface.faces.photos import reference_face

        image, face = reference_face(self.pipe.analyzer, photo, on_multiple=self.spec.on_multiple_faces, name=name,
                                     need_embedding=True)
        crop = None
        try:
            from fastface.faces.align import align_face

            crop = align_face(image, face.kps, image_size=224)
        except Exception:  # noqa: BLE001 the crop is only shown
            pass
        path = str(photo) if isinstance(photo, (str, os.PathLike)) else ""
        return Reference(name, path, image, tuple(float(v) for v in face.bbox), crop, self.pipe.analyzer.name)

    def upload(self, data: bytes, filename: str = "upload") -> Reference:
        """An uploaded photo: decoded, its face detected and embedded (raises FaceImageError, and
        then nothing is kept), then saved under :func:`photo_cache` by content (a path that runs
        kept from it can name)."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        from fastface.faces.base import FaceImageError

        try:
            with Image.open(io.BytesIO(data)) as im:
                image = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise FaceImageError(f"{filename}: not a readable image ({type(e).__name__}); upload a PNG or JPEG") \
                from None
        digest = hashlib.sha1(data).hexdigest()[:10]
        name = f"upload-{Path(filename).stem[:24]}-{digest}"
        ref = self.reference(name, image)
        folder = photo_cache()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            Image.fromarray(image).save(tmp, format="PNG")
            os.replace(tmp, path)
        return Reference(name, str(path), ref.image, ref.bbox, ref.crop, ref.backend)

    # --- generation ----------------------------------------------------------------------------
    def generate(self, subject: Subject, configs: Sequence[FastFaceConfig], *,
                 on_progress: Callable[[int, int, Outcome | None], None] | None = None,
                 on_wait: Callable[[], None] | None = None) -> list[Outcome]:
        """Generate one image per config for ``subject`` (same identity, prompt and seed), each
        with the probe attached; one generation at a time per engine: when another is running,
        ``on_wait()`` is called and this one waits for it. ``on_progress(done, total, outcome)``
        after each image (it may raise to stop: the images done so far are lost to the caller,
        the engine stays usable)."""
        from fastface.sweeps.sweep import RunPlan

        from probes.capture import capture

        for config in configs:
            config.validate_for_steps(self.num_steps)
        if not self.lock.acquire(blocking=False):
            if on_wait is not None:
                on_wait()
            self.lock.acquire()
        try:
            identity = self.runner.identity(subject.item()[1])
            if isinstance(identity, Exception):
                raise StudioError(f"ID photo of {subject.identity}: {identity}")
            out: list[Outcome] = []
            spec = self.spec.capture_spec()
            for i, config in enumerate(configs):
                t0 = time.perf_counter()
                plan = RunPlan("studio", self.choice.checkpoint, config.name, config)
                with capture(self.pipe, spec) as probe:
                    sample, maps, faces, metrics = self.runner.run_sample(probe, plan, subject.item())
                self.generated += 1
                out.append(Outcome(config, sample, maps, faces, metrics, time.perf_counter() - t0))
                if on_progress is not None:
                    on_progress(i + 1, len(configs), out[-1])
            return out
        finally:
            self.lock.release()
