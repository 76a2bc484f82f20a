"""The face-analysis protocol shared by every backend: :class:`Face`, :class:`FaceAnalyzer`, the
errors, and the helpers the backends use (``as_rgb``, ``detect_with_retry``).

Keypoints are always in insightface's order: left eye, right eye, nose tip, left mouth
corner, right mouth corner ("left" = smaller x in the image).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

DET_SIZES = (640, 576, 512, 448, 384, 320)
BACKENDS = ("insightface", "dlib", "skimage")
ON_MULTIPLE = ("error", "first", "largest")



class FaceImageError(ValueError):
    """An ID photo cannot be used; the message names the file and the fix."""


class NoFaceError(FaceImageError):
    """The backend found no face in the ID photo."""


class MultipleFacesError(FaceImageError):
    """The ID photo has several faces and ``on_multiple="error"``."""


class FaceModelUnavailable(RuntimeError):
    """A backend's package or model files are missing; the message says what to install or where."""


@dataclass(frozen=True, eq=False)  # eq=False: the generated __eq__ cannot compare numpy arrays
class Face:
    """One detected face (pixel coordinates of the analysed image)."""

    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1
    kps: np.ndarray  # [5, 2] float32, insightface order
    score: float
    embedding: np.ndarray | None = None  # L2-normalised float32; None for detection-only backends
    backend: str = ""
    kps_estimated: bool = False  # True when the keypoints come from a template

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.bbox
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)

    def area_ratio(self, image_shape: Sequence[int]) -> float:
        """Area of the bbox clipped to the image, over the image area."""
        h, w = image_shape[:2]
        x0, y0, x1, y1 = self.bbox
        cw = max(min(x1, w) - max(x0, 0.0), 0.0)
        ch = max(min(y1, h) - max(y0, 0.0), 0.0)
        return float(cw * ch / (h * w))

    def to_dict(self) -> dict:
        """JSON-serialisable form (lists and floats)."""
        return {"bbox": [float(v) for v in self.bbox], "kps": np.asarray(self.kps).astype(float).tolist(),
                "score": float(self.score), "backend": self.backend, "kps_estimated": bool(self.kps_estimated),
                "embedding": None if self.embedding is None else np.asarray(self.embedding).astype(float).tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Face":
        """Inverse of :meth:`to_dict`."""
        emb = d.get("embedding")
        return cls(tuple(float(v) for v in d["bbox"]), np.asarray(d["kps"], np.float32).reshape(5, 2),
                   float(d["score"]), None if emb is None else np.asarray(emb, np.float32),
                   d.get("backend", ""), bool(d.get("kps_estimated", False)))


@runtime_checkable
class FaceAnalyzer(Protocol):
    name: str
    embedding_dim: int | None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an HxWx3 uint8 RGB image, best first."""


def face_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _normed(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).ravel()
    return v / (np.linalg.norm(v) + 1e-12)


def as_rgb(image: np.ndarray, label: str = "the image") -> np.ndarray:
    """An HxWx3 contiguous uint8 RGB view of a greyscale / RGB / RGBA array."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or min(arr.shape[:2]) < 1:
        raise FaceImageError(f"{label}: expected an HxWx3 RGB image array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(arr[:, :, :3])


def detect_with_retry(prepare_and_detect: Callable[[int], list], sizes: Sequence[int] = DET_SIZES):
    """Call ``prepare_and_detect(size)`` for each det size, in order, until faces are found.

    Returns ``(faces, size)``, or ``([], None)`` when no size finds a face.
    """
    for size in sizes:
        faces = prepare_and_detect(size)
        if faces:
            return faces, size
    return [], None
