"""The ``insightface`` backend: ``FaceAnalysis(name="buffalo_l")``, the paper's model. It gives a
512-d ArcFace ``normed_embedding`` and 5 keypoints. Detection is retried with det sizes 640, 576,
..., 320 until a face is found (METHOD.md section 6). Its weights come from GitHub releases,
so put them at ``<root>/models/buffalo_l/*.onnx`` (default root ``~/.insightface``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from fastface.faces.base import DET_SIZES, Face, FaceModelUnavailable, _normed, as_rgb, detect_with_retry


def onnx_providers(device: str, available: Sequence[str]) -> list:
    """onnxruntime providers for ``device``: CUDA first for ``cuda[:N]`` when available."""
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in available:
        index = int(device.split(":")[1]) if ":" in device else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def insightface_home(root: str | os.PathLike | None = None) -> Path:
    """insightface's root folder: ``root``, else ``$INSIGHTFACE_HOME``, else ``~/.insightface``."""
    return Path(root or os.environ.get("INSIGHTFACE_HOME", Path.home() / ".insightface")).expanduser()


def insightface_model_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root>/models/buffalo_l`` (root: :func:`insightface_home`)."""
    return insightface_home(root) / "models" / "buffalo_l"


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
