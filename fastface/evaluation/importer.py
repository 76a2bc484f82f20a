"""``fastface import``: an existing folder of generations as a run of the store.

The folder holds one image per (identity, prompt) pair of a dataset, named by a pattern
(default ``{index}.png``, ``index`` = the position in :meth:`fastface.sweeps.dataset.Dataset.pairs`:
identities outer, prompts inner).  The run's FastFaceConfig JSON (a config file, or the
``.json`` that ``fastface generate`` writes beside its PNG) gives the preset and scales.

Per pair, one sample is committed atomically (``StoreWriter.write_sample``):

- the image is there and decodes completely -> an ok sample (PNG bytes kept as they are;
  other formats re-encoded as PNG), its reference and generated faces analysed with the
  chosen backend (``faces`` rows) and the face metrics ``face_detected``, ``face_size`` and
  ``id_sim`` written with the same versioned model string ``fastface evaluate`` uses (so it
  skips them); no attention maps;
- the file is missing -> a failed sample, error "image file missing: ...";
- the file is corrupt (truncated, bad CRC, not an image) -> a failed sample with the decoder's
  error.

Files that match no pair are reported and ignored.  The run id is deterministic (config,
checkpoint, dataset, folder, pattern, seeds), so running the same import again resumes it:
committed samples are skipped; failed ones stay failed (the store keeps the first commit of a
sample: import again under a new ``--run-id`` after fixing files).

Pairing: ``--order sorted|listdir|FILE`` fixes the identity order behind ``index``
(:mod:`fastface.evaluation.pairing`), and the import prints a sanity check: the share of
generated faces closer to their own ID photo than to the other identities', with a loud
warning when it is low.  ``--protocol`` (release | corrected) picks the face-metric
definitions and tags their model strings (``fastface evaluate --protocol`` then skips them).

Seeds: ``--seed-mode constant`` (default) records the one generator seed of the paper's release
(50, consumed sequentially over the dataset) on every sample; ``per-sample`` records
``seed + index`` as ``fastface capture`` uses.  Paired statistics match samples on (identity,
prompt, seed), so runs only pair with runs seeded the same way.
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from fastface.method.config import ConfigError, FastFaceConfig

PATTERN_FIELDS = ("index", "identity", "identity_index", "prompt_index")


class ImportFolderError(ValueError):
    """The import cannot start (bad folder, pattern, config); the message says why."""


@dataclass
class ImportSummary:
    run_id: str
    n_pairs: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_skipped: int = 0          # already committed (resume)
    errors: list[str] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pairing: object = None      # pairing.PairingReport of the images imported now

    def lines(self) -> list[str]:
        out = [f"run {self.run_id}: {self.n_pairs} pairs; imported {self.n_ok} ok + {self.n_failed} failed; "
               f"{self.n_skipped} already in the store ({self.seconds:.1f} s)"]
        out += [f"  failed: {e}" for e in self.errors[:50]]
        if len(self.errors) > 50:
            out.append(f"  ... and {len(self.errors) - 50} more failed samples")
        if self.extra_files:
            shown = ", ".join(self.extra_files[:20])
            more = f" (+{len(self.extra_files) - 20} more)" if len(self.extra_files) > 20 else ""
            out.append(f"extra files ignored ({len(self.extra_files)}): {shown}{more}")
        if self.pairing is not None:
            out += self.pairing.lines()
        return out


def read_config(path: str | Path) -> tuple[FastFaceConfig, dict]:
    """A FastFaceConfig from a config file or a ``fastface generate`` sidecar
    (``{"config": {...}, "checkpoint": {...}}``); returns (config, sidecar extras)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as e:
        raise ConfigError(f"--config {p}: cannot be read ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"--config {p}: not valid JSON ({e})") from e
    extras = {}
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        extras = {k: v for k, v in data.items() if k != "config"}
        data = data["config"]
    try:
        return FastFaceConfig.from_dict(data), extras
    except ConfigError as e:
        raise ConfigError(f"--config {p}: {e}") from e


def expected_name(pattern: str, index: int, identity: str, identity_index: int, prompt_index: int) -> str:
    try:
        return pattern.format(index=index, identity=identity, identity_index=identity_index, prompt_index=prompt_index)
    except (KeyError, IndexError, ValueError) as e:
        raise ImportFolderError(f"--pattern {pattern!r}: {e}; use the fields {', '.join(PATTERN_FIELDS)}, "
                           "e.g. '{index}.png' or '{identity}/{prompt_index:03d}.png'") from e


def import_run_id(checkpoint: str, config: FastFaceConfig, extra: dict) -> str:
    digest = hashlib.sha1(json.dumps({"config": config.to_dict(), **extra}, sort_keys=True,
                                     default=str).encode()).hexdigest()[:10]
    return f"import-{checkpoint}-{config.name}-ip{config.ip_scale:g}-lora{config.lora_scale:g}-{digest}"


def read_image_file(path: Path) -> tuple[bytes, np.ndarray]:
    """(PNG bytes, RGB array) of an image file; raises ValueError naming the problem."""
    from PIL import Image, ImageFile, UnidentifiedImageError

    data = path.read_bytes()
    if not data:
        raise ValueError("empty file")
    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file must fail, whatever a library set
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            im.verify()  # chunk CRCs (PNG) and structure
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decodes every pixel: truncated data fails here
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise ValueError(f"{type(e).__name__}: {e}") from e
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    if fmt != "PNG":
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        data = buf.getvalue()
    return data, rgb


def _all_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def import_folder(store_path, images: str | Path, config_path: str | Path, dataset, *, run_id: str | None = None,
                  checkpoint: str | None = None, pattern: str = "{index}.png", seed: int = 50,
                  seed_mode: str = "constant", face_backend: str = "insightface", device: str = "cpu",
                  insightface_root: str | None = None, name: str | None = None, progress: bool = True,
                  echo: Callable[[str], None] = print, writer=None, order: str = "sorted",
                  protocol: str = "corrected") -> ImportSummary:
    """Import (or resume importing) a folder of generations as one run; returns counts."""
    from tqdm import tqdm

    from fastface.evaluation.face_scores import FaceScorer
    from fastface.evaluation.models import check_device
    from fastface.evaluation.pairing import ORDERS, PairingError, identity_names_in_order, pairing_report, reorder
    from fastface.evaluation.protocol import Protocol
    from fastface.sweeps.sweep import package_versions
    from store.records import FaceRecord, MetricRecord, RunRecord, SampleRecord, sample_key, utcnow
    from store.writer import StoreWriter

    t0 = time.perf_counter()
    folder = Path(images)
    if not folder.is_dir():
        raise ImportFolderError(f"--images {folder}: not a folder of generated images")
    if seed_mode not in ("constant", "per-sample"):
        raise ImportFolderError(f"--seed-mode {seed_mode!r}: choose 'constant' or 'per-sample'")
    proto = Protocol(protocol)
    check_device(device)
    dataset = reorder(dataset, order)
    names = [i.name for i in dataset.identities]
    alternatives = {}
    for k in ORDERS:  # the other orders the pairing check compares with (when they apply)
        if k != order:
            try:
                alternatives[k] = identity_names_in_order(dataset, k)
            except PairingError:
                pass
    config, extras = read_config(config_path)
    ck = extras.get("checkpoint")
    checkpoint = checkpoint or (ck.get("name") if isinstance(ck, dict) else ck) or "unknown"
    pairs = dataset.pairs()
    n_prompts = len(dataset.prompts)
    plan = []
    for index, ident, prompt in pairs:
        s = seed if seed_mode == "constant" else seed + index
        fname = expected_name(pattern, index, ident.name, index // n_prompts, index % n_prompts)
        plan.append((index, ident, prompt, s, sample_key(ident.name, prompt.text, s), fname))
    expected = {p[5] for p in plan}
    if len(expected) != len(plan):
        raise ImportFolderError(f"--pattern {pattern!r} gives the same file name to several pairs; include {{index}} "
                           "or {identity} and {prompt_index}")
    face = FaceScorer(face_backend, device=device, root=insightface_root)
    extra = {"checkpoint": checkpoint, "images": str(folder.resolve()), "dataset": dataset.source,
             "pairs": [(p[1].name, p[2].text) for p in plan], "pattern": pattern, "seed": seed,
             "seed_mode": seed_mode, "face_backend": face.model_id}
    run_id = run_id or import_run_id(checkpoint, config, extra)
    notes = json.dumps({"import": {**{k: v for k, v in extra.items() if k != "pairs"}, "order": order,
                                   "identity_order": names, "protocol": proto.name}, "sidecar": extras},
                       default=str)  # the order is in the run id through the pairs
    own_writer = writer is None
    writer = writer or StoreWriter(store_path, worker_id="import")
    summary = ImportSummary(run_id=run_id, n_pairs=len(plan))
    summary.extra_files = sorted(_all_files(folder) - expected)
    embeddings: dict[int, np.ndarray] = {}
    try:
        writer.begin_run(RunRecord(run_id=run_id, config=config.to_dict(), name=name or f"import:{folder.name}",
                                   preset=config.name, checkpoint=checkpoint, ip_scale=config.ip_scale,
                                   lora_scale=config.lora_scale, seed=seed, capture_spec=None,
                                   package_versions=package_versions(), notes=notes))
        done = writer.done_sample_keys(run_id)
        todo = [p for p in plan if p[4] not in done]
        summary.n_skipped = len(plan) - len(todo)
        bar = tqdm(total=len(todo), unit="image", desc="import", dynamic_ncols=True, disable=not progress)
        try:
            for index, ident, prompt, s, key, fname in todo:
                started = utcnow()
                base = dict(sample_key=key, identity=ident.name, prompt=prompt.text, category=prompt.category,
                            seed=s, id_image_path=ident.path, sample_index=index, started_at=started)
                path = folder / fname
                faces, metrics = [], []
                if not path.is_file():
                    error = (f"image file missing: {path} (pair {index}: identity {ident.name!r}, "
                             f"prompt {prompt.text!r})")
                    sample = SampleRecord(**base, status="failed", error=error, finished_at=utcnow())
                else:
                    try:
                        png, rgb = read_image_file(path)
                    except (ValueError, OSError) as e:
                        error = f"image file unreadable: {path}: {e}"
                        sample = SampleRecord(**base, status="failed", error=error, finished_at=utcnow())
                    else:
                        error = None
                        faces, metrics, emb = _faces(face, proto, ident.path, rgb, FaceRecord, MetricRecord)
                        if emb is not None:
                            embeddings[index] = emb
                        sample = SampleRecord(**base, status="ok", image_png=png, width=int(rgb.shape[1]),
                                              height=int(rgb.shape[0]), finished_at=utcnow())
                if writer.write_sample(run_id, sample, faces=faces, metrics=metrics):
                    if error:
                        summary.n_failed += 1
                        summary.errors.append(error)
                    else:
                        summary.n_ok += 1
                else:
                    summary.n_skipped += 1  # another process committed it meanwhile
                bar.update(1)
        finally:
            bar.close()
        if face.has_embedding:
            refs = {i.name: face.reference_status(i.path).face for i in dataset.identities}
            summary.pairing = pairing_report(embeddings, {k: f.embedding for k, f in refs.items()
                                                          if f is not None and f.embedding is not None},
                                             names, n_prompts, order, alternatives)
        n_done = len(writer.done_sample_keys(run_id))
        writer.set_status(run_id, "completed" if n_done >= len(plan) else "running", n_done=n_done,
                          n_failed=summary.n_failed, n_total=len(plan),
                          message=f"imported from {folder}" + (f"; {len(summary.extra_files)} extra files ignored"
                                                               if summary.extra_files else ""))
    except BaseException as e:
        if (writer.layout.run_dir(run_id) / "run.parquet").exists():
            writer.set_status(run_id, "interrupted", message=f"{type(e).__name__}: {e}"[:500], n_total=len(plan))
        raise
    finally:
        if own_writer:
            writer.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _faces(face, proto, id_path: str, rgb: np.ndarray, FaceRecord, MetricRecord) -> tuple[list, list, object]:
    """faces rows (reference + generated), the face metrics of one imported image under the
    protocol ``proto`` (the definitions of ``Evaluator`` for id / ffc / face-size), and the
    generated face's embedding (for the pairing check)."""
    model = proto.tag(face.model_id)
    rows, metrics = [], []
    ref = face.reference_status(id_path)
    readable = ref.face is not None or ref.no_face
    if ref.face is not None:
        r = ref.face
        rows.append(FaceRecord(role="reference", detected=True, backend=model, n_faces=1, bbox=r.bbox, kps=r.kps,
                               score=r.score, embedding=r.embedding))
    else:
        rows.append(FaceRecord(role="reference", detected=False, backend=model, n_faces=0))
    res = face.analyse(rgb, ref.face, protocol=proto.name)
    if res.detected:
        f = res.face
        rows.append(FaceRecord(role="generated", detected=True, backend=model, det_size=res.det_size,
                               n_faces=res.n_faces, bbox=f.bbox, kps=f.kps, score=f.score, area_ratio=res.face_size,
                               embedding=f.embedding, similarity=res.id_sim))
    else:
        rows.append(FaceRecord(role="generated", detected=False, backend=model, det_size=res.det_size, n_faces=0))
    if not proto.release:
        metrics.append(MetricRecord("face_detected", float(res.detected), model))
        metrics.append(MetricRecord("face_size", res.face_size, model))
    else:
        if readable:  # the release counts an ID photo without a face as a face failure
            metrics.append(MetricRecord("face_detected", float(res.detected and ref.face is not None), model))
        metrics.append(MetricRecord("face_size", face.release_face_size(rgb, res), model))
    if face.has_embedding:
        if ref.face is not None:
            metrics.append(MetricRecord("id_sim", res.id_sim, model))
        elif proto.release and ref.no_face:
            metrics.append(MetricRecord("id_sim", None, model))
    emb = res.face.embedding if res.detected and res.face.embedding is not None else None
    return rows, metrics, emb
