"""Face analysis: one protocol, three backends, the ID-photo rules and the alignment crop.

- ``insightface``: ``FaceAnalysis(name="buffalo_l")``, the paper's model. It gives a 512-d
  ArcFace ``normed_embedding`` and 5 keypoints. Detection is retried with det sizes 640, 576,
  ..., 320 until a face is found (METHOD.md section 6). Its weights come from GitHub releases,
  so put them at ``<root>/models/buffalo_l/*.onnx`` (default root ``~/.insightface``).
- ``dlib``: ``dlib-bin`` + ``face-recognition-models``: the HOG detector on photos, the MMOD
  CNN detector on small (enlarged) images, 68-point landmarks and a ResNet 128-d embedder.
  Fully offline; the tiny world's default.
- ``skimage``: scikit-image's LBP frontal-face cascade. Detection only; its keypoints come
  from a template (``kps_estimated=True``).

Keypoints are always in insightface's order: left eye, right eye, nose tip, left mouth
corner, right mouth corner ("left" = smaller x in the image).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from fastface.face_align import (  # noqa: F401 (re-exported)
    ARCFACE_DST, align_face, box_iou, cluster_boxes, estimate_norm, template_keypoints,
)

DET_SIZES = (640, 576, 512, 448, 384, 320)
BACKENDS = ("insightface", "dlib", "skimage")
ON_MULTIPLE = ("error", "first", "largest")
#: the dlib backend's small-image detectors (``DlibAnalyzer(small_detector=...)``)
SMALL_DETECTORS = ("cnn", "hog")
#: the files of ``face-recognition-models`` the dlib backend loads
DLIB_MODEL_FILES = ("shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat",
                    "mmod_human_face_detector.dat")


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


# --- insightface ------------------------------------------------------------------------
def detect_with_retry(prepare_and_detect: Callable[[int], list], sizes: Sequence[int] = DET_SIZES):
    """Call ``prepare_and_detect(size)`` for each det size, in order, until faces are found.

    Returns ``(faces, size)``, or ``([], None)`` when no size finds a face.
    """
    for size in sizes:
        faces = prepare_and_detect(size)
        if faces:
            return faces, size
    return [], None


def onnx_providers(device: str, available: Sequence[str]) -> list:
    """onnxruntime providers for ``device``: CUDA first for ``cuda[:N]`` when available."""
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in available:
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def insightface_model_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root>/models/buffalo_l`` (root: argument, ``$INSIGHTFACE_HOME`` or ``~/.insightface``)."""
    base = Path(root or os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")).expanduser()
    return base / "models" / "buffalo_l"


class InsightFaceAnalyzer:
    """insightface ``buffalo_l`` (SCRFD-10G detector + ArcFace R50 ``w600k_r50``), 512-d."""

    name = "insightface"
    embedding_dim = 512

    def __init__(self, *, device: str = "cpu", root: str | None = None, det_size: int = 640):
        model_dir = insightface_model_dir(root)
        if not model_dir.is_dir() or not list(model_dir.glob("*.onnx")):
            nested = sorted(model_dir.glob("*/*.onnx")) if model_dir.is_dir() else []
            hint = f" (found {nested[0].parent}: move its files up one folder)" if nested else ""
            raise FaceModelUnavailable(
                f"insightface buffalo_l not found: put its *.onnx files in {model_dir}{hint} (from insightface's "
                "buffalo_l.zip GitHub release; nothing is downloaded here), or use --face-backend dlib, "
                "which works offline")
        try:
            import onnxruntime
            from insightface.app import FaceAnalysis
        except ImportError as e:
            raise FaceModelUnavailable(f"the insightface backend needs 'pip install insightface onnxruntime' "
                                       f"({e}); or use --face-backend dlib") from e
        providers = onnx_providers(device, onnxruntime.get_available_providers())
        self._ctx = 0 if providers[0] != "CPUExecutionProvider" else -1
        # The folder exists, so FaceAnalysis does not download; keypoints come from the detector. Its path, not
        # the name "buffalo_l": insightface 2.1 takes a name that is a folder of the working directory first.
        try:
            self._app = FaceAnalysis(name=str(model_dir.resolve()), root=str(model_dir.parent.parent),
                                     providers=providers, allowed_modules=["detection", "recognition"])
        except Exception as e:  # noqa: BLE001 - a bare assert (no detector) or onnxruntime's error on a bad file
            raise FaceModelUnavailable(f"insightface could not load buffalo_l from {model_dir}: "
                                       f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no face detector'}"
                                       "; replace its *.onnx files with those of buffalo_l.zip") from e
        recogniser = self._app.models.get("recognition")
        if recogniser is None:
            raise FaceModelUnavailable(f"insightface found no recognition model (w600k_r50.onnx) in {model_dir}: "
                                       "replace its *.onnx files with those of buffalo_l.zip")
        width = recogniser.output_shape[-1]
        self.embedding_dim = width if isinstance(width, int) else type(self).embedding_dim
        self._sizes = tuple(s for s in DET_SIZES if s <= det_size) or (det_size,)
        self.last_det_size: int | None = None

    def detect(self, image: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(as_rgb(image)[:, :, ::-1])  # insightface works on cv2 (BGR) images

        def at(size: int) -> list:
            self._app.prepare(ctx_id=self._ctx, det_size=(size, size))
            return self._app.get(bgr)

        found, self.last_det_size = detect_with_retry(at, self._sizes)
        return [Face(tuple(float(v) for v in f.bbox[:4]), np.asarray(f.kps, np.float32).reshape(5, 2),
                     float(f.det_score), None if f.embedding is None else _normed(f.normed_embedding), self.name)
                for f in found]


# --- dlib -------------------------------------------------------------------------------
def _dlib_models() -> Path:
    """The model folder of ``face-recognition-models``.

    Uses the package's own ``pose_predictor_model_location()`` when it imports, else finds the
    folder without importing it (its ``__init__`` needs ``pkg_resources``, which setuptools >= 81
    no longer ships).
    """
    try:
        import face_recognition_models as frm

        folder = Path(frm.pose_predictor_model_location()).parent
    except ImportError:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise FaceModelUnavailable("the dlib backend needs 'pip install dlib-bin face-recognition-models'")
        folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    for file in DLIB_MODEL_FILES:
        if not (folder / file).is_file():
            raise FaceModelUnavailable(f"{folder / file} is missing: reinstall face-recognition-models")
    return folder


class DlibAnalyzer:
    """dlib face detector + 68-point landmarks + ResNet embedder (128-d), fully offline.

    Photos (shorter side >= ``small_side``, 100 px) go to dlib's HOG detector, with ``upsample=1``
    and ``threshold`` (the HOG SVM score a detection needs; dlib's own default is 0) raised to 0.25:
    the astronaut's mission patch scores 0.12, the weakest real face of insightface's ``t1.jpg``
    group photo (a tilted head) 0.37.

    Small images (e.g. the face world's 64x64 generations) are first enlarged (bicubic) by the
    integer factor that brings the shorter side to at least ``target_side`` (256); boxes and
    keypoints are given back in the original pixels (a 20 px face in a 64 px image is otherwise
    under every detector's window). On them ``small_detector`` runs: ``"cnn"`` (the default), dlib's
    MMOD CNN face detector (``mmod_human_face_detector.dat``, the ``cnn`` model of the
    face_recognition package), no upsampling, a detection needing confidence >= ``small_threshold``
    (default 0, dlib's own; it reports nothing below 0); or ``"hog"``, the HOG detector with
    ``upsample`` at score >= ``small_threshold``. One detector for every small image, so that face
    sizes within and across runs share one box convention. ``Face.score`` is that detector's score.

    Results for small images are remembered (the last ``SMALL_MEMO`` images, per settings, keyed by
    the pixels' digest): a capture that records the faces of its images and the evaluation that
    follows in the same process (``fastface demo``) run the CNN once per image, not twice.

    Why the CNN on small images: an enlarged image is soft (no detail finer than its source
    pixels), which lowers every HOG score, and HOG misses turned, tilted and squinting faces. On the
    face world's generated images (128 per run, the benchmark's prompts) HOG at 0 found a face in
    114 (baseline) and 106 (ff-am2) of 128, the CNN in 125 and 121. Both were calibrated on the
    face world's scenes (final geometry) after its autoencoder
    (``tests/integration/test_face_detector_calibration.py``): the 480 hard negatives (48 of each of
    ten kinds: backgrounds; the face crop shuffled in 8/16/24 px blocks, a head's colours and outline
    without a face's structure; uniform noise; each also through the autoencoder) may give at most
    3 detections in any kind and 6 in all. The CNN at 0 gives 2 (both 24 px-block shuffles, where a
    block can hold most of a face), HOG at 0 gives 5 (at -0.15 to -0.05, 7); both find the pasted
    real faces at their box in 24 of 24 close-ups and 24 of 24 wide shots (the CNN's lowest
    confidence there: 0.84). The CNN costs ~0.3 s per enlarged image on one CPU core (HOG ~0.04 s).
    """

    name = "dlib"
    embedding_dim = 128
    #: the constructor's defaults (set below the class), also part of the backend's model string
    SETTINGS: dict[str, float] = {}
    #: how many small images' faces are remembered, over all instances
    SMALL_MEMO = 1024
    _memo: "OrderedDict[tuple, list[Face]]" = OrderedDict()
    _memo_lock = threading.Lock()

    def __init__(self, *, upsample: int = 1, threshold: float = 0.25, small_side: int = 100,
                 target_side: int = 256, small_detector: str = "cnn", small_threshold: float = 0.0):
        try:
            import dlib
        except ImportError as e:
            raise FaceModelUnavailable("the dlib backend needs 'pip install dlib-bin face-recognition-models'") from e
        if small_detector not in SMALL_DETECTORS:
            raise ValueError(f"small_detector={small_detector!r}: choose one of {', '.join(SMALL_DETECTORS)}")
        models = _dlib_models()
        self._detector = dlib.get_frontal_face_detector()
        self._cnn = (dlib.cnn_face_detection_model_v1(str(models / "mmod_human_face_detector.dat"))
                     if small_detector == "cnn" else None)
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self._embed = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self._upsample, self._threshold = upsample, threshold
        self._small_side, self._target_side = small_side, target_side
        self._small_threshold = small_threshold
        self._small_detector = small_detector
        self._settings = (upsample, threshold, small_side, target_side, small_detector, small_threshold)

    def enlargement(self, shape: Sequence[int]) -> int:
        """The integer factor an image of ``shape`` is enlarged by before detection (1: none)."""
        short = min(shape[:2])
        return 1 if short >= self._small_side else -(-self._target_side // short)

    def detect(self, image: np.ndarray) -> list[Face]:
        image = as_rgb(image)
        k = self.enlargement(image.shape)
        if k == 1:
            return self._faces(image, self._hog(image, self._threshold))
        key = (self._settings, image.shape, hashlib.sha1(image.tobytes()).hexdigest())
        memo = DlibAnalyzer._memo
        with DlibAnalyzer._memo_lock:
            faces = memo.get(key)
            if faces is not None:
                memo.move_to_end(key)
        if faces is None:
            faces = self._detect_small(image, k)
            with DlibAnalyzer._memo_lock:
                memo[key] = faces
                while len(memo) > self.SMALL_MEMO:
                    memo.popitem(last=False)
        return [replace(f, kps=f.kps.copy(), embedding=f.embedding.copy()) for f in faces]

    def _detect_small(self, image: np.ndarray, k: int) -> list[Face]:
        from PIL import Image

        h, w = image.shape[:2]
        image = np.asarray(Image.fromarray(image).resize((w * k, h * k), Image.BICUBIC))
        if self._small_detector == "cnn":
            found = [(d.rect, d.confidence) for d in self._cnn(image, 0) if d.confidence >= self._small_threshold]
        else:
            found = self._hog(image, self._small_threshold)
        return [Face(tuple(v / k for v in f.bbox), f.kps / k, f.score, f.embedding, f.backend)
                for f in self._faces(image, found)]

    def _hog(self, image: np.ndarray, threshold: float) -> list:
        rects, scores, _ = self._detector.run(image, self._upsample, threshold)
        return list(zip(rects, scores))

    def _faces(self, image: np.ndarray, found: list) -> list[Face]:
        """Landmarks, keypoints and embedding for each ``(rect, score)``, best score first."""
        faces = []
        for rect, score in sorted(found, key=lambda rs: -rs[1]):
            shape = self._shape(image, rect)
            pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            left_eye, right_eye = sorted((pts[36:42].mean(0), pts[42:48].mean(0)), key=lambda p: p[0])
            left_mouth, right_mouth = sorted((pts[48], pts[54]), key=lambda p: p[0])
            kps = np.stack([left_eye, right_eye, pts[30], left_mouth, right_mouth]).astype(np.float32)
            emb = _normed(self._embed.compute_face_descriptor(image, shape))
            bbox = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(bbox, kps, float(score), emb, self.name))
        return faces


DlibAnalyzer.SETTINGS = {name: p.default for name, p in inspect.signature(DlibAnalyzer.__init__).parameters.items()
                         if p.kind is p.KEYWORD_ONLY}


# --- scikit-image -----------------------------------------------------------------------
class SkimageAnalyzer:
    """scikit-image LBP frontal-face cascade; detection only, template keypoints.

    Raw cascade windows are merged with :func:`cluster_boxes`; a face is a cluster of at least
    ``min_neighbours`` windows holding more than ``min_relative`` of the biggest cluster's
    windows, and its score is that fraction (1.0 for the best face). Images are searched at
    most ``max_side`` pixels wide (faces from 8 % of the short side up to the whole image).
    """

    name = "skimage"
    embedding_dim = None

    def __init__(self, *, min_neighbours: int = 2, min_relative: float = 0.5, max_side: int = 640):
        from skimage import data
        from skimage.feature import Cascade

        self._cascade = Cascade(data.lbp_frontal_face_cascade_filename())
        self._min, self._rel, self._max_side = min_neighbours, min_relative, max_side

    def detect(self, image: np.ndarray) -> list[Face]:
        from skimage.color import rgb2gray
        from skimage.transform import rescale

        gray = rgb2gray(as_rgb(image))
        scale = min(1.0, self._max_side / max(gray.shape))
        if scale < 1.0:
            gray = rescale(gray, scale, anti_aliasing=True)
        h, w = gray.shape
        side = max(24, round(0.08 * min(h, w)))
        if side > min(h, w):
            return []
        dets = self._cascade.detect_multi_scale(img=gray, scale_factor=1.2, step_ratio=1, min_size=(side, side),
                                                max_size=(h, w), min_neighbor_number=1,
                                                intersection_score_threshold=1.01)  # raw windows, merged below
        clusters = cluster_boxes([(d["c"], d["r"], d["c"] + d["width"], d["r"] + d["height"]) for d in dets])
        best = clusters[0][1] if clusters else 0
        faces = []
        for box, n in clusters:
            if n < self._min or n <= self._rel * best:
                continue
            bbox = tuple(float(v) / scale for v in box)
            faces.append(Face(bbox, template_keypoints(bbox), n / best, None, self.name, kps_estimated=True))
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
    """An image file as HxWx3 uint8 RGB (EXIF orientation applied, alpha/greyscale converted)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path).expanduser()
    if p.is_dir():
        raise FaceImageError(f"{p}: is a folder, not an image; give the path of one ID photo (PNG/JPEG)")
    if not p.is_file():
        raise FaceImageError(f"{p}: no such file; check the path of the ID photo (PNG/JPEG)")
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                im = im.convert("RGBA")
                flat = Image.new("RGBA", im.size, (255, 255, 255, 255))  # transparent -> white
                im = Image.alpha_composite(flat, im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError as e:
        raise FaceImageError(f"{p}: not a readable image (not an image format PIL knows); "
                             "save the ID photo as PNG or JPEG") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise FaceImageError(f"{p}: not a readable image, the file is corrupt or truncated ({e}); "
                             "re-download it or re-export it as PNG or JPEG") from e


def reference_face(analyzer: FaceAnalyzer, photo, *, on_multiple: str = "error", name: str | None = None,
                   need_embedding: bool = False) -> tuple[np.ndarray, Face]:
    """The ID photo (a path or an RGB array) as an RGB array, and its face.

    ``on_multiple``: "error" (default), "first" (the analyzer's best face, as the paper's
    release takes) or "largest" (the biggest box). ``name`` labels an array in messages.
    """
    if on_multiple not in ON_MULTIPLE:
        raise ValueError(f"on_multiple={on_multiple!r}: choose one of {', '.join(ON_MULTIPLE)}")
    is_path = isinstance(photo, (str, os.PathLike))
    label = name or (str(photo) if is_path else "the ID image")
    if need_embedding and analyzer.embedding_dim is None:
        raise FaceImageError(f"{label}: the {analyzer.name} backend gives no face embedding; "
                             "use --face-backend insightface or dlib for ID conditioning")
    image = load_image(photo) if is_path else as_rgb(photo, label)
    faces = analyzer.detect(image)
    if not faces:
        raise NoFaceError(f"{label}: no face found by the {analyzer.name} backend; use a clearer, frontal, "
                          "well-lit photo with one face, or another --face-backend")
    if len(faces) > 1:
        if on_multiple == "error":
            raise MultipleFacesError(f"{label}: {len(faces)} faces found by the {analyzer.name} backend; crop the "
                                     "photo to one person, or pass --on-multiple-faces first (the paper's "
                                     "release: the detector's best face) or largest (the biggest face)")
        if on_multiple == "largest":
            return image, max(faces, key=lambda f: f.area)
    return image, faces[0]


# --- offline sample photos --------------------------------------------------------------
# Single-face crops (x0, y0, x1, y1) of insightface's group photo data/images/t1.jpg
# (1280x886): each face box as dlib finds it, widened by 60 % on every side.
T1_CROPS = {
    "t1_far_left": (2, 218, 239, 454),
    "t1_centre": (385, 230, 621, 466),
    "t1_centre_right": (659, 302, 896, 538),
    "t1_far_right": (1053, 218, 1280, 454),
    "t1_back_right": (792, 0, 1076, 273),
    "t1_back_left": (222, 123, 417, 318),
}


def _insightface_image(filename: str) -> Path | None:
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / filename
    return path if path.is_file() else None


@functools.lru_cache(maxsize=2)
def _sample_photos(group_crops: bool) -> dict[str, np.ndarray]:
    from skimage import data

    photos = {"astronaut": data.astronaut()}
    hanks = _insightface_image("Tom_Hanks_54745.png")
    if hanks is not None:
        photos["tom_hanks"] = load_image(hanks)
    group = _insightface_image("t1.jpg") if group_crops else None
    if group is not None:
        t1 = load_image(group)
        for key, (x0, y0, x1, y1) in T1_CROPS.items():
            photos[key] = np.ascontiguousarray(t1[y0:y1, x0:x1])
    return photos


def sample_photos(group_crops: bool = False) -> dict[str, np.ndarray]:
    """Real single-face photos (HxWx3 uint8 RGB) that ship in installed packages; offline.

    - ``astronaut``: scikit-image's ``data.astronaut()`` (512x512), NASA portrait of
      astronaut Eileen Collins, public domain.
    - ``tom_hanks``: insightface's test image ``insightface/data/images/Tom_Hanks_54745.png``,
      a 112x112 ArcFace-aligned face crop (needs ``insightface`` installed).
    - with ``group_crops=True`` also ``t1_*``: six crops of different people from insightface's
      group test photo ``insightface/data/images/t1.jpg`` (a cast photo of the TV series
      "Friends"), see :data:`T1_CROPS`; each holds exactly one face that the dlib backend finds.

    A horizontally flipped photo is not a second identity. Copies are returned.
    """
    return {k: v.copy() for k, v in _sample_photos(bool(group_crops)).items()}
