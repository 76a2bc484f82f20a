"""The ID crop reaches the CLIP image encoder as the authors' release feeds it (issue 23, item 3):
``get_faceid_embeds`` reads the photo with cv2 (BGR), crops it with insightface's ``norm_crop`` and
hands the BGR array to ``CLIPImageProcessor``. The test redoes that procedure with cv2, insightface
and transformers on a real photo and compares it with the pixels the pipeline's image encoder
receives (a forward pre-hook on the encoder)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import astronaut

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

cv2 = pytest.importorskip("cv2")
face_align = pytest.importorskip("insightface.utils.face_align")


def _encoder_pixels(ff, photo_path: str) -> tuple[torch.Tensor, np.ndarray]:
    seen = []
    hook = ff.pipe.image_encoder.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((args[0] if args else kwargs["pixel_values"]).detach().clone()),
        with_kwargs=True)
    try:
        identity = ff.encode_identity(photo_path)
    finally:
        hook.remove()
    return seen[0], identity.face.kps


def _release_pixels(photo_path: str, kps: np.ndarray, *, swap: bool = False) -> torch.Tensor:
    """The release's CLIP input (``swap``: the same crop with red and blue exchanged first)."""
    from transformers import CLIPImageProcessor

    image = cv2.imread(photo_path)  # BGR, as the release reads it
    crop = face_align.norm_crop(image, landmark=kps, image_size=224)
    if swap:
        crop = np.ascontiguousarray(crop[:, :, ::-1])
    return CLIPImageProcessor()(images=crop, return_tensors="pt").pixel_values


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(astronaut()).save(path)
    return str(path)


@pytest.mark.parametrize("order", ["bgr", "rgb"])
def test_crop_order_against_the_release_procedure(tiny_root, photo, order):
    from fastface.models.pipeline import load_pipeline

    ff = load_pipeline("hyper", tiny=True, weights_root=tiny_root, face_backend="dlib", crop_order=order)
    try:
        ours, kps = _encoder_pixels(ff, photo)
    finally:
        ff.restore_processors()
    release = _release_pixels(photo, kps)
    release_rgb = _release_pixels(photo, kps, swap=True)
    assert ours.shape == release.shape == (1, 3, 224, 224)
    # our crop is skimage's bilinear warp, the release's cv2.warpAffine: a few grey levels apart at
    # edges; normalised by CLIP's std (~0.27) one grey level is ~0.015
    diff = (ours.float() - release.float()).abs().mean()
    other = (ours.float() - release_rgb.float()).abs().mean()
    if order == "rgb":
        diff, other = other, diff
    assert diff < 0.02 and other > 5 * diff, (order, diff, other)


def test_real_weights_default_to_the_release_order_and_worlds_to_theirs(tiny_root):
    from fastface.models.pipeline import load_pipeline

    ff = load_pipeline("hyper", tiny=True, weights_root=tiny_root, face_backend="none")
    assert ff.crop_order == "rgb"  # the offline worlds were trained on RGB crops
    import inspect

    from fastface.models.pipeline import FastFacePipeline

    assert inspect.signature(FastFacePipeline).parameters["crop_order"].default == "bgr"
    with pytest.raises(ValueError, match="crop_order='xyz'"):
        FastFacePipeline(ff.pipe, ff.checkpoint, crop_order="xyz")
