"""Each evaluation metric on the tiny evaluation world (random weights in the real layouts):
layouts and key names, shapes, ranges, determinism, and known answers (identical faces give
similarity 1, a blank image gives a face failure, the aesthetic MLP is an affine map, padding
is masked in ImageReward's text encoder, OpenAI's CLIP transform)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from fastface.evaluation.clip_scores import (AESTHETIC_FILE, AESTHETIC_REPOS, CLIP_ID, AestheticScorer, ClipScorer,
                                             load_reward_mlp, style_text)
from fastface.evaluation.protocol import face_crop, face_crop_box
from fastface.evaluation.models import CLIP_MEAN, CLIP_STD, ModelUnavailable, clip_preprocess, files_sha8
from fastface.evaluation.tiny import build_tiny_eval_world



MLP_SHAPES = {"layers.0.weight": (1024, 768), "layers.0.bias": (1024,), "layers.2.weight": (128, 1024),
              "layers.2.bias": (128,), "layers.4.weight": (64, 128), "layers.4.bias": (64,),
              "layers.6.weight": (16, 64), "layers.6.bias": (16,), "layers.7.weight": (1, 16), "layers.7.bias": (1,)}


@pytest.fixture(scope="module")
def world():
    return build_tiny_eval_world()


@pytest.fixture(scope="module")
def clip(world):
    return ClipScorer(CLIP_ID, weights_root=world, label="tiny:" + CLIP_ID)


@pytest.fixture(scope="module")
def images():
    from fastface.faces.photos import sample_photos

    astro = sample_photos()["astronaut"]
    rng = np.random.default_rng(0)
    return [astro, astro[100:400, 50:450], rng.integers(0, 255, (96, 160, 3), dtype=np.uint8)]


def test_tiny_world_has_the_real_layouts(world):
    sd = torch.load(world / AESTHETIC_REPOS[0] / AESTHETIC_FILE, weights_only=True)
    assert {k: tuple(v.shape) for k, v in sd.items()} == MLP_SHAPES  # exact key names and real dims
    cfg = json.loads((world / CLIP_ID / "config.json").read_text())
    assert cfg["projection_dim"] == 768 and cfg["architectures"] == ["CLIPModel"]
    assert (world / CLIP_ID / "model.safetensors").is_file() and (world / CLIP_ID / "preprocessor_config.json").is_file()
    ir = torch.load(world / "THUDM/ImageReward/ImageReward.pt", weights_only=True)
    med = json.loads((world / "THUDM/ImageReward/med_config.json").read_text())
    assert med["hidden_size"] == 768 and med["add_cross_attention"] is True
    for key in ("blip.visual_encoder.patch_embed.proj.weight", "blip.visual_encoder.blocks.1.attn.qkv.weight",
                "blip.visual_encoder.norm.weight", "blip.text_encoder.embeddings.word_embeddings.weight",
                "blip.text_encoder.encoder.layer.0.crossattention.self.key.weight",
                "blip.text_encoder.encoder.layer.0.attention.output.LayerNorm.weight", "blip.vision_proj.weight"):
        assert key in ir, key
    assert {k[len("mlp."):]: tuple(v.shape) for k, v in ir.items() if k.startswith("mlp.")} == MLP_SHAPES
    assert ir["blip.text_encoder.encoder.layer.0.crossattention.self.key.weight"].shape == (768, 64)  # vision width
    assert (world / "bert-base-uncased").is_dir()


def test_clip_preprocess_is_openais_transform():
    from PIL import Image

    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)  # H 200, W 300
    x = clip_preprocess(img)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    ref = Image.fromarray(img).resize((336, 224), Image.BICUBIC).crop((56, 0, 280, 224))  # int(224*300/200), round(112/2)
    expect = (np.asarray(ref, np.float32) / 255 - np.array(CLIP_MEAN, np.float32)) / np.array(CLIP_STD, np.float32)
    np.testing.assert_allclose(x, expect.transpose(2, 0, 1), atol=1e-6)
    gray = clip_preprocess(np.full((50, 50, 3), 128, np.uint8))
    np.testing.assert_allclose(gray[:, 0, 0], (128 / 255 - np.array(CLIP_MEAN)) / np.array(CLIP_STD), atol=1e-6)


def test_clip_score(clip, images):
    texts = ["a photo of an astronaut", "an astronaut, close up", "noise"]
    s = clip.score(images, texts)
    assert s.shape == (3,) and np.all((s >= 0) & (s <= 1))
    np.testing.assert_array_equal(s, clip.score(images, texts))  # deterministic
    model = clip.load()
    with torch.no_grad():  # by hand: cos of the projected embeddings, clipped at 0
        px = torch.from_numpy(np.stack([clip_preprocess(im) for im in images]))
        img = model.get_image_features(pixel_values=px)
        img = img if isinstance(img, torch.Tensor) else img.pooler_output
        tok = clip._tokenizer(texts, padding=True, return_tensors="pt")
        txt = model.get_text_features(**tok)
        txt = txt if isinstance(txt, torch.Tensor) else txt.pooler_output
        cos = torch.nn.functional.cosine_similarity(img, txt).clamp_min(0).numpy()
    np.testing.assert_allclose(s, cos, atol=1e-5)
    emb = clip.image_embeds(images)
    assert emb.shape == (3, 768) and torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert re.fullmatch(r"tiny:openai/clip-vit-large-patch14@[0-9a-f]{8}", clip.model_id)
    with pytest.raises(ValueError, match="2 images but 1 texts"):
        clip.score(images[:2], texts[:1])


def test_aesthetic_is_the_mlp_on_normalised_embeddings(clip, world, images):
    ae = AestheticScorer(clip, weights_root=world, label_prefix="tiny:")
    s = ae.score(images)
    assert s.shape == (3,) and np.isfinite(s).all()
    np.testing.assert_array_equal(s, ae.score(images))
    # known answer: Linear layers without activations compose to one affine map
    sd = torch.load(world / AESTHETIC_REPOS[0] / AESTHETIC_FILE, weights_only=True)
    w, b = sd["layers.0.weight"].double(), sd["layers.0.bias"].double()
    for i in (2, 4, 6, 7):
        wi, bi = sd[f"layers.{i}.weight"].double(), sd[f"layers.{i}.bias"].double()
        w, b = wi @ w, wi @ b + bi
    e = clip.image_embeds(images).double()
    np.testing.assert_allclose(s, (e @ w.T + b).reshape(-1).numpy(), atol=1e-5)
    assert ae.model_id.startswith("tiny:christophschuhmann/improved-aesthetic-predictor/"
                                  "sac+logos+ava1-l14-linearMSE.pth@") and ae.model_id.endswith(clip.model_id)
    broken = {k: v for k, v in sd.items() if k != "layers.7.bias"}
    with pytest.raises(ModelUnavailable, match="layers.0/2/4/6/7"):
        load_reward_mlp(broken, "x.pth")


def test_image_reward(world, images):
    from fastface.evaluation.image_reward import (MAX_TEXT_LEN, REWARD_MEAN, REWARD_STD, ImageRewardScorer,
                                                  build_model, MedConfig)
    from fastface.evaluation.models import load_state_dict

    ir = ImageRewardScorer(weights_root=world, label="tiny:THUDM/ImageReward")
    prompts = ["a photo of an astronaut", "an astronaut, close up", "noise"]
    s = ir.score(images, prompts)
    assert s.shape == (3,) and np.isfinite(s).all()
    np.testing.assert_allclose(s, ir.score(images, prompts), atol=0)
    np.testing.assert_allclose(s[1:2], ir.score(images[1:2], prompts[1:2]), atol=1e-5)  # batch = single
    assert ir.score(images[:1], ["a cat"])[0] != pytest.approx(s[0], abs=1e-7)  # the text matters
    assert set(ir.unexpected_keys) >= {"blip.vision_proj.weight", "blip.text_proj.weight"}
    tok = ir.tokens(prompts[:1])
    assert tok["input_ids"].shape == (1, MAX_TEXT_LEN) and tok["input_ids"][0, 0] == ir._tok.cls_token_id
    model = ir.load()
    with torch.no_grad():
        px = ir.pixels(images[:1])
        tokens = model.blip.visual_encoder(px)
        assert tokens.shape == (1, 50, 64)  # [CLS] + 7x7 patches of the tiny ViT
        hidden = model.blip.text_encoder(tok["input_ids"], tok["attention_mask"], tokens)
        manual = (model.mlp(hidden[:, 0]).item() - REWARD_MEAN) / REWARD_STD
        assert s[0] == pytest.approx(manual, abs=1e-5)
        # padding is masked: the unpadded prompt gives the same [CLS] state
        n = int(tok["attention_mask"].sum())
        short = model.blip.text_encoder(tok["input_ids"][:, :n], tok["attention_mask"][:, :n], tokens)
        torch.testing.assert_close(short[:, 0], hidden[:, 0], atol=1e-4, rtol=1e-4)
    state = load_state_dict(ir.path)
    state.pop("blip.text_encoder.encoder.layer.0.crossattention.self.query.weight")
    with pytest.raises(ModelUnavailable, match="keys missing"):
        build_model(state, MedConfig.from_file(ir.config_path))


def test_face_metrics_with_dlib(images):
    from fastface.evaluation.face_scores import FaceScorer

    face = FaceScorer("dlib")
    astro = images[0]
    ref = face.reference(astro, key="astronaut")
    res = face.analyse(astro, ref)
    assert res.detected and res.n_faces == 1
    assert res.id_sim == pytest.approx(1.0, abs=1e-6)  # the same image: similarity 1
    assert res.face_size == pytest.approx(res.face.area_ratio(astro.shape)) and 0.02 < res.face_size < 0.05
    blank = face.analyse(np.full((256, 256, 3), 127, np.uint8), ref)
    assert not blank.detected and blank.id_sim is None and blank.face_size is None and blank.n_faces == 0
    assert re.fullmatch(r"dlib/face_recognition_resnet_model_v1@[0-9a-f]{8}", face.model_id)
    assert FaceScorer("dlib").model_id == face.model_id  # stable
    none, why = face.reference_for("/no/such/photo.png")
    assert none is None and "no such file" in why


def test_face_crop_and_style_text():
    assert face_crop_box((10, 20, 30, 60), (100, 100)) == (0, 20, 40, 60)  # 40 px square on (20, 40), clipped
    assert face_crop_box((40, 40, 60, 50), (100, 100)) == (40, 35, 60, 55)
    crop = face_crop(np.zeros((100, 100, 3), np.uint8), (40, 40, 60, 50))
    assert crop.shape == (20, 20, 3)
    assert style_text("watercolor painting; Person in a garden") == "watercolor painting"
    assert style_text("a photo of a person") is None and style_text(" ; Person") is None


def test_model_strings(tmp_path, monkeypatch):
    from fastface.evaluation.face_scores import face_model_string
    from fastface.faces.base import FaceModelUnavailable

    monkeypatch.setenv("FASTFACE_CACHE", str(tmp_path / "cache"))
    a = tmp_path / "w.bin"
    a.write_bytes(b"one")
    first = files_sha8([a])
    assert re.fullmatch(r"[0-9a-f]{8}", first) and files_sha8([a]) == first
    a.write_bytes(b"two!")
    assert files_sha8([a]) != first
    with pytest.raises(FaceModelUnavailable, match="buffalo_l"):
        face_model_string("insightface", root=tmp_path / "none")
    fake = tmp_path / "if" / "models" / "buffalo_l"
    fake.mkdir(parents=True)
    (fake / "w600k_r50.onnx").write_bytes(b"x")
    assert re.fullmatch(r"insightface/buffalo_l@[0-9a-f]{8}", face_model_string("insightface", root=tmp_path / "if"))


def test_missing_models_are_named(tmp_path):
    from fastface.evaluation.evaluate import EvalConfig, EvaluationError, Evaluator

    with pytest.raises(EvaluationError) as e:
        Evaluator(EvalConfig(metrics=("ir",), weights_root=str(tmp_path), device="cpu",
                             image_reward_model=str(tmp_path / "nothing-here")))
    assert "ImageReward" in str(e.value) and "--metrics without 'ir'" in str(e.value)
    with pytest.raises(EvaluationError, match="unknown metric"):
        EvalConfig(metrics=("id", "nope"))


def test_hub_errors_are_quoted_in_whole_sentences():
    from fastface.evaluation.models import _missing_message, first_sentences

    long = ("Repository Not Found for url: https://huggingface.co/api/models/x/y/revision/main. "
            + "Please make sure you specified the correct `repo_id` and `repo_type`. " * 8
            + "If you are trying to access a private or gated repo, make sure you are authenticated.")
    short = first_sentences(long)
    assert short.endswith(".") and long.startswith(short) and len(short) <= 400
    assert "huggingface.co/api/models/x/y/revision/main." in short  # dots inside a URL do not end a sentence
    one = first_sentences("x" * 500 + ". tail")  # a single overlong sentence is kept whole
    assert one == "x" * 500 + "."
    msg = _missing_message("org/clip", "CLIP model org/clip", None, OSError("line one.\nline two."), "clip")
    assert "\n" not in msg and "(OSError: line one. line two.)" in msg and "--metrics without 'clip'" in msg


def test_dlib_defaults_are_the_ones_in_its_model_string():
    """The model string hashes DlibAnalyzer.SETTINGS: they must be the constructor's defaults."""
    import inspect

    pytest.importorskip("dlib")
    from fastface.faces.dlib import DlibAnalyzer

    params = inspect.signature(DlibAnalyzer.__init__).parameters
    assert {k: params[k].default for k in DlibAnalyzer.SETTINGS} == DlibAnalyzer.SETTINGS
