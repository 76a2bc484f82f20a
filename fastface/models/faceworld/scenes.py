"""Training scenes of the face world: real face crops composed into small scenes.

Identities are the eight people in photos that ship in installed packages
(:func:`fastface.faces.photos.sample_photos` with ``group_crops=True``: scikit-image's astronaut,
insightface's Tom Hanks test crop and the six faces of its ``t1.jpg`` group photo). Each is cut
out around its dlib face box (a square 2x the box, feathered by an elliptical mask) and pasted
into a 64x64 scene:

- ``close-up``: the head fills the frame (face box ~ 42-48 px of 64);
- ``wide``: a smaller head (face box ~ 26-29 px) with shoulders, anywhere in the upper frame;
- background colour (8 named colours) and texture (plain / striped / dotted) named in the prompt.

Those are the world's sizes (``geometry="final"``, the default): what it generates, what its last
training stage draws and what the face detector is calibrated on. Its first training stage draws
smaller faces (``geometry="first"``: face boxes 35-40 and 21-24 px); see
:mod:`fastface.models.faceworld.stages`.

The prompt says the shot, colour and texture; the ID embedding says who it is. Everything is
a pure function of a ``numpy.random.Generator``, so a training run is reproducible from its seed.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SIZE = 64
CROP = 96  # stored crop side (pasted sizes are <= 96 px)
SHOTS = ("close-up portrait", "wide shot")
COLOURS = {
    "red": (200, 40, 40), "green": (40, 150, 60), "blue": (40, 70, 200), "yellow": (230, 210, 50),
    "purple": (130, 50, 160), "orange": (235, 130, 30), "gray": (128, 128, 128), "white": (235, 235, 235),
}
TEXTURES = ("plain", "striped", "dotted")
# crop side / face box side and the crop's upward shift (hair above the brows), in box units
CROP_PER_BOX = 2.0
CENTRE_SHIFT = 0.12
# pasted crop side per shot, in px (the face box is half of it), per geometry: "first" (face boxes
# close-up 35-40, wide 21-24) for the first training stage, "final" (close-up 42-48, wide 26-29) for
# the last stage and everything after training (the world's own scenes)
PASTE = {"first": {SHOTS[0]: (70, 80), SHOTS[1]: (42, 48)},
         "final": {SHOTS[0]: (84, 96), SHOTS[1]: (52, 58)}}
GEOMETRIES = tuple(PASTE)


@dataclass(frozen=True)
class FaceCrop:
    name: str
    crop: np.ndarray  # [CROP, CROP, 3] uint8, the face centred, box side = CROP / CROP_PER_BOX
    photo: np.ndarray  # the reference photo (what an ID photo of this person is)
    face: object  # fastface.faces.base.Face: dlib's detection of ``photo`` (box, keypoints, embedding)


@dataclass(frozen=True)
class SceneSpec:
    identity: int
    shot: str
    colour: str
    texture: str

    @property
    def prompt(self) -> str:
        return prompt_for(self.shot, self.colour, self.texture)


def prompt_for(shot: str, colour: str, texture: str) -> str:
    return f"{shot} of a person, {colour} {texture} background"


def all_prompts() -> list[str]:
    return [prompt_for(s, c, t) for s in SHOTS for c in COLOURS for t in TEXTURES]


def _square_crop(photo: np.ndarray, face, out: int) -> np.ndarray:
    """A square of side CROP_PER_BOX x the face box around the (slightly raised) box centre,
    rotated so that the eyes are level (a tilted head is made upright, as face alignment does)."""
    from PIL import Image

    x0, y0, x1, y1 = face.bbox
    (lx, ly), (rx, ry) = face.kps[0], face.kps[1]
    angle = float(np.degrees(np.arctan2(ry - ly, rx - lx)))
    if abs(angle) > 1.0:
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        photo = np.asarray(Image.fromarray(photo).rotate(angle, resample=Image.BICUBIC, center=centre,
                                                         fillcolor=tuple(int(v) for v in photo[0, 0])))
    side = max(x1 - x0, y1 - y0) * CROP_PER_BOX
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - CENTRE_SHIFT * (y1 - y0)
    h, w = photo.shape[:2]
    pad = int(side)
    padded = np.pad(photo, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    l, t = int(round(cx - side / 2)) + pad, int(round(cy - side / 2)) + pad
    s = int(round(side))
    sq = padded[t:t + s, l:l + s]
    return np.asarray(Image.fromarray(sq).resize((out, out), Image.LANCZOS))


@functools.lru_cache(maxsize=1)
def _identities() -> tuple[FaceCrop, ...]:
    from fastface.faces.dlib import DlibAnalyzer
    from fastface.faces.photos import sample_photos

    analyzer = DlibAnalyzer()
    out = []
    for name, photo in sorted(sample_photos(group_crops=True).items()):
        faces = analyzer.detect(photo)
        if len(faces) != 1:
            raise RuntimeError(f"face world: expected one dlib face in the shipped photo {name!r}, found {len(faces)}")
        out.append(FaceCrop(name, _square_crop(photo, faces[0], CROP), photo, faces[0]))
    return tuple(out)


def identities() -> tuple[FaceCrop, ...]:
    """The eight identities, sorted by name (index = identity id of the world)."""
    return _identities()


def _ellipse_alpha(side: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    r = ((xx - side / 2) / (0.46 * side)) ** 2 + ((yy - side / 2) / (0.52 * side)) ** 2
    return np.clip((1.0 - r) / 0.25, 0.0, 1.0)  # feathered edge


def _background(rng: np.random.Generator, colour: str, texture: str) -> np.ndarray:
    base = np.array(COLOURS[colour], np.float32) * rng.uniform(0.85, 1.1)
    img = np.broadcast_to(base, (SIZE, SIZE, 3)).copy()
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    dark = base * 0.55
    if texture == "striped":
        period = rng.integers(6, 11)
        phase = rng.integers(0, period)
        mask = ((xx + phase) % period) < period // 2
        img[mask] = dark
    elif texture == "dotted":
        period = rng.integers(8, 12)
        ox, oy = rng.integers(0, period, size=2)
        d = ((xx + ox) % period - period / 2) ** 2 + ((yy + oy) % period - period / 2) ** 2
        img[d < (period / 4) ** 2] = dark
    return img


def _resize(img: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((side, side), Image.BILINEAR)).astype(np.float32)


def _paste_sizes(geometry: str) -> dict[str, tuple[int, int]]:
    if geometry not in PASTE:
        raise ValueError(f"scene geometry {geometry!r}: choose one of {', '.join(GEOMETRIES)}")
    return PASTE[geometry]


def compose(spec: SceneSpec, rng: np.random.Generator, *, crop: np.ndarray | None = None,
            flip: bool = True, geometry: str = "final") -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """One scene (uint8 [64, 64, 3]) and the pasted face box (x0, y0, x1, y1) in pixels.
    ``crop`` replaces the identity's face crop ([CROP, CROP, 3] uint8; e.g. a negative example).
    ``flip``: mirror the face at random (half of the scenes); False keeps every face as in its
    photo (the same draws are made, so the rest of the scene is the same). ``geometry``: the
    face sizes, a key of :data:`PASTE` (the same draws are made for each)."""
    face_crop = identities()[spec.identity].crop if crop is None else crop
    lo, hi = _paste_sizes(geometry)[spec.shot]
    img = _background(rng, spec.colour, spec.texture)
    side = int(rng.integers(lo, hi + 1))
    crop = face_crop[:, ::-1] if rng.random() < 0.5 and flip else face_crop
    crop = _resize(np.ascontiguousarray(crop), side) * rng.uniform(0.85, 1.15)
    if spec.shot == SHOTS[0]:
        cx = SIZE / 2 + rng.uniform(-4, 4)
        cy = SIZE / 2 + rng.uniform(-3, 4)
    else:
        cx = rng.uniform(side / 2 + 2, SIZE - side / 2 - 2)
        cy = rng.uniform(side / 2 + 1, SIZE * 0.55)
        # shoulders: a rounded block below the head in a random shirt colour
        shirt = rng.uniform(20, 235, size=3).astype(np.float32)
        yy, xx = np.mgrid[0:SIZE, 0:SIZE]
        top = cy + 0.42 * side
        body = ((np.abs(xx - cx) < 0.85 * side - 0.25 * np.clip(top + 4 - yy, 0, None)) & (yy >= top))
        img[body] = shirt
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    alpha = _ellipse_alpha(side)[..., None]
    ys, xs = slice(max(y0, 0), min(y0 + side, SIZE)), slice(max(x0, 0), min(x0 + side, SIZE))
    cy0, cx0 = ys.start - y0, xs.start - x0
    region = img[ys, xs]
    a = alpha[cy0:cy0 + region.shape[0], cx0:cx0 + region.shape[1]]
    c = crop[cy0:cy0 + region.shape[0], cx0:cx0 + region.shape[1]]
    img[ys, xs] = a * c + (1 - a) * region
    box_side = side / CROP_PER_BOX
    bx, by = x0 + side / 2, y0 + side / 2 + CENTRE_SHIFT * box_side
    box = (bx - box_side / 2, by - box_side / 2, bx + box_side / 2, by + box_side / 2)
    return np.clip(img, 0, 255).astype(np.uint8), box


def random_spec(rng: np.random.Generator, n_identities: int) -> SceneSpec:
    return SceneSpec(int(rng.integers(n_identities)), SHOTS[int(rng.integers(len(SHOTS)))],
                     list(COLOURS)[int(rng.integers(len(COLOURS)))], TEXTURES[int(rng.integers(len(TEXTURES)))])


def batch(rng: np.random.Generator, n: int, *, geometry: str = "final") -> tuple[np.ndarray, list[SceneSpec]]:
    """``n`` random scenes as float32 [n, 3, 64, 64] in [-1, 1] and their specs."""
    imgs, specs, _ = batch_with_boxes(rng, n, geometry=geometry)
    return imgs, specs


def batch_with_boxes(rng: np.random.Generator, n: int, *, flip: bool = True, geometry: str = "final"):
    """As :func:`batch` (the same draws from ``rng``), plus each scene's face box in pixels;
    ``flip`` and ``geometry`` as in :func:`compose`."""
    _paste_sizes(geometry)  # a wrong name fails before any draw
    specs = [random_spec(rng, len(identities())) for _ in range(n)]
    composed = [compose(s, rng, flip=flip, geometry=geometry) for s in specs]
    imgs = np.stack([c[0] for c in composed]).astype(np.float32) / 127.5 - 1.0
    return imgs.transpose(0, 3, 1, 2), specs, [c[1] for c in composed]
