"""The alignment crop of the CLIP ("plus") branch: insightface's ``face_align.norm_crop``,
re-implemented without OpenCV.

A similarity transform maps the 5 keypoints onto the ArcFace template (112x112, scaled to
the crop size exactly as insightface's ``estimate_norm`` does) and the image is warped with
bilinear sampling and a black border.
"""
from __future__ import annotations

import numpy as np

ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def estimate_norm(kps: np.ndarray, image_size: int = 112) -> np.ndarray:
    """2x3 similarity matrix taking image coordinates to crop coordinates (insightface's rule)."""
    from skimage.transform import SimilarityTransform

    kps = np.asarray(kps, dtype=np.float64).reshape(5, 2)
    if image_size % 112 == 0:
        ratio, diff_x = image_size / 112.0, 0.0
    else:
        ratio = image_size / 128.0
        diff_x = 8.0 * ratio
    dst = ARCFACE_DST.astype(np.float64) * ratio
    dst[:, 0] += diff_x
    tform = SimilarityTransform.from_estimate(kps, dst) if hasattr(SimilarityTransform, "from_estimate") else None
    if tform is None:
        tform = SimilarityTransform()
        tform.estimate(kps, dst)
    return np.asarray(tform.params[0:2, :])


def align_face(image: np.ndarray, kps: np.ndarray, image_size: int = 224) -> np.ndarray:
    """The aligned ``image_size`` x ``image_size`` uint8 RGB face crop."""
    from skimage.transform import AffineTransform, warp

    m = estimate_norm(kps, image_size)
    forward = AffineTransform(matrix=np.vstack([m, [0.0, 0.0, 1.0]]))
    out = warp(np.asarray(image), forward.inverse, output_shape=(image_size, image_size), order=1,
               mode="constant", cval=0.0, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
