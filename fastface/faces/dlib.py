"""The ``dlib`` backend: ``dlib-bin`` + ``face-recognition-models``: the HOG detector on photos, the
MMOD CNN detector on small (enlarged) images, 68-point landmarks and a ResNet 128-d embedder.
Fully offline; the tiny world's default.
"""
from __future__ import annotations

import hashlib
import importlib.util
import inspect
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from fastface.faces.base import Face, FaceModelUnavailable, _normed, as_rgb

#: the dlib backend's small-image detectors (``DlibAnalyzer(small_detector=...)``)
SMALL_DETECTORS = ("cnn", "hog")
#: the files of ``face-recognition-models`` the dlib backend loads
DLIB_MODEL_FILES = ("shape_predictor_68_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat",
                    "mmod_human_face_detector.dat")


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
