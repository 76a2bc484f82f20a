"""The insightface backend end to end on a tiny ONNX stand-in of buffalo_l (tests/fixtures/buffalo_stub.py).

insightface itself loads the stub: its model_zoo routes each file by shape, SCRFD decodes the
detector's outputs (letterbox, anchors, ``/ det_scale``, NMS), ``norm_crop`` aligns and ArcFaceONNX
embeds; FastFace's ``InsightFaceAnalyzer`` wraps it. The expected boxes, keypoints and embeddings
are recomputed here in numpy from the stub's rule and weights.
"""
from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("insightface")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
cv2 = pytest.importorskip("cv2")

from fastface.faces.align import align_face  # noqa: E402
from fastface.faces.base import DET_SIZES, FaceModelUnavailable, NoFaceError  # noqa: E402
from fastface.faces.insightface import InsightFaceAnalyzer  # noqa: E402
from fastface.faces.photos import reference_face  # noqa: E402
from tests.fixtures.buffalo_stub import (  # noqa: E402
    DET_SCORE, PACK_FILES, REC_FILE, REC_POOL, recognition_weights, stub_face_box, stub_kps, write_buffalo_stub,
)

# insightface's own face_align calls skimage's deprecated SimilarityTransform.estimate
pytestmark = pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def stub_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("insightface")
    write_buffalo_stub(root)
    return root


@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut

    return astronaut()


def _norm_crop(image, kps, size):
    from insightface.utils import face_align

    return face_align.norm_crop(image, landmark=np.asarray(kps, np.float32), image_size=size)


def _stub_embedding(rgb, kps, weights):
    """The stub recogniser on insightface's 112 crop of the BGR photo, in numpy, L2-normalised."""
    crop = _norm_crop(np.ascontiguousarray(rgb[:, :, ::-1]), kps, 112)[:, :, ::-1]  # BGR crop -> RGB blob
    x = (crop.astype(np.float64) - 127.5) / 127.5
    k = 112 // REC_POOL
    pooled = x.reshape(k, REC_POOL, k, REC_POOL, 3).mean(axis=(1, 3)).transpose(2, 0, 1).ravel()  # C, H, W
    e = pooled @ weights.astype(np.float64)
    return e / np.linalg.norm(e)


def test_insightface_loads_the_stub_pack_by_shape(stub_root):
    from insightface.app import FaceAnalysis
    from insightface.model_zoo import model_zoo
    from insightface.model_zoo.package_manifest import has_model_package_manifest

    folder = stub_root / "models" / "buffalo_l"
    assert sorted(p.name for p in folder.iterdir()) == sorted(PACK_FILES)
    assert all(p.stat().st_size < 400_000 for p in folder.iterdir())
    assert not has_model_package_manifest(folder)  # legacy pack: shape routing, nothing verified
    routed = {name: model_zoo.get_model(str(folder / name), providers=["CPUExecutionProvider"]) for name in PACK_FILES}
    assert {name: (type(m).__name__, m.taskname) for name, m in routed.items()} == {
        "det_10g.onnx": ("SCRFD", "detection"), "w600k_r50.onnx": ("ArcFaceONNX", "recognition"),
        "1k3d68.onnx": ("Landmark", "landmark_3d_68"), "2d106det.onnx": ("Landmark", "landmark_2d_106"),
        "genderage.onnx": ("Attribute", "genderage")}
    det, rec = routed["det_10g.onnx"], routed["w600k_r50.onnx"]
    assert (det.fmc, det._feat_stride_fpn, det._num_anchors) == (3, [8, 16, 32], 2)
    assert det.use_kps and not det.batched  # 9 rank-2 outputs
    assert det.static_input_size is None  # dynamic input, like the real det_10g
    assert (rec.input_size, rec.input_mean, rec.input_std, rec.output_shape[-1]) == ((112, 112), 127.5, 127.5, 512)
    app = FaceAnalysis(name="buffalo_l", root=str(stub_root), providers=["CPUExecutionProvider"],
                       allowed_modules=["detection", "recognition"])
    assert sorted(app.models) == ["detection", "recognition"]


def test_detects_one_face_where_the_stub_puts_it(stub_root, astronaut):
    analyzer = InsightFaceAnalyzer(root=str(stub_root))
    faces = analyzer.detect(astronaut)
    assert analyzer.last_det_size == 640 and len(faces) == 1
    (f,) = faces
    assert f.backend == "insightface" and f.score == pytest.approx(DET_SCORE)
    # the stub's rule on the photo itself: where the box lands after insightface's / det_scale
    box = stub_face_box(astronaut.astype(np.float64).sum(axis=-1))
    assert np.abs(np.array(f.bbox) - box).max() < 1.0, (f.bbox, box)
    assert np.abs(f.kps - stub_kps(box)).max() < 1.0
    # exactly: insightface's letterbox (cv2.resize into the top-left of a 640 square), the rule there, / scale
    scale = 640 / 512
    det_img = np.zeros((640, 640, 3), np.uint8)
    det_img[:640, :640] = cv2.resize(np.ascontiguousarray(astronaut[:, :, ::-1]), (640, 640))
    exact = stub_face_box(det_img.astype(np.float64).sum(axis=-1)) / scale
    assert np.abs(np.array(f.bbox) - exact).max() < 0.01
    assert np.abs(f.kps - stub_kps(exact)).max() < 0.01


def test_embedding_is_the_stub_recogniser_on_insightfaces_norm_crop(stub_root, astronaut):
    from onnx import load, numpy_helper

    weights = recognition_weights(512, 0)
    (init,) = load(str(stub_root / "models" / "buffalo_l" / REC_FILE)).graph.initializer
    assert np.array_equal(numpy_helper.to_array(init), weights)
    analyzer = InsightFaceAnalyzer(root=str(stub_root))
    assert analyzer.embedding_dim == 512
    (f,) = analyzer.detect(astronaut)
    assert f.embedding.shape == (512,) and f.embedding.dtype == np.float32
    assert np.linalg.norm(f.embedding) == pytest.approx(1.0, abs=1e-6)
    expected = _stub_embedding(astronaut, f.kps, weights)
    assert np.abs(f.embedding - expected).max() < 1e-5  # float32 vs float64
    # the same photo gives the same embedding; another photo another one
    (again,) = analyzer.detect(astronaut.copy())
    assert np.array_equal(again.embedding, f.embedding)
    from skimage.data import chelsea

    (cat,) = analyzer.detect(chelsea())
    assert float(cat.embedding @ f.embedding) < 0.9
    assert np.abs(cat.embedding - _stub_embedding(chelsea(), cat.kps, weights)).max() < 1e-5


def test_embedding_dim_and_seed_of_the_stub(tmp_path, stub_root, astronaut):
    write_buffalo_stub(tmp_path, embedding_dim=128, seed=1, extras=False)
    assert sorted(p.name for p in (tmp_path / "models" / "buffalo_l").iterdir()) == ["det_10g.onnx", "w600k_r50.onnx"]
    analyzer = InsightFaceAnalyzer(root=str(tmp_path))
    assert analyzer.embedding_dim == 128
    (f,) = analyzer.detect(astronaut)
    assert f.embedding.shape == (128,)
    assert np.abs(f.embedding - _stub_embedding(astronaut, f.kps, recognition_weights(128, 1))).max() < 1e-5


def test_large_face_found_after_the_det_size_retry(tmp_path, astronaut):
    write_buffalo_stub(tmp_path, max_face_px=300, extras=False)
    analyzer = InsightFaceAnalyzer(root=str(tmp_path))
    box = stub_face_box(astronaut.astype(np.float64).sum(axis=-1))
    side = max(box[2] - box[0], box[3] - box[1])  # 287 px in the 512 px photo
    expected = next(s for s in DET_SIZES if side * s / 512 < 300)
    assert expected == 512  # 640 (359 px) and 576 (323 px) miss it
    (f,) = analyzer.detect(astronaut)
    assert analyzer.last_det_size == expected
    assert np.abs(np.array(f.bbox) - box).max() < 1.0  # the same place, seen at a smaller scale
    small = InsightFaceAnalyzer(root=str(tmp_path), det_size=448)
    assert len(small.detect(astronaut)) == 1 and small.last_det_size == 448
    # a black photo has no face at any size
    assert analyzer.detect(np.zeros((64, 80, 3), np.uint8)) == [] and analyzer.last_det_size is None
    with pytest.raises(NoFaceError, match="no face found by the insightface backend"):
        reference_face(analyzer, np.zeros((64, 80, 3), np.uint8))


def test_missing_or_broken_pack_says_what_to_do(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    folder = tmp_path / "models" / "buffalo_l"
    with pytest.raises(FaceModelUnavailable) as missing:
        InsightFaceAnalyzer(root=str(tmp_path))
    message = str(missing.value)
    assert "\n" not in message and str(folder) in message and "--face-backend dlib" in message
    assert not (tmp_path / "models").exists()
    write_buffalo_stub(tmp_path, extras=False)
    (folder / "det_10g.onnx").unlink()  # no detector: insightface's bare assert
    with pytest.raises(FaceModelUnavailable, match=r"could not load buffalo_l from .*AssertionError") as e:
        InsightFaceAnalyzer(root=str(tmp_path))
    assert "\n" not in str(e.value)
    (folder / "det_10g.onnx").write_bytes(b"truncated")  # a broken download
    with pytest.raises(FaceModelUnavailable, match="could not load buffalo_l") as e:
        InsightFaceAnalyzer(root=str(tmp_path))
    assert "\n" not in str(e.value)
    write_buffalo_stub(tmp_path, extras=False)
    (folder / REC_FILE).unlink()  # a detector alone would give faces without embeddings
    with pytest.raises(FaceModelUnavailable, match="no recognition model"):
        InsightFaceAnalyzer(root=str(tmp_path))


def test_a_buffalo_l_folder_in_the_working_directory_is_not_loaded(tmp_path, stub_root, astronaut, monkeypatch):
    """insightface 2.1's FaceAnalysis takes ``name`` as a folder when one of that name exists (relative to
    the working directory) before ``<root>/models/<name>``; the analyzer passes the pack's absolute path."""
    (tmp_path / "buffalo_l").mkdir()
    (tmp_path / "buffalo_l" / "det_10g.onnx").write_bytes(b"not the pack")
    monkeypatch.chdir(tmp_path)
    analyzer = InsightFaceAnalyzer(root=str(stub_root))
    assert len(analyzer.detect(astronaut)) == 1


def test_fastface_crop_is_insightfaces_224_norm_crop_in_rgb(stub_root, astronaut):
    """``align_face`` on the RGB photo = insightface's ``norm_crop`` of the cv2 BGR photo, channels reversed.

    The IP-Adapter FaceID release hands that BGR crop itself to CLIP's image processor, which reads it
    as RGB; FastFace's pipeline encodes the RGB crop (the same pixels, red and blue swapped back).
    """
    analyzer = InsightFaceAnalyzer(root=str(stub_root))
    image, face = reference_face(analyzer, astronaut, need_embedding=True)
    ours = align_face(image, face.kps, image_size=224).astype(int)
    release = _norm_crop(np.ascontiguousarray(image[:, :, ::-1]), face.kps, 224).astype(int)  # BGR
    diff = np.abs(ours - release[:, :, ::-1])
    assert ours.shape == (224, 224, 3) and diff.mean() < 0.5 and diff.max() <= 2
    assert np.abs(ours - release).mean() > 10  # not the BGR array the release passes on
