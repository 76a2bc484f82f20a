"""Evaluation protocols: ``release`` reproduces the authors' released evaluation
(ControlGenAI/FastFace ``compute_metrics.py`` + ``src/evaluation/*.py``), quirks included;
``corrected`` fixes what the release gets wrong.  The table of every choice, with the
release's file and line, is in ``fastface/evaluation/README.md`` ("Protocols").

The protocol is part of every metric row's model string (``<model>#protocol=<name>``), so
values computed under the two protocols never mix: ``fastface evaluate --protocol release``
adds its own rows next to the corrected ones, and ``fastface report --protocol`` reads one.

This module holds the protocol-dependent definitions as small pure functions (tested on
hand-made inputs in ``tests/unit/test_eval_protocol.py``):

- :func:`pick_generated_face` — several faces in a generated image: ``release`` takes
  ``faces[0]`` (the detector's best score), ``corrected`` the largest box;
- :func:`release_face_ratio` — the release's ``get_face_ratios`` (unclipped box of
  ``faces[0]`` of the 320 pass over the image area; 0.0 without a face);
- :func:`fsc_text` — the text FSC scores: the part before ';' if there is one, else the
  whole prompt (both protocols: every prompt is scored);
- :func:`release_crop` — the release's FSC crop: ``int()`` of the box, then Python slicing
  (a negative coordinate wraps around), ``None`` when empty;
- :func:`face_crop` / :func:`square_crop` — the corrected FSC crop (the square of side
  max(w, h) centred on the face box, clipped to the image);
- :func:`release_clip_pixels` — the release's CLIP input: a float tensor mapped with
  ``Normalize(mean=-1, std=2)`` (built for [-1, 1] inputs), resized as a tensor (bicubic,
  antialiased), centre-cropped, CLIP-normalised.  For FSC the release feeds 0..255 values
  through it (``value_range="0..255"``): CLIP sees about [0.07, 488] instead of
  [-1.79, 2.15] — a release bug, reproduced under ``release`` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

PROTOCOLS = ("release", "corrected")
DEFAULT_PROTOCOL = "corrected"
TAG = "#protocol="

#: the LAION aesthetic head each protocol uses by default (--aesthetic-head overrides it)
AESTHETIC_HEADS = {"release": "ava+logos-l14-linearMSE.pth", "corrected": "sac+logos+ava1-l14-linearMSE.pth"}
#: the release's det sizes (range(640, 256, -64)); get_face_ratios keeps the faces of the last one
RELEASE_DET_SIZES = (640, 576, 512, 448, 384, 320)


class ProtocolError(ValueError):
    """An unknown protocol name; the message lists the choices."""


@dataclass(frozen=True)
class Protocol:
    """The evaluation choices of one protocol (see the README table)."""

    name: str

    def __post_init__(self):
        if self.name not in PROTOCOLS:
            raise ProtocolError(f"--protocol {self.name!r}: choose one of {', '.join(PROTOCOLS)}")

    @property
    def release(self) -> bool:
        return self.name == "release"

    @property
    def aesthetic_head(self) -> str:
        return AESTHETIC_HEADS[self.name]

    @property
    def clamp_clip(self) -> bool:
        """corrected: CLIPScore's max(cos, 0); release: the raw cosine (nn.CosineSimilarity)."""
        return not self.release

    def tag(self, model: str) -> str:
        return tag_model(model, self.name)


def check_protocol(name: str | None) -> str:
    return Protocol(name or DEFAULT_PROTOCOL).name


def tag_model(model: str, protocol: str) -> str:
    """``"<model>#protocol=<protocol>"`` (a model string already tagged is re-tagged)."""
    return f"{strip_protocol(model)}{TAG}{check_protocol(protocol)}"


def protocol_of(model: str | None) -> str | None:
    """The protocol a model string was tagged with, or None (untagged: written by
    ``fastface capture`` or by an evaluation made before protocols existed)."""
    if not model or TAG not in model:
        return None
    name = model.rsplit(TAG, 1)[1]
    return name if name in PROTOCOLS else None


def strip_protocol(model: str) -> str:
    return model.rsplit(TAG, 1)[0] if TAG in model else model


# --------------------------------------------------------------------------- faces
def pick_generated_face(faces: Sequence, protocol: str):
    """The face of a generated image that the metrics use, or None without faces.

    ``faces`` are in the detector's order (best score first, as insightface's ``get`` and
    every backend of :mod:`fastface.faces` return them).  release: ``faces[0]``
    (face_metrics.py:150); corrected: the largest box (the subject of a portrait prompt;
    a small sharp face in the background can out-score it)."""
    if not faces:
        return None
    if check_protocol(protocol) == "release":
        return faces[0]
    return max(faces, key=lambda f: f.area)


def box_area(bbox) -> float:
    x0, y0, x1, y1 = (float(v) for v in bbox)
    return (x1 - x0) * (y1 - y0)


def release_face_ratio(faces_at_last_size: Sequence, image_shape) -> float:
    """The release's face size (face_metrics.py:68-90, ``get_face_ratios``): its retry loop
    over det sizes 640..320 has no ``break``, so it keeps the faces of the 320 pass; the box
    of ``faces[0]`` is not clipped to the image; 0.0 when that pass finds no face."""
    if not faces_at_last_size:
        return 0.0
    h, w = image_shape[:2]
    return box_area(faces_at_last_size[0].bbox) / float(w * h)


def largest_box(faces: Sequence):
    """The face with the largest box (MTCNN's ``select_largest=True`` order), or None."""
    return max(faces, key=lambda f: box_area(f.bbox)) if faces else None


# --------------------------------------------------------------------------- FSC
def fsc_text(prompt: str) -> str:
    """The text FSC scores (face_metrics.py:255-256): ``prompt.split(";")[0]`` when the prompt
    has a ';', else the whole prompt.  Not stripped (CLIP's tokenizer strips whitespace)."""
    return prompt.split(";")[0] if ";" in prompt else prompt


def release_crop(image: np.ndarray, bbox) -> np.ndarray | None:
    """The release's face crop (face_metrics.py:220-225): ``bb = [int(b) for b in bb]`` (towards
    zero), ``img[:, bb[1]:bb[3], bb[0]:bb[2]]`` with Python's slicing — a negative coordinate
    counts from the far edge — and None when the crop is empty.  ``image``: HxWxC."""
    x0, y0, x1, y1 = (int(float(b)) for b in bbox)
    crop = image[y0:y1, x0:x1]
    if crop.shape[0] == 0 or crop.shape[1] == 0:
        return None
    return np.ascontiguousarray(crop)


def face_crop_box(bbox, image_shape) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) of the square of side max(w, h) centred on the face box,
    clipped to the image."""
    h, w = image_shape[:2]
    x0, y0, x1, y1 = (float(v) for v in bbox)
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    a0, b0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    a1, b1 = int(round(cx + side / 2)), int(round(cy + side / 2))
    a0, b0, a1, b1 = max(a0, 0), max(b0, 0), min(a1, w), min(b1, h)
    if a1 - a0 < 1 or b1 - b0 < 1:
        raise ValueError(f"face box {bbox} lies outside the {w}x{h} image")
    return a0, b0, a1, b1


def face_crop(image: np.ndarray, bbox) -> np.ndarray:
    a0, b0, a1, b1 = face_crop_box(bbox, image.shape)
    return np.ascontiguousarray(image[b0:b1, a0:a1])


def square_crop(image: np.ndarray, bbox) -> np.ndarray | None:
    """corrected FSC crop: the square of side max(w, h) centred on the box, clipped to the
    image (so that CLIP's centre crop keeps the whole face); None for a box outside it."""
    try:
        return face_crop(image, bbox)
    except ValueError:
        return None


def release_clip_pixels(images: Sequence[np.ndarray], *, value_range: str = "-1..1", size: int = 224,
                        mean=None, std=None):
    """[N, 3, size, size] float32 tensor: the release's CLIP preprocessing of uint8 HxWx3 images.

    The release's CLIP transform (``Normalize(mean=-1, std=2)`` then CLIP's ``Resize`` and
    ``CenterCrop`` on tensors, then CLIP's ``Normalize``) expects [-1, 1] tensors, which its
    dataset makes with ``(ToTensor(img) - 0.5) * 2`` (metrics.py:68-70): ``value_range="-1..1"``.
    Its FSC crops are the raw 0..255 pixel values (``.float()`` of a uint8 tensor,
    face_metrics.py:221): ``value_range="0..255"`` reproduces that bug.  Resize: the short
    side to ``size`` (long side ``int(size * long / short)``), bicubic with antialias on the
    float tensor (torchvision's tensor ``Resize``; no rounding, no clamping); centre crop with
    offsets ``int(round(d / 2))``."""
    import torch
    import torch.nn.functional as F

    from fastface.evaluation.models import CLIP_MEAN, CLIP_STD

    if value_range not in ("-1..1", "0..255"):
        raise ValueError(f"value_range {value_range!r}: '-1..1' or '0..255'")
    m = torch.tensor(mean or CLIP_MEAN, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std or CLIP_STD, dtype=torch.float32).view(3, 1, 1)
    out = []
    for im in images:
        x = torch.from_numpy(np.array(np.asarray(im, dtype=np.uint8)[:, :, :3])).permute(2, 0, 1)  # a writable copy
        x = x.to(torch.float32)
        if value_range == "-1..1":
            x = (x / 255.0 - 0.5) * 2  # ToTensor, then ExperimentDataset._process_image
        x = (x + 1.0) / 2.0  # Normalize(mean=-1, std=2)
        h, w = x.shape[1:]
        if w <= h:
            nh, nw = int(size * h / w), size
        else:
            nh, nw = size, int(size * w / h)
        if (nh, nw) != (h, w):
            x = F.interpolate(x[None], size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)[0]
        top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
        x = x[:, top:top + size, left:left + size]
        out.append((x - m) / s)
    return torch.stack(out)
