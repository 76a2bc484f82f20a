"""Choosing a backend (:func:`make_analyzer`), reading an ID photo, the ID-photo rules
(:func:`reference_face`) and the offline sample photos.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

from fastface.faces.base import (BACKENDS, ON_MULTIPLE, Face, FaceAnalyzer, FaceImageError, MultipleFacesError,
                                 NoFaceError, as_rgb)
from fastface.faces.dlib import DlibAnalyzer
from fastface.faces.insightface import InsightFaceAnalyzer
from fastface.faces.skimage import SkimageAnalyzer


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
