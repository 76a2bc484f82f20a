"""Five-point face alignment without OpenCV.

A numpy/scikit-image re-implementation of insightface's
``insightface.utils.face_align.estimate_norm`` / ``norm_crop``: a similarity
transform (rotation + uniform scale + translation, least squares by Umeyama's
method, the same estimator as ``skimage.transform.SimilarityTransform``) maps
the five detected keypoints onto the ArcFace 112x112 template, and the image
is warped bilinearly with a zero border.  IP-Adapter FaceID-Plus-v2 feeds a
224x224 crop made this way to its CLIP image encoder, and ArcFace-style
recognisers use the 112x112 crop.

Also holds the box geometry of detectors that do not predict landmarks: the fixed
keypoint layout :func:`template_keypoints` and the window merging :func:`cluster_boxes`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "ARCFACE_DST",
    "align_face",
    "box_iou",
    "cluster_boxes",
    "estimate_norm",
    "template_keypoints",
    "transform_points",
    "umeyama_similarity",
]

#: insightface's ``arcface_dst``: keypoints of the canonical 112x112 crop in
#: insightface order (image-left eye, image-right eye, nose tip, image-left
#: mouth corner, image-right mouth corner).
ARCFACE_DST = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

# Keypoints as fractions of a frontal-face detector box (x0, y0, x1, y1): the mean position
# of the dlib 68-point keypoints relative to the merged scikit-image LBP cascade box, over the
# seven offline sample photos of fastface.faces, made left-right symmetric.
_BOX_TEMPLATE = np.array(
    [
        [0.31, 0.39],
        [0.69, 0.39],
        [0.50, 0.62],
        [0.34, 0.78],
        [0.66, 0.78],
    ],
    dtype=np.float32,
)


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` onto ``dst``.

    Umeyama (1991), as in ``skimage.transform.SimilarityTransform.estimate``.
    ``src`` and ``dst`` are ``[N, 2]``; returns the 3x3 homogeneous matrix.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2:
        raise ValueError(f"expected two [N, 2] point sets, got {src.shape} and {dst.shape}")
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    u, s, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    if rank == 0:
        raise ValueError("degenerate keypoints: all points coincide")
    if rank == 1 and np.linalg.det(u) * np.linalg.det(vt) > 0:
        rot = u @ vt
    elif rank == 1:
        rot = u @ np.diag([1.0, -1.0]) @ vt
    else:
        rot = u @ np.diag(d) @ vt
    scale = float(s @ d) / src_c.var(axis=0).sum()
    mat = np.eye(3)
    mat[:2, :2] = scale * rot
    mat[:2, 2] = dst_mean - scale * rot @ src_mean
    return mat


def estimate_norm(kps: np.ndarray, image_size: int = 112) -> np.ndarray:
    """2x3 affine matrix taking image pixels to the aligned crop.

    Same template scaling as insightface: ``image_size / 112`` when
    ``image_size`` is a multiple of 112, else ``image_size / 128`` with an
    ``8 * ratio`` pixel shift in x.
    """
    kps = np.asarray(kps, dtype=np.float64)
    if kps.shape != (5, 2):
        raise ValueError(f"expected [5, 2] keypoints, got shape {kps.shape}")
    if image_size % 112 == 0:
        ratio, diff_x = image_size / 112.0, 0.0
    elif image_size % 128 == 0:
        ratio = image_size / 128.0
        diff_x = 8.0 * ratio
    else:
        raise ValueError(f"image_size must be a multiple of 112 or 128, got {image_size}")
    dst = ARCFACE_DST.astype(np.float64) * ratio
    dst[:, 0] += diff_x
    return umeyama_similarity(kps, dst)[:2, :]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 (or 3x3) affine ``matrix`` to ``[N, 2]`` points."""
    pts = np.asarray(points, dtype=np.float64)
    mat = np.asarray(matrix, dtype=np.float64)[:2]
    return pts @ mat[:, :2].T + mat[:, 2]


def align_face(image: np.ndarray, kps: np.ndarray, image_size: int = 224) -> np.ndarray:
    """Aligned ``image_size`` x ``image_size`` uint8 crop, like insightface's ``norm_crop``.

    ``image`` is HxWx3 (or HxW) uint8; ``kps`` the five keypoints in
    insightface order.  Bilinear sampling, black outside the image.
    """
    from skimage.transform import AffineTransform, warp

    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an HxW or HxWxC image, got shape {img.shape}")
    mat = np.vstack([estimate_norm(kps, image_size), [0.0, 0.0, 1.0]])
    inverse = AffineTransform(matrix=np.linalg.inv(mat))
    out = warp(
        img.astype(np.float64),
        inverse_map=inverse,
        output_shape=(image_size, image_size),
        order=1,
        mode="constant",
        cval=0.0,
        preserve_range=True,
    )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def template_keypoints(bbox: Sequence[float]) -> np.ndarray:
    """Five estimated keypoints for a frontal face box ``(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    size = np.array([x1 - x0, y1 - y0], dtype=np.float32)
    return (_BOX_TEMPLATE * size + np.array([x0, y0], dtype=np.float32)).astype(np.float32)


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def cluster_boxes(boxes: Sequence[Sequence[float]], iou: float = 0.3) -> list[tuple[np.ndarray, int]]:
    """Greedy non-maximum merging: the largest remaining box takes every box with IoU > ``iou``.

    Returns ``(mean box of the cluster, cluster size)`` pairs, biggest cluster first.
    """
    rest = sorted((tuple(map(float, b)) for b in boxes), key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    out = []
    while rest:
        head = rest[0]
        members = [b for b in rest if b is head or box_iou(head, b) > iou]
        rest = [b for b in rest if b is not head and box_iou(head, b) <= iou]
        out.append((np.mean(np.array(members), axis=0), len(members)))
    return sorted(out, key=lambda c: -c[1])
