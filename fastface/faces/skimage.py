"""The ``skimage`` backend: scikit-image's LBP frontal-face cascade. Detection only; its keypoints
come from a template (``kps_estimated=True``).
"""
from __future__ import annotations

import numpy as np

from fastface.faces.align import cluster_boxes, template_keypoints
from fastface.faces.base import Face, as_rgb


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
