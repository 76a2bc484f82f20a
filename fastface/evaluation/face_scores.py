"""Face metrics of a generated image against its ID photo, with one backend of
:mod:`fastface.faces` (METHOD.md section 6).

- **face_detected** (0/1): a face was found in the generated image (insightface: with the
  det-size retry 640, 576, ..., 320).  FFC = the number of 0s.
- **id_sim**: cosine similarity of the embeddings of the reference face (the first face of
  the ID photo, as the release takes) and the generated face (corrected protocol: the largest
  face found; release: ``faces[0]``, the best detection score); null when no face was found
  in the generated image.
- **face_size**: corrected: area of the generated face box clipped to the image / image area,
  null without a face; release: the release's ``get_face_ratios`` (:meth:`FaceScorer.release_face_size`).

The protocol-dependent choices are the pure functions of :mod:`fastface.evaluation.protocol`.

The model string is ``"<backend model>@<sha8>"`` over the backend's model files:
``insightface/buffalo_l@...`` (every ``*.onnx`` of the buffalo_l folder),
``dlib/face_recognition_resnet_model_v1@...`` (ResNet embedder + 68-point landmark model + MMOD CNN
detector files, the dlib version for its HOG detector, and ``DlibAnalyzer.SETTINGS``),
``skimage/lbp_frontal_face@...`` (the cascade file + the scikit-image version; detection only, no id_sim).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fastface.faces.base import BACKENDS, Face, FaceImageError, FaceModelUnavailable, NoFaceError, as_rgb
from fastface.faces.insightface import insightface_model_dir
from fastface.faces.photos import load_image, make_analyzer
from fastface.evaluation.models import model_string
from fastface.evaluation.protocol import (RELEASE_DET_SIZES, largest_box, pick_generated_face, release_crop,
                                          release_face_ratio)


def face_model_string(backend: str, *, root: str | os.PathLike | None = None) -> str:
    """The versioned model string of a face backend (no model is loaded)."""
    if backend == "insightface":
        folder = insightface_model_dir(root)
        files = sorted(folder.glob("*.onnx")) if folder.is_dir() else []
        if not files:
            raise FaceModelUnavailable(
                f"insightface buffalo_l not found: put its *.onnx files in {folder} (from insightface's "
                "buffalo_l.zip release), pass --insightface-root, or use --face-backend dlib (offline)")
        return model_string("insightface/buffalo_l", files)
    if backend == "dlib":
        import dlib

        from fastface.faces.dlib import DLIB_MODEL_FILES, DlibAnalyzer, _dlib_models

        models = _dlib_models()
        settings = ", ".join(f"{k}={v}" for k, v in DlibAnalyzer.SETTINGS.items())
        return model_string("dlib/face_recognition_resnet_model_v1", [models / f for f in DLIB_MODEL_FILES],
                            extra=f"dlib {dlib.__version__}; {settings}")
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
    face: Face | None                # the face the metrics use (protocol-dependent)
    n_faces: int
    det_size: int | None = None
    id_sim: float | None = None
    face_size: float | None = None   # clipped box area / image area (corrected)
    reference_error: str | None = None  # why no id_sim although a face was found
    faces: tuple = ()                # every face found, in the detector's order (best first)


@dataclass
class RefStatus:
    """What an ID photo gives: its reference face (``faces[0]``), or why not."""

    face: Face | None = None
    error: str | None = None         # the photo cannot be used at all (missing, unreadable, no embedding)
    no_face: bool = False            # the photo was read and no face was found in it
    fsc_crop_ok: bool = False        # the release's FSC crop of its largest box is non-empty

    @property
    def unknown(self) -> bool:
        return self.error is not None


class FaceScorer:
    """One backend: reference faces (cached per photo) and generated-face metrics."""

    def __init__(self, backend: str, *, device: str = "cpu", root: str | os.PathLike | None = None):
        self.backend = backend
        self.model_id = face_model_string(backend, root=root)
        self._device, self._root = device, root
        self._analyzer = None
        self._refs: dict[str, RefStatus] = {}

    @classmethod
    def with_analyzer(cls, analyzer, model_id: str, backend: str = "test") -> "FaceScorer":
        """A scorer around a given analyzer (tests: hand-made faces)."""
        self = cls.__new__(cls)
        self.backend, self.model_id, self._device, self._root = backend, model_id, "cpu", None
        self._analyzer, self._refs = analyzer, {}
        return self

    def _shared(self, det_size: int):
        key = (self.backend, str(self._device), None if self._root is None else str(self._root), det_size)
        if key not in _ANALYZERS:  # loading dlib / onnx models takes seconds: once per process
            _ANALYZERS[key] = make_analyzer(self.backend, device=self._device, root=key[2], det_size=det_size)
        return _ANALYZERS[key]

    @property
    def analyzer(self):
        if self._analyzer is None:
            self._analyzer = self._shared(RELEASE_DET_SIZES[0])
        return self._analyzer

    @property
    def has_embedding(self) -> bool:
        return self.analyzer.embedding_dim is not None

    def reference_status(self, photo: str | os.PathLike | np.ndarray | None, key: str | None = None) -> RefStatus:
        """The ID photo's faces (cached per path): ``faces[0]`` is the reference face (the
        release's ``extract_face_embed`` of the ID photo, with the same det-size retry)."""
        if photo is None or (isinstance(photo, str) and not photo):
            return RefStatus(error="the sample has no ID photo path")
        key = key or (str(photo) if not isinstance(photo, np.ndarray) else None)
        if key is not None and key in self._refs:
            return self._refs[key]
        label = key or "the ID image"
        try:
            image = load_image(photo) if not isinstance(photo, np.ndarray) else as_rgb(photo, label)
            faces = self.analyzer.detect(image)
        except FaceImageError as e:
            status = RefStatus(error=str(e))
        else:
            if not faces:
                status = RefStatus(error=f"{label}: no face found by the {self.analyzer.name} backend", no_face=True)
            else:
                big = largest_box(faces)
                status = RefStatus(face=faces[0], fsc_crop_ok=release_crop(image, big.bbox) is not None)
        if key is not None:
            self._refs[key] = status
        return status

    def reference(self, photo: str | os.PathLike | np.ndarray, key: str | None = None) -> Face:
        """The reference face of an ID photo (first face); raises FaceImageError."""
        if not self.has_embedding:
            raise FaceImageError(f"{key or photo}: the {self.backend} backend gives no face embedding; "
                                 "use --face-backend insightface or dlib")
        st = self.reference_status(photo, key)
        if st.face is None:
            raise (NoFaceError if st.no_face else FaceImageError)(st.error)
        return st.face

    def analyse(self, image: np.ndarray, reference: Face | None = None, *, protocol: str = "corrected") -> FaceResult:
        """Detect the generated face; id_sim against ``reference`` when both have embeddings."""
        found = self.analyzer.detect(image)
        det_size = getattr(self.analyzer, "last_det_size", None)
        if not found:
            return FaceResult(False, None, 0, det_size)
        face = pick_generated_face(found, protocol)
        sim = None
        if reference is not None and face.embedding is not None and reference.embedding is not None:
            a = np.asarray(face.embedding, np.float64)
            b = np.asarray(reference.embedding, np.float64)
            sim = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
        return FaceResult(True, face, len(found), det_size, id_sim=sim, face_size=face.area_ratio(image.shape),
                          faces=tuple(found))

    def release_face_size(self, image: np.ndarray, result: FaceResult) -> float:
        """The release's face size: insightface detects again at det size 320 only (its retry
        loop keeps the last pass); other backends have no det size and use the faces found."""
        if self.backend == "insightface":
            faces = self._shared(RELEASE_DET_SIZES[-1]).detect(image)
        else:
            faces = list(result.faces)
        return release_face_ratio(faces, image.shape)

    def reference_for(self, path: str | None) -> tuple[Face | None, str | None]:
        """(reference face, None) or (None, reason)."""
        st = self.reference_status(path)
        if st.face is not None and not self.has_embedding:
            return None, f"the {self.backend} backend gives no face embedding"
        return st.face, st.error
