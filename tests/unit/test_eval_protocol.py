"""Each choice of the release protocol on hand-made inputs with hand-worked answers: several
faces in a generated image, the release's face size, FSC prompts with and without ';', the
release's integer crop (negative coordinates included), the 0..255 pixels it feeds CLIP, the
aesthetic head, and all of it through ``Evaluator.compute`` with a scripted face detector."""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fastface.evaluation.models import CLIP_MEAN, CLIP_STD
from fastface.evaluation.protocol import (ProtocolError, Protocol, fsc_text, pick_generated_face, protocol_of,
                                          release_clip_pixels, release_crop, release_face_ratio, strip_protocol,
                                          tag_model)
from fastface.faces.base import Face


def face(bbox, score, emb=None):
    return Face(tuple(float(v) for v in bbox), np.zeros((5, 2), np.float32), score,
                None if emb is None else np.asarray(emb, np.float32), "test")


SMALL_BEST = face((-10, 20, 50, 80), 0.95, [1, 0, 0])    # 60 x 60, best score, sticks out on the left
LARGE = face((100, 10, 190, 95), 0.80, [0.6, 0.8, 0])     # 90 x 85, the largest


def test_tags():
    m = tag_model("insightface/buffalo_l@ab12cd34", "release")
    assert m == "insightface/buffalo_l@ab12cd34#protocol=release" and protocol_of(m) == "release"
    assert tag_model(m, "corrected").endswith("#protocol=corrected") and strip_protocol(m) == "insightface/buffalo_l@ab12cd34"
    assert protocol_of("dlib") is None and protocol_of(None) is None
    with pytest.raises(ProtocolError, match="choose one of release, corrected"):
        Protocol("paper")


def test_several_faces_release_takes_faces0_corrected_the_largest():
    assert pick_generated_face([SMALL_BEST, LARGE], "release") is SMALL_BEST
    assert pick_generated_face([SMALL_BEST, LARGE], "corrected") is LARGE
    assert pick_generated_face([], "release") is None


def test_release_face_ratio_is_unclipped_faces0_of_the_last_pass():
    shape = (100, 200, 3)  # h 100, w 200
    # faces[0] = SMALL_BEST: 60 * 60 / (100 * 200), although 10 px of it lie left of the image
    assert release_face_ratio([SMALL_BEST, LARGE], shape) == pytest.approx(3600 / 20000)
    assert SMALL_BEST.area_ratio(shape) == pytest.approx(50 * 60 / 20000)  # ours clips: 0.15
    assert release_face_ratio([], shape) == 0.0  # no face in the 320 pass: 0.0, not missing


def test_fsc_text_with_and_without_semicolon():
    assert fsc_text("watercolor painting; Person in a garden") == "watercolor painting"
    assert fsc_text("pixel art;  Person; waving") == "pixel art"
    assert fsc_text("a photo of a person in a park") == "a photo of a person in a park"  # every prompt is scored


def test_release_crop_integer_box_and_python_slicing():
    img = np.arange(10 * 10 * 3, dtype=np.int64).reshape(10, 10, 3)
    crop = release_crop(img, (2.9, 1.2, 6.7, 5.99))  # int() -> (2, 1, 6, 5): rows 1..4, columns 2..5
    np.testing.assert_array_equal(crop, img[1:5, 2:6])
    # int(-3.2) = -3: columns -3:9 wrap to 7:9, the far edge of the image (the release's slicing)
    np.testing.assert_array_equal(release_crop(img, (-3.2, 0, 9.8, 3)), img[0:3, 7:9])
    assert release_crop(img, (-3.5, 2, 4, 6)) is None  # 7:4 is empty


def test_release_pixels_0_255_crop_and_minus1_1_image():
    white = np.full((30, 30, 3), 255, np.uint8)
    black = np.zeros((30, 30, 3), np.uint8)
    mean, std = np.array(CLIP_MEAN), np.array(CLIP_STD)
    quirk = release_clip_pixels([white, black], value_range="0..255").numpy()
    right = release_clip_pixels([white, black], value_range="-1..1").numpy()
    assert quirk.shape == (2, 3, 224, 224)
    # 0..255 into Normalize(mean=-1, std=2): 255 -> 128, 0 -> 0.5, then CLIP's normalisation
    np.testing.assert_allclose(quirk[0, :, 100, 100], (128 - mean) / std, rtol=1e-5)   # ~[474.7, 488.1, 462.7]
    np.testing.assert_allclose(quirk[1, :, 100, 100], (0.5 - mean) / std, rtol=1e-4)   # ~[0.069, 0.161, 0.333]
    # the release's generated images: (x/255 - 0.5) * 2 in [-1, 1] -> [0, 1]
    np.testing.assert_allclose(right[0, :, 5, 5], (1 - mean) / std, rtol=1e-5)        # ~[1.93, 2.07, 2.15]
    np.testing.assert_allclose(right[1, :, 5, 5], (0 - mean) / std, rtol=1e-5)         # ~[-1.79, -1.75, -1.48]
    assert quirk.max() > 480 and right.max() < 2.2
    # a 20 x 40 crop: short side to 224 (448 wide), bicubic antialias on floats, centre crop at column 112
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)
    x = (torch.from_numpy(wide).permute(2, 0, 1).float()[None] + 1) / 2
    x = F.interpolate(x, size=(224, 448), mode="bicubic", align_corners=False, antialias=True)[0, :, :, 112:336]
    expect = (x - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    torch.testing.assert_close(release_clip_pixels([wide], value_range="0..255")[0], expect)


# ------------------------------------------------------------------ through Evaluator.compute
class ScriptedDetector:
    """Faces by image height: 60 px = the ID photo, 100 px = the generated image, 40 px = a
    photo without a face."""

    name, embedding_dim, last_det_size = "scripted", 3, None

    def detect(self, image):
        return {60: [face((10, 10, 40, 40), 0.99, [1, 0, 0])], 100: [SMALL_BEST, LARGE]}.get(image.shape[0], [])


def _png(arr) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    (root / "ref.png").write_bytes(_png(rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)))
    (root / "noface.png").write_bytes(_png(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)))
    return root, rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)


def _evaluator(protocol):
    from fastface.evaluation.evaluate import EvalConfig, Evaluator
    from fastface.evaluation.face_scores import FaceScorer

    ev = Evaluator(EvalConfig(metrics=("id", "ffc", "face-size", "fsc", "clip", "ae"), tiny=True, device="cpu",
                              protocol=protocol))
    ev.face = FaceScorer.with_analyzer(ScriptedDetector(), "scripted/test@00000000")
    ev.face_model = ev.protocol.tag(ev.face.model_id)
    ev.fsc_model = ev.protocol.tag(f"{ev.clip.model_id}+{ev.face.model_id}")
    return ev


def _compute(ev, image, prompt, ref_path):
    from fastface.evaluation.evaluate import SampleWork

    row = {"run_id": "r", "sample_key": "k", "prompt": prompt, "identity": "a", "id_image_path": str(ref_path)}
    work = SampleWork(row, set(ev.wanted(row)), image=image)
    problems = Counter()
    recs = ev.compute([work], problems)[0]
    return {r.name: r.value for r in recs}, {r.name: r.model for r in recs}, problems


@pytest.mark.parametrize("prompt", ["watercolor painting; Person in a garden", "a photo of a person in a park"])
def test_release_and_corrected_choices_through_the_evaluator(photos, prompt):
    import torch

    from fastface.evaluation.models import clip_preprocess

    root, gen = photos
    rel, cor = _evaluator("release"), _evaluator("corrected")
    v, models, problems = _compute(rel, gen, prompt, root / "ref.png")
    w, cmodels, _ = _compute(cor, gen, prompt, root / "ref.png")
    assert not problems and all(m.endswith("#protocol=release") for m in models.values())
    assert all(m.endswith("#protocol=corrected") for m in cmodels.values())
    assert set(v) == set(w) == {"id_sim", "face_detected", "face_size", "fsc", "clip_t", "aesthetic"}
    # id: release faces[0] -> cos((1,0,0), (1,0,0)) = 1; corrected the largest -> cos((.6,.8,0), (1,0,0)) = 0.6
    assert v["id_sim"] == pytest.approx(1.0) and w["id_sim"] == pytest.approx(0.6)
    assert v["face_detected"] == w["face_detected"] == 1.0
    # face size: release unclipped faces[0] 3600 / 20000; corrected the largest, clipped: 90 * 85 / 20000
    assert v["face_size"] == pytest.approx(0.18) and w["face_size"] == pytest.approx(7650 / 20000)
    # aesthetic heads: the release's file under release, LAION's sac+logos+ava1 otherwise
    assert "ava+logos-l14-linearMSE.pth@" in models["aesthetic"] and "sac+logos+ava1" in cmodels["aesthetic"]
    # FSC, release: the largest box (100, 10, 190, 95) cropped as gen[10:95, 100:190], 0..255 into CLIP, raw cosine
    clip, text = rel.clip, fsc_text(prompt)
    with torch.no_grad():
        t = clip.text_embeds([text])
        e = clip.image_embeds([], pixels=release_clip_pixels([gen[10:95, 100:190]], value_range="0..255"))
        assert v["fsc"] == pytest.approx(float((e * t).sum()), abs=1e-5)
        # corrected: the 90 px square around the same box, rows round(7.5)=8 .. round(97.5)=98, right scaling
        px = torch.from_numpy(np.stack([clip_preprocess(gen[8:98, 100:190])]))
        e2 = clip.image_embeds([], pixels=px)
        assert w["fsc"] == pytest.approx(max(float((e2 * t).sum()), 0.0), abs=1e-5)
        # clip_t, release: the whole image through the release's tensor pipeline, raw cosine
        e3 = clip.image_embeds([], pixels=release_clip_pixels([gen]))
        assert v["clip_t"] == pytest.approx(float((e3 * clip.text_embeds([prompt])).sum()), abs=1e-5)
    # aesthetic, release: the head is the release's file, by name, and the value is that file's MLP
    # (Linear layers 0, 2, 4, 6, 7, no activation; dropout off) on the same embedding, computed here
    # from the raw state dict; the corrected protocol's file gives another value on it
    assert rel.ae.path.name == "ava+logos-l14-linearMSE.pth" and cor.ae.path.name == "sac+logos+ava1-l14-linearMSE.pth"

    def mlp_by_hand(path, x):
        state = torch.load(path, map_location="cpu", weights_only=True)
        for i in (0, 2, 4, 6, 7):
            x = x @ state[f"layers.{i}.weight"].double().T + state[f"layers.{i}.bias"].double()
        return float(x.reshape(()))

    release_value = mlp_by_hand(rel.ae.path, e3.double())
    assert v["aesthetic"] == pytest.approx(release_value, abs=1e-4)
    assert abs(mlp_by_hand(cor.ae.path, e3.double()) - release_value) > 1e-3


def test_id_photo_without_a_face(photos):
    root, gen = photos
    prompt = "watercolor painting; Person in a garden"
    v, _, problems = _compute(_evaluator("release"), gen, prompt, root / "noface.png")
    # release: a face failure of the sample (face_metrics.py:159-171), no id value, no FSC (:228-244)
    assert v["face_detected"] == 0.0 and v["id_sim"] is None and v["fsc"] is None and not problems
    w, _, problems = _compute(_evaluator("corrected"), gen, prompt, root / "noface.png")
    # corrected: the generated face was found; id_sim is not computed and reported; FSC needs no reference
    assert w["face_detected"] == 1.0 and "id_sim" not in w and w["fsc"] is not None
    assert sum(problems.values()) == 1 and "no face found" in next(iter(problems))


def test_release_face_size_with_insightface_uses_the_320_pass(monkeypatch):
    """get_face_ratios keeps the faces of its last pass (det size 320): a face found at 640 but not
    at 320 gives 0.0; found at both, faces[0] of the 320 pass counts (here a different box)."""
    from fastface.evaluation import face_scores
    from fastface.evaluation.face_scores import FaceScorer

    class At320:
        name, embedding_dim, last_det_size = "insightface", 512, 320

        def __init__(self, faces):
            self.faces = faces

        def detect(self, image):
            return self.faces

    image = np.zeros((100, 200, 3), np.uint8)
    scorer = FaceScorer.with_analyzer(ScriptedDetector(), "insightface/buffalo_l@00000000", backend="insightface")
    res = scorer.analyse(image, protocol="release")  # the retry found SMALL_BEST and LARGE (at 640)
    key = ("insightface", "cpu", None, 320)
    monkeypatch.setitem(face_scores._ANALYZERS, key, At320([]))
    assert scorer.release_face_size(image, res) == 0.0
    monkeypatch.setitem(face_scores._ANALYZERS, key, At320([LARGE, SMALL_BEST]))
    assert scorer.release_face_size(image, res) == pytest.approx(90 * 85 / 20000)
    # other backends have no det size: faces[0] of their one detection, unclipped
    dlibish = FaceScorer.with_analyzer(ScriptedDetector(), "dlib/x@00000000", backend="dlib")
    assert dlibish.release_face_size(image, dlibish.analyse(image)) == pytest.approx(3600 / 20000)
