"""Face analysis: one protocol, three backends, the ID-photo rules and the alignment crop.

- ``insightface`` — ``FaceAnalysis(name="buffalo_l")``, the paper's model: 512-d ArcFace
  ``normed_embedding`` + 5 keypoints; detection retried with det sizes 640, 576, ..., 320
  until a face is found (METHOD.md section 6). Its weights come from GitHub releases: put
  them at ``<root>/models/buffalo_l/*.onnx`` (default root ``~/.insightface``).
- ``dlib`` — ``dlib-bin`` + ``face-recognition-models``: HOG detector, 68-point landmarks,
  ResNet 128-d embedder. Fully offline; the tiny world's default.
- ``skimage`` — scikit-image's LBP frontal-face cascade: detection only, keypoints from a
  template (``kps_estimated=True``).

Keypoints are always in insightface's order: left eye, right eye, nose tip, left mouth
corner, right mouth corner ("left" = smaller x in the image).
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from fastface.face_align import ARCFACE_DST, align_face, estimate_norm  # noqa: F401  (re-exported)

DET_SIZES = (640, 576, 512, 448, 384, 320)
BACKENDS = ("insightface", "dlib", "skimage")


class FaceImageError(ValueError):
    """An ID photo cannot be used; the message names the file and the fix."""


class NoFaceError(FaceImageError):
    pass


class MultipleFacesError(FaceImageError):
    pass


class FaceModelUnavailable(RuntimeError):
    """A backend's model files are missing; the message says where they must go."""


@dataclass(frozen=True)
class Face:
    bbox: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    kps: np.ndarray  # [5, 2] float32, insightface order
    score: float
    embedding: np.ndarray | None = None  # L2-normalised float32
    backend: str = ""
    kps_estimated: bool = False

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
        return {"bbox": [float(v) for v in self.bbox], "kps": np.asarray(self.kps).astype(float).tolist(),
                "score": float(self.score), "backend": self.backend, "kps_estimated": self.kps_estimated,
                "embedding": None if self.embedding is None else np.asarray(self.embedding).astype(float).tolist()}


class FaceAnalyzer(Protocol):
    name: str
    embedding_dim: int | None

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in an HxWx3 uint8 RGB image, best first."""


def face_similarity(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _normed(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).ravel()
    return v / (np.linalg.norm(v) + 1e-12)


# --- insightface ------------------------------------------------------------------------
def detect_with_retry(prepare_and_detect: Callable[[int], list], sizes: Sequence[int] = DET_SIZES):
    """Call ``prepare_and_detect(size)`` for each det size until faces are found.

    Returns ``(faces, size)``, or ``([], None)`` when no size finds a face.
    """
    for size in sizes:
        faces = prepare_and_detect(size)
        if faces:
            return faces, size
    return [], None


class InsightFaceAnalyzer:
    name = "insightface"
    embedding_dim = 512

    def __init__(self, *, device: str = "cpu", root: str | None = None, det_size: int = 640):
        root = Path(root or os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")).expanduser()
        model_dir = root / "models" / "buffalo_l"
        if not model_dir.is_dir() or not list(model_dir.glob("*.onnx")):
            raise FaceModelUnavailable(
                f"insightface buffalo_l not found: put its *.onnx files in {model_dir} (from insightface's "
                "buffalo_l.zip release); or use --face-backend dlib, which works offline")
        from insightface.app import FaceAnalysis
        import onnxruntime

        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self._ctx = 0 if providers[0].startswith("CUDA") else -1
        self._app = FaceAnalysis(name="buffalo_l", root=str(root), providers=providers)
        self._sizes = tuple(s for s in DET_SIZES if s <= det_size) or (det_size,)
        self.last_det_size: int | None = None

    def _at(self, size: int) -> list:
        self._app.prepare(ctx_id=self._ctx, det_size=(size, size))
        return self._app.get(self._bgr)

    def detect(self, image: np.ndarray) -> list[Face]:
        self._bgr = np.ascontiguousarray(image[:, :, ::-1])
        found, self.last_det_size = detect_with_retry(self._at, self._sizes)
        return [Face(tuple(float(v) for v in f.bbox), np.asarray(f.kps, np.float32), float(f.det_score),
                     _normed(f.normed_embedding), self.name) for f in found]


# --- dlib -------------------------------------------------------------------------------
def _dlib_models() -> Path:
    """The model folder of ``face-recognition-models`` (found without importing it: its
    ``__init__`` needs ``pkg_resources``, which new setuptools no longer ships)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelUnavailable("the dlib backend needs 'pip install dlib-bin face-recognition-models'")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class DlibAnalyzer:
    name = "dlib"
    embedding_dim = 128

    def __init__(self, *, upsample: int = 1, threshold: float = 0.25):
        import dlib

        models = _dlib_models()
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self._embed = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self._upsample = upsample
        self._threshold = threshold  # HOG score; upsampling finds small faces but also weak false positives

    def detect(self, image: np.ndarray) -> list[Face]:
        image = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)
        rects, scores, _ = self._detector.run(image, self._upsample, self._threshold)
        faces = []
        for rect, score in sorted(zip(rects, scores), key=lambda rs: -rs[1]):
            shape = self._shape(image, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            eye_a, eye_b = pts[36:42].mean(0), pts[42:48].mean(0)
            mouth_a, mouth_b = pts[48], pts[54]
            left_eye, right_eye = sorted((eye_a, eye_b), key=lambda p: p[0])
            left_mouth, right_mouth = sorted((mouth_a, mouth_b), key=lambda p: p[0])
            kps = np.stack([left_eye, right_eye, pts[30], left_mouth, right_mouth]).astype(np.float32)
            emb = _normed(self._embed.compute_face_descriptor(image, shape))
            bbox = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(bbox, kps, float(score), emb, self.name))
        return faces


# --- scikit-image -----------------------------------------------------------------------
_TEMPLATE = np.array([[0.31, 0.40], [0.69, 0.40], [0.50, 0.58], [0.35, 0.76], [0.65, 0.76]], np.float32)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class SkimageAnalyzer:
    name = "skimage"
    embedding_dim = None

    def __init__(self, *, min_neighbours: int = 1):
        from skimage import data
        from skimage.feature import Cascade

        self._cascade = Cascade(data.lbp_frontal_face_cascade_filename())
        self._min = min_neighbours

    def detect(self, image: np.ndarray) -> list[Face]:
        from skimage.color import rgb2gray

        gray = rgb2gray(image[:, :, :3])
        h, w = gray.shape
        side = max(24, min(h, w) // 10)
        dets = self._cascade.detect_multi_scale(img=gray, scale_factor=1.2, step_ratio=1,
                                                min_size=(side, side), max_size=(max(side, min(h, w) // 2),) * 2)
        boxes = [(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in dets]
        clusters: list[list] = []
        for box in sorted(boxes, key=lambda b: -(b[2] - b[0])):
            for cl in clusters:
                if _iou(cl[0], box) > 0.3:
                    cl.append(box)
                    break
            else:
                clusters.append([box])
        faces = []
        for cl in sorted(clusters, key=lambda c: (len(c), c[0][2] - c[0][0]), reverse=True):
            if len(cl) < self._min:
                continue
            x0, y0, x1, y1 = np.mean(np.array(cl, dtype=np.float64), axis=0)
            kps = _TEMPLATE * np.array([x1 - x0, y1 - y0], np.float32) + np.array([x0, y0], np.float32)
            faces.append(Face((float(x0), float(y0), float(x1), float(y1)), kps, min(1.0, len(cl) / 10.0),
                              None, self.name, kps_estimated=True))
        return faces


def make_analyzer(name: str, *, device: str = "cpu", root: str | None = None, det_size: int = 640) -> FaceAnalyzer:
    """A face analyzer by backend name: 'insightface', 'dlib' or 'skimage'."""
    if name == "insightface":
        return InsightFaceAnalyzer(device=device, root=root, det_size=det_size)
    if name == "dlib":
        return DlibAnalyzer()
    if name == "skimage":
        return SkimageAnalyzer()
    raise ValueError(f"unknown face backend {name!r}; choose one of {', '.join(BACKENDS)}")


# --- ID photos --------------------------------------------------------------------------
def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB (EXIF orientation applied)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise FaceImageError(f"{p}: no such file; give the path of an ID photo (PNG/JPEG)")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise FaceImageError(f"{p}: not a readable image ({e}); re-export it as PNG or JPEG") from e


def reference_face(analyzer: FaceAnalyzer, photo, *, on_multiple: str = "error", name: str | None = None,
                   need_embedding: bool = False) -> tuple[np.ndarray, Face]:
    """The face of an ID photo (a path or an RGB array) and the image."""
    if on_multiple not in ("error", "first", "largest"):
        raise ValueError(f"on_multiple={on_multiple!r}: choose 'error', 'first' or 'largest'")
    label = name or (str(photo) if isinstance(photo, (str, os.PathLike)) else "the ID image")
    image = load_image(photo) if isinstance(photo, (str, os.PathLike)) else np.asarray(photo, dtype=np.uint8)
    if need_embedding and analyzer.embedding_dim is None:
        raise FaceImageError(f"{label}: the {analyzer.name} backend gives no face embedding; "
                             "use --face-backend insightface or dlib for ID conditioning")
    faces = analyzer.detect(image)
    if not faces:
        raise NoFaceError(f"{label}: no face found by the {analyzer.name} backend; use a clearer, frontal "
                          "photo with one face, or another --face-backend")
    if len(faces) > 1:
        if on_multiple == "error":
            raise MultipleFacesError(f"{label}: {len(faces)} faces found; crop the photo to one person, or pass "
                                     "--on-multiple-faces first (the paper's release) or largest")
        if on_multiple == "largest":
            faces = sorted(faces, key=lambda f: -f.area)
    return image, faces[0]


def sample_photos() -> dict[str, np.ndarray]:
    """Real single-face photos that ship in installed packages (offline):

    - ``astronaut``: scikit-image's ``data.astronaut()`` (Eileen Collins, NASA, public domain);
    - ``tom_hanks``: insightface's test image ``data/images/Tom_Hanks_54745.png``, when
      insightface is installed.
    """
    from skimage import data

    photos = {"astronaut": data.astronaut()}
    spec = importlib.util.find_spec("insightface")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / "Tom_Hanks_54745.png"
        if path.is_file():
            photos["tom_hanks"] = load_image(path)
    return photos
