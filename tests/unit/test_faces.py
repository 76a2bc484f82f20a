"""Face analysis backends on real offline photos, ID-photo errors, alignment, retry logic."""
from __future__ import annotations

import io
import json
import socket
import sys
import types
import warnings

import numpy as np
import pytest

from fastface.faces.align import ARCFACE_DST, align_face, box_iou, cluster_boxes
from fastface.faces.base import (BACKENDS, DET_SIZES, Face, FaceAnalyzer, FaceImageError, FaceModelUnavailable,
                                 MultipleFacesError, NoFaceError, detect_with_retry, face_similarity)
from fastface.faces.insightface import onnx_providers
from fastface.faces.photos import load_image, make_analyzer, reference_face, sample_photos
from fastface.faces.align import estimate_norm, template_keypoints, transform_points, umeyama_similarity


@pytest.fixture(scope="module")
def photos():
    return sample_photos(group_crops=True)


@pytest.fixture(scope="module")
def dlib_analyzer():
    return make_analyzer("dlib")


@pytest.fixture(scope="module")
def skimage_analyzer():
    return make_analyzer("skimage")


@pytest.fixture(scope="module")
def dlib_faces(dlib_analyzer, photos):
    """Every sample photo's dlib faces, plus the horizontally flipped astronaut."""
    found = {k: dlib_analyzer.detect(v) for k, v in photos.items()}
    found["astronaut_flipped"] = dlib_analyzer.detect(photos["astronaut"][:, ::-1])
    return found


def test_sample_photos_are_real_offline_photos():
    default = sample_photos()
    assert set(default) == {"astronaut", "tom_hanks"}  # tom_hanks ships with insightface (installed here)
    full = sample_photos(group_crops=True)
    assert set(full) - set(default) == {"t1_far_left", "t1_centre", "t1_centre_right", "t1_far_right",
                                        "t1_back_right", "t1_back_left"}
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in full.values())
    assert full["astronaut"].shape == (512, 512, 3) and full["tom_hanks"].shape == (112, 112, 3)
    full["astronaut"][:] = 0  # callers get copies
    assert sample_photos()["astronaut"].any()


def test_every_sample_photo_has_exactly_one_dlib_face(dlib_faces):
    counts = {k: len(v) for k, v in dlib_faces.items()}
    assert counts == dict.fromkeys(counts, 1)


def test_dlib_finds_the_astronaut_with_landmarks_and_embedding(dlib_analyzer, dlib_faces, photos):
    f = dlib_faces["astronaut"][0]
    assert f.backend == "dlib" and not f.kps_estimated and f.score > 0.25
    x0, y0, x1, y1 = f.bbox  # measured: (175, 76, 265, 166), her face at the top centre
    assert 160 < x0 < 190 and 250 < x1 < 280 and 60 < y0 < 90 and 150 < y1 < 180
    assert f.embedding.shape == (128,) and f.embedding.dtype == np.float32
    assert abs(np.linalg.norm(f.embedding) - 1) < 1e-5
    assert f.kps.shape == (5, 2) and f.kps.dtype == np.float32
    le, re, nose, lm, rm = f.kps
    assert le[0] < re[0] and lm[0] < rm[0] and max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])
    assert ((f.kps >= [x0, y0]) & (f.kps <= [x1, y1])).all()
    again = dlib_analyzer.detect(photos["astronaut"])[0]
    assert np.array_equal(f.embedding, again.embedding) and again.bbox == f.bbox
    assert 0.02 < f.area_ratio(photos["astronaut"].shape) < 0.04  # 90 x 90 px of 512 x 512


def test_dlib_similarity_same_photo_flipped_vs_other_people(dlib_faces):
    emb = {k: v[0].embedding for k, v in dlib_faces.items()}
    same = face_similarity(emb["astronaut"], emb["astronaut_flipped"])
    assert same > 0.97  # measured 0.990
    people = [k for k in emb if k != "astronaut_flipped"]
    cross = [face_similarity(emb[a], emb[b]) for i, a in enumerate(people) for b in people[i + 1:]]
    assert len(cross) == 28 and max(cross) < 0.95 < same  # measured 0.835 .. 0.915 (7 people)
    assert face_similarity(emb["astronaut"], emb["tom_hanks"]) < 0.93  # measured 0.865
    assert face_similarity(emb["astronaut"], emb["astronaut"]) == pytest.approx(1.0)


def test_skimage_detects_without_embedding(skimage_analyzer, dlib_faces, photos):
    faces = skimage_analyzer.detect(photos["astronaut"])
    assert len(faces) == 1  # the mission patch and helmet windows are merged away
    f = faces[0]
    assert f.embedding is None and f.kps_estimated and f.backend == "skimage" and f.score == 1.0
    assert box_iou(f.bbox, dlib_faces["astronaut"][0].bbox) > 0.3  # measured 0.76
    assert np.allclose(f.kps, template_keypoints(f.bbox))
    assert np.abs(f.kps - dlib_faces["astronaut"][0].kps).max() < 20  # the template lands near real keypoints
    assert skimage_analyzer.embedding_dim is None
    with pytest.raises(FaceImageError, match="the skimage backend gives no face embedding"):
        reference_face(skimage_analyzer, photos["astronaut"], need_embedding=True)
    assert skimage_analyzer.detect(np.zeros((300, 300, 3), np.uint8)) == []


def test_cluster_boxes_merges_overlaps():
    boxes = [(0, 0, 10, 10), (1, 1, 11, 11), (0, 1, 10, 11), (50, 50, 60, 60)]
    clusters = cluster_boxes(boxes)
    assert [n for _, n in clusters] == [3, 1]
    assert np.allclose(clusters[0][0], [1 / 3, 2 / 3, 31 / 3, 32 / 3]) and np.allclose(clusters[1][0], boxes[3])
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_no_face_errors_name_the_file(tmp_path, dlib_analyzer):
    from PIL import Image
    from skimage.data import coffee

    cup = tmp_path / "coffee.png"
    Image.fromarray(coffee()).save(cup)
    with pytest.raises(NoFaceError, match=r"coffee.png: no face found by the dlib backend.*frontal.*face-backend"):
        reference_face(dlib_analyzer, cup)
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError, match=r"^noise-id: no face found"):
        reference_face(dlib_analyzer, noise, name="noise-id")


def test_unreadable_files_raise_face_image_error(tmp_path, dlib_analyzer, photos):
    from PIL import Image

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(FaceImageError, match=r"garbage.png: not a readable image.*save the ID photo as PNG"):
        load_image(garbage)
    buf = io.BytesIO()
    Image.fromarray(photos["astronaut"]).save(buf, "PNG")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(FaceImageError, match=r"corrupt.png: not a readable image, the file is corrupt or truncated"):
        reference_face(dlib_analyzer, corrupt)
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    with pytest.raises(FaceImageError, match=r"notes.jpg: not a readable image \(not an image format"):
        load_image(text)
    with pytest.raises(FaceImageError, match=r"missing.png: no such file"):
        reference_face(dlib_analyzer, tmp_path / "missing.png")
    with pytest.raises(FaceImageError, match="is a folder"):
        load_image(tmp_path)
    with pytest.raises(FaceImageError, match=r"odd: expected an HxWx3 RGB image array"):
        reference_face(dlib_analyzer, np.zeros((4, 4, 5), np.uint8), name="odd")


def test_load_image_converts_modes_and_exif(tmp_path, photos):
    from PIL import Image

    astro = photos["astronaut"]
    rgba = np.dstack([astro, np.full(astro.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0  # transparent corner -> white
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    out = load_image(tmp_path / "rgba.png")
    assert out.shape == (512, 512, 3) and (out[:10, :10] == 255).all() and np.array_equal(out[20:], astro[20:])
    Image.fromarray(astro[:, :, 0]).save(tmp_path / "grey.png")
    grey = load_image(tmp_path / "grey.png")
    assert grey.shape == (512, 512, 3) and np.array_equal(grey[..., 1], astro[..., 0])
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, :40] = 255  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(wide).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    rot = load_image(tmp_path / "rot.jpg")
    assert rot.shape == (80, 40, 3) and rot[:30].mean() > 200 and rot[50:].mean() < 50


def test_multiple_faces_error_first_and_largest(tmp_path, dlib_analyzer, photos):
    from PIL import Image

    left = photos["astronaut"][:256, 100:356]  # small face
    right = np.asarray(Image.fromarray(photos["tom_hanks"]).resize((256, 256)))  # big face
    two = tmp_path / "two.png"
    Image.fromarray(np.concatenate([left, right], axis=1)).save(two)
    with pytest.raises(MultipleFacesError, match=r"two.png: 2 faces found.*first.*largest"):
        reference_face(dlib_analyzer, two)
    image, first = reference_face(dlib_analyzer, two, on_multiple="first")
    _, largest = reference_face(dlib_analyzer, two, on_multiple="largest")
    assert image.shape == (256, 512, 3)
    assert first.bbox[0] < 256 <= largest.bbox[0]  # best score: the astronaut; biggest box: the other face
    assert largest.area > 2 * first.area and first.score > largest.score
    with pytest.raises(ValueError, match="error, first, largest"):
        reference_face(dlib_analyzer, two, on_multiple="biggest")


def test_face_to_dict_is_json_and_round_trips(dlib_faces):
    f = dlib_faces["astronaut"][0]
    d = json.loads(json.dumps(f.to_dict()))
    assert set(d) == {"bbox", "kps", "score", "embedding", "backend", "kps_estimated"}
    g = Face.from_dict(d)
    assert g.bbox == f.bbox and np.allclose(g.kps, f.kps) and np.allclose(g.embedding, f.embedding)
    assert g.backend == "dlib" and g.score == pytest.approx(f.score)
    half_out = Face((-50.0, -50.0, 50.0, 50.0), np.zeros((5, 2), np.float32), 1.0)
    assert half_out.area == 10000 and half_out.area_ratio((100, 200)) == pytest.approx(2500 / 20000)
    assert half_out.to_dict()["embedding"] is None


@pytest.mark.parametrize("size", [224, 112, 256])
def test_align_face_puts_keypoint_dots_on_the_template(size):
    ratio, shift = (size / 112, 0.0) if size % 112 == 0 else (size / 128, 8.0 * size / 128)
    target = ARCFACE_DST * ratio + [shift, 0.0]
    # the template seen through a rotation by 0.3 rad, scale 1.7 and a shift: an exact similarity
    c, s = np.cos(0.3), np.sin(0.3)
    kps = (ARCFACE_DST - 56) @ (1.7 * np.array([[c, -s], [s, c]])).T + [200, 170]
    img = np.zeros((360, 400, 3), np.uint8)
    yy, xx = np.mgrid[:360, :400]
    for x, y in kps:
        img[(xx - x) ** 2 + (yy - y) ** 2 <= 9] = 255
    crop = align_face(img, kps, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    assert np.allclose(transform_points(kps, estimate_norm(kps, size)), target, atol=1e-3)
    cy, cx = np.mgrid[:size, :size]
    for tx, ty in target:  # the centroid of each warped dot is its template point
        near = ((cx - tx) ** 2 + (cy - ty) ** 2 <= (5 * ratio) ** 2) & (crop[..., 0] > 0)
        w = crop[..., 0][near].astype(float)
        assert w.sum() > 0
        assert abs((cx[near] * w).sum() / w.sum() - tx) < 0.5 and abs((cy[near] * w).sum() / w.sum() - ty) < 0.5
    assert crop[crop.sum(-1) > 0].shape[0] < 0.05 * size * size  # the rest stays black


def test_umeyama_matches_skimage_similarity_transform():
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(1)
    for _ in range(20):
        src, dst = rng.normal(100, 40, (5, 2)), rng.normal(60, 20, (5, 2))
        if hasattr(SimilarityTransform, "from_estimate"):
            ref = SimilarityTransform.from_estimate(src, dst).params
        else:
            ref = SimilarityTransform()
            ref.estimate(src, dst)
            ref = ref.params
        assert np.allclose(umeyama_similarity(src, dst), ref, atol=1e-9)
    with pytest.raises(ValueError, match="multiple of 112 or 128"):
        estimate_norm(ARCFACE_DST, 100)


def test_align_face_matches_insightface_norm_crop(photos, dlib_faces):
    try:
        from insightface.utils import face_align as fa
    except Exception as e:  # noqa: BLE001 - any import failure means there is no reference to compare with
        pytest.skip(f"insightface.utils.face_align (needs insightface + opencv) not importable: {e}")
    for key in ("astronaut", "t1_far_right"):
        kps = dlib_faces[key][0].kps
        for size in (224, 112):
            ours = align_face(photos[key], kps, size).astype(float)
            with warnings.catch_warnings():  # insightface's own skimage deprecation warning
                warnings.simplefilter("ignore")
                ref = fa.norm_crop(photos[key], kps, size).astype(float)
            diff = np.abs(ours - ref)
            assert ours.shape == ref.shape and diff.mean() < 0.5 and diff.max() <= 2, (key, size)  # measured 0.00, 1


def test_detect_with_retry_order_and_stop():
    calls = []

    def fake(size):
        calls.append(size)
        return ["face"] if size <= 512 else []

    assert detect_with_retry(fake) == (["face"], 512)
    assert calls == [640, 576, 512]
    calls.clear()
    assert detect_with_retry(lambda s: calls.append(s) or []) == ([], None)
    assert calls == list(DET_SIZES) == [640, 576, 512, 448, 384, 320]
    assert detect_with_retry(lambda s: [s], sizes=(320,)) == ([320], 320)


def test_onnx_providers():
    assert onnx_providers("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert onnx_providers("cuda:1", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]


def test_insightface_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    folder = tmp_path / "models" / "buffalo_l"
    with pytest.raises(FaceModelUnavailable, match=rf"{folder}.*dlib"):
        make_analyzer("insightface", root=str(tmp_path))
    assert not (tmp_path / "models").exists()  # nothing created, nothing downloaded
    (folder / "buffalo_l").mkdir(parents=True)
    (folder / "buffalo_l" / "det_10g.onnx").write_bytes(b"x")
    with pytest.raises(FaceModelUnavailable, match="move its files up one folder"):
        make_analyzer("insightface", root=str(tmp_path))


class _FakeInsightFace:
    """Stands in for ``insightface.app.FaceAnalysis``: faces only at det size <= 512."""

    instances: list = []

    def __init__(self, name, root, providers, allowed_modules):
        self.args = dict(name=name, root=root, providers=providers, allowed_modules=allowed_modules)
        self.prepared, self.images = [], []
        self.models = {"recognition": types.SimpleNamespace(output_shape=["None", 512])}  # w600k_r50's
        _FakeInsightFace.instances.append(self)

    def prepare(self, ctx_id, det_size):
        self.prepared.append((ctx_id, det_size))

    def get(self, img):
        self.images.append(img)
        if self.prepared[-1][1][0] > 512:
            return []
        face = types.SimpleNamespace(bbox=np.array([10, 20, 50, 70], np.float32), det_score=np.float32(0.9),
                                     kps=np.arange(10, dtype=np.float32).reshape(5, 2), embedding=np.ones(512))
        face.normed_embedding = face.embedding / np.linalg.norm(face.embedding)
        return [face]


def test_insightface_backend_with_a_fake_model(tmp_path, monkeypatch):
    folder = tmp_path / "models" / "buffalo_l"
    folder.mkdir(parents=True)
    (folder / "det_10g.onnx").write_bytes(b"x")
    package, app = types.ModuleType("insightface"), types.ModuleType("insightface.app")
    app.FaceAnalysis, package.app = _FakeInsightFace, app
    monkeypatch.setitem(sys.modules, "insightface", package)
    monkeypatch.setitem(sys.modules, "insightface.app", app)
    analyzer = make_analyzer("insightface", root=str(tmp_path))
    fake = _FakeInsightFace.instances[-1]
    assert fake.args == dict(name=str(folder.resolve()), root=str(tmp_path), providers=["CPUExecutionProvider"],
                             allowed_modules=["detection", "recognition"])
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = 255  # red
    faces = analyzer.detect(rgb)
    assert [size for _, (size, _) in fake.prepared] == [640, 576, 512] and analyzer.last_det_size == 512
    assert all(ctx == -1 for ctx, _ in fake.prepared)  # CPU
    assert (fake.images[-1][..., 2] == 255).all() and (fake.images[-1][..., 0] == 0).all()  # BGR
    (f,) = faces
    assert f.bbox == (10.0, 20.0, 50.0, 70.0) and f.score == pytest.approx(0.9) and f.backend == "insightface"
    assert f.embedding.shape == (512,) and f.embedding.dtype == np.float32
    assert np.linalg.norm(f.embedding) == pytest.approx(1.0) and f.kps.shape == (5, 2)
    assert analyzer.detect(np.zeros((8, 8, 3), np.uint8)) and analyzer.last_det_size == 512
    small = make_analyzer("insightface", root=str(tmp_path), det_size=448)
    assert small.detect(rgb) and [s for _, (s, _) in _FakeInsightFace.instances[-1].prepared] == [448]


def test_make_analyzer(dlib_analyzer, skimage_analyzer):
    with pytest.raises(ValueError, match="insightface, dlib, skimage"):
        make_analyzer("opencv")
    assert BACKENDS == ("insightface", "dlib", "skimage")
    assert isinstance(dlib_analyzer, FaceAnalyzer) and isinstance(skimage_analyzer, FaceAnalyzer)
    assert (dlib_analyzer.name, dlib_analyzer.embedding_dim) == ("dlib", 128)
