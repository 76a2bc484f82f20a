"""Face analysis backends on real offline photos, ID-photo errors, alignment, retry logic."""
from __future__ import annotations

import numpy as np
import pytest

from fastface.faces import (
    ARCFACE_DST, DET_SIZES, FaceImageError, FaceModelUnavailable, MultipleFacesError, NoFaceError, align_face,
    detect_with_retry, face_similarity, load_image, make_analyzer, reference_face, sample_photos,
)


@pytest.fixture(scope="module")
def photos():
    return sample_photos()


@pytest.fixture(scope="module")
def dlib_analyzer():
    return make_analyzer("dlib")


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy)


def test_two_real_offline_photos(photos):
    assert {"astronaut", "tom_hanks"} <= set(photos)
    assert all(p.dtype == np.uint8 and p.shape[2] == 3 for p in photos.values())


def test_dlib_finds_the_astronaut_with_landmarks_and_embedding(dlib_analyzer, photos):
    faces = dlib_analyzer.detect(photos["astronaut"])
    assert len(faces) == 1
    f = faces[0]
    x0, y0, x1, y1 = f.bbox
    assert 150 < x0 < 200 and 230 < x1 < 290 and 50 < y0 < 100 and 140 < y1 < 190  # her face, top centre
    assert f.embedding.shape == (128,) and abs(np.linalg.norm(f.embedding) - 1) < 1e-5
    le, re, nose, lm, rm = f.kps
    assert le[0] < re[0] and lm[0] < rm[0] and max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])
    assert (f.kps[:, 0] >= x0 - 5).all() and (f.kps[:, 0] <= x1 + 5).all()
    again = dlib_analyzer.detect(photos["astronaut"])[0]
    assert np.array_equal(f.embedding, again.embedding)
    flipped = dlib_analyzer.detect(photos["astronaut"][:, ::-1].copy())[0]
    other = dlib_analyzer.detect(photos["tom_hanks"])[0]
    same, diff = face_similarity(f.embedding, flipped.embedding), face_similarity(f.embedding, other.embedding)
    assert same > 0.97 and diff < 0.93 and same > diff  # measured: 0.990 vs 0.865
    assert 0.02 < f.area_ratio(photos["astronaut"].shape) < 0.05


def test_skimage_detects_without_embedding(photos, dlib_analyzer):
    sk = make_analyzer("skimage")
    faces = sk.detect(photos["astronaut"])
    assert faces and faces[0].embedding is None and faces[0].kps_estimated
    assert _iou(faces[0].bbox, dlib_analyzer.detect(photos["astronaut"])[0].bbox) > 0.3
    with pytest.raises(FaceImageError, match="gives no face embedding"):
        reference_face(sk, photos["astronaut"], need_embedding=True)


def test_id_photo_errors_name_the_file(tmp_path, dlib_analyzer, photos):
    from PIL import Image
    from skimage.data import coffee

    blank = tmp_path / "blank.png"
    Image.fromarray(coffee()).save(blank)
    with pytest.raises(NoFaceError, match=r"blank.png: no face found by the dlib backend"):
        reference_face(dlib_analyzer, blank)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG garbage")
    with pytest.raises(FaceImageError, match=r"corrupt.png: not a readable image"):
        load_image(corrupt)
    with pytest.raises(FaceImageError, match=r"missing.png: no such file"):
        reference_face(dlib_analyzer, tmp_path / "missing.png")
    a = photos["astronaut"][:256, 100:356]
    b = np.asarray(Image.fromarray(photos["tom_hanks"]).resize((256, 256)))
    two = tmp_path / "two.png"
    Image.fromarray(np.concatenate([a, b], axis=1)).save(two)
    with pytest.raises(MultipleFacesError, match=r"two.png: 2 faces found.*first.*largest"):
        reference_face(dlib_analyzer, two)
    _, first = reference_face(dlib_analyzer, two, on_multiple="first")
    _, largest = reference_face(dlib_analyzer, two, on_multiple="largest")
    assert largest.area >= first.area or largest.bbox == first.bbox


def test_align_face_maps_keypoints_onto_the_template():
    img = np.zeros((300, 300, 3), np.uint8)
    kps = np.array([[100, 120], [180, 118], [140, 160], [110, 200], [172, 198]], np.float32)
    for x, y in kps.astype(int):
        img[y - 1:y + 2, x - 1:x + 2] = 255
    crop = align_face(img, kps, 224)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    target = ARCFACE_DST * 2
    from fastface.face_align import estimate_norm

    m = estimate_norm(kps, 224)
    mapped = kps @ m[:, :2].T + m[:, 2]
    assert np.abs(mapped - target).max() < 6  # a similarity transform cannot fit 5 points exactly
    for x, y in np.rint(mapped).astype(int):
        assert crop[y - 2:y + 3, x - 2:x + 3].max() > 100


def test_align_face_matches_insightface_norm_crop(photos, dlib_analyzer):
    fa = pytest.importorskip("insightface.utils.face_align", reason="insightface (with cv2) not importable")
    f = dlib_analyzer.detect(photos["astronaut"])[0]
    ours = align_face(photos["astronaut"], f.kps, 224).astype(float)
    ref = fa.norm_crop(photos["astronaut"], f.kps, 224).astype(float)
    assert np.abs(ours - ref).mean() < 2.0


def test_detect_with_retry_order_and_stop():
    calls = []

    def fake(size):
        calls.append(size)
        return ["face"] if size == 512 else []

    assert detect_with_retry(fake) == (["face"], 512)
    assert calls == [640, 576, 512]
    calls.clear()
    assert detect_with_retry(lambda s: calls.append(s) or []) == ([], None)
    assert calls == list(DET_SIZES) == [640, 576, 512, 448, 384, 320]


def test_insightface_without_weights_says_where_to_put_them(tmp_path):
    with pytest.raises(FaceModelUnavailable, match=str(tmp_path / "models" / "buffalo_l")):
        make_analyzer("insightface", root=str(tmp_path))


def test_unknown_backend():
    with pytest.raises(ValueError, match="insightface, dlib, skimage"):
        make_analyzer("opencv")
