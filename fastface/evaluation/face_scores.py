"""Face metrics of a generated image against its ID photo, with one backend of
:mod:`fastface.faces` (METHOD.md section 6).

- **face_detected** (0/1): a face was found in the generated image (insightface: with the
  det-size retry 640, 576, ..., 320).  FFC = the number of 0s.
- **id_sim**: cosine similarity of the embeddings of the reference face (the first face of
  the ID photo, as the release takes) and the generated face (the largest face found, as the
  capture sweeps take); null when no face was found in the generated image.
- **face_size**: area of the generated face box clipped to the image / image area; null when
  no face was found.

The model string is ``"<backend model>@<sha8>"`` over the backend's model files:
``insightface/buffalo_l@...`` (every ``*.onnx`` of the buffalo_l folder),
``dlib/face_recognition_resnet_model_v1@...`` (ResNet embedder + 68-point landmark model +
the dlib version of its HOG detector), ``skimage/lbp_frontal_face@...`` (the cascade file +
the scikit-image version; detection only, no id_sim).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastface.faces import (BACKENDS, Face, FaceImageError, FaceModelUnavailable, load_image, make_analyzer,
                            reference_face)
from fastface.evaluation.models import model_string


def insightface_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")).expanduser()


def face_model_string(backend: str, *, root: str | os.PathLike | None = None) -> str:
    """The versioned model string of a face backend (no model is loaded)."""
    if backend == "insightface":
        folder = insightface_root(root) / "models" / "buffalo_l"
        files = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
        if not files:
            raise FaceModelUnavailable(
                f"insightface buffalo_l not found: put its *.onnx files in {folder} (from insightface's "
                "buffalo_l.zip release), pass --insightface-root, or use --face-backend dlib (offline)")
        return model_string("insightface/buffalo_l", files)
    if backend == "dlib":
        import dlib

        from fastface.faces import _dlib_models

        models = _dlib_models()
        return model_string("dlib/face_recognition_resnet_model_v1",
                            [models / "dlib_face_recognition_resnet_model_v1.dat",
                             models / "shape_predictor_68_face_landmarks.dat"], extra=f"dlib {dlib.__version__}")
    if backend == "skimage":
        import skimage
        from skimage import data

        return model_string("skimage/lbp_frontal_face", [data.lbp_frontal_face_cascade_filename()],
                            extra=f"skimage {skimage.__version__}")
    raise ValueError(f"unknown face backend {backend!r}; choose one of {', '.join(BACKENDS)}")


_ANALYZERS: dict[tuple, object] = {}


@dataclass
class FaceResult:
    detected: bool
    face: Face | None
    n_faces: int
    det_size: int | None = None
    id_sim: float | None = None
    face_size: float | None = None
    reference_error: str | None = None  # why no id_sim although a face was found


class FaceScorer:
    """One backend: reference faces (cached per photo) and generated-face metrics."""

    def __init__(self, backend: str, *, device: str = "cpu", root: str | os.PathLike | None = None):
        self.backend = backend
        self.model_id = face_model_string(backend, root=root)
        self._device, self._root = device, root
        self._analyzer = None
        self._refs: dict[str, Face | Exception] = {}

    @property
    def analyzer(self):
        if self._analyzer is None:
            key = (self.backend, str(self._device), None if self._root is None else str(self._root))
            if key not in _ANALYZERS:  # loading dlib / onnx models takes seconds: once per process
                _ANALYZERS[key] = make_analyzer(self.backend, device=self._device, root=key[2])
            self._analyzer = _ANALYZERS[key]
        return self._analyzer

    @property
    def has_embedding(self) -> bool:
        return self.analyzer.embedding_dim is not None

    def reference(self, photo: str | os.PathLike | np.ndarray, key: str | None = None) -> Face:
        """The reference face of an ID photo (first face); raises FaceImageError (cached)."""
        key = key or (str(photo) if not isinstance(photo, np.ndarray) else None)
        if key is not None and key in self._refs:
            ref = self._refs[key]
            if isinstance(ref, Exception):
                raise ref
            return ref
        try:
            image = load_image(photo) if not isinstance(photo, np.ndarray) else photo
            _, face = reference_face(self.analyzer, image, on_multiple="first", name=key,
                                     need_embedding=self.has_embedding)
        except FaceImageError as e:
            if key is not None:
                self._refs[key] = e
            raise
        if key is not None:
            self._refs[key] = face
        return face

    def analyse(self, image: np.ndarray, reference: Face | None = None) -> FaceResult:
        """Detect the generated face; id_sim against ``reference`` when both have embeddings."""
        found = self.analyzer.detect(image)
        det_size = getattr(self.analyzer, "last_det_size", None)
        if not found:
            return FaceResult(False, None, 0, det_size)
        face = max(found, key=lambda f: f.area)
        sim = None
        if reference is not None and face.embedding is not None and reference.embedding is not None:
            a = np.asarray(face.embedding, np.float64)
            b = np.asarray(reference.embedding, np.float64)
            sim = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        return FaceResult(True, face, len(found), det_size, id_sim=sim, face_size=face.area_ratio(image.shape))

    def reference_for(self, path: str | None) -> tuple[Face | None, str | None]:
        """(reference face, None) or (None, reason)."""
        if not path:
            return None, "the sample has no ID photo path"
        try:
            return self.reference(path), None
        except FaceImageError as e:
            return None, str(e)
