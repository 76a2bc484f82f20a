"""The face world's training scenes and its weight-file plumbing (no diffusion model)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fastface.models.faceworld import scenes
from fastface.models.faceworld import world as fw


def test_identities_are_the_eight_people_of_the_shipped_photos():
    ids = scenes.identities()
    assert [f.name for f in ids] == sorted(f.name for f in ids)
    assert len(ids) == 8 and {"astronaut", "tom_hanks", "t1_back_left"} <= {f.name for f in ids}
    assert all(f.crop.shape == (scenes.CROP, scenes.CROP, 3) and f.crop.dtype == np.uint8 for f in ids)


def test_compose_is_deterministic_and_the_box_tracks_the_shot():
    spec_close = scenes.SceneSpec(0, scenes.SHOTS[0], "red", "striped")
    a, box_a = scenes.compose(spec_close, np.random.default_rng(3))
    b, box_b = scenes.compose(spec_close, np.random.default_rng(3))
    assert np.array_equal(a, b) and box_a == box_b  # same code, same seed
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8

    def area(shot):
        rng = np.random.default_rng(0)
        out = []
        for i in range(40):
            _, (x0, y0, x1, y1) = scenes.compose(scenes.SceneSpec(i % 8, shot, "gray", "plain"), rng)
            out.append((x1 - x0) * (y1 - y0) / 64 ** 2)
        return float(np.mean(out))

    close, wide = area(scenes.SHOTS[0]), area(scenes.SHOTS[1])
    assert close > 2 * wide  # measured (the final geometry, the default): 0.51 vs 0.19


def test_the_geometries_make_the_same_draws_with_their_own_face_sizes():
    """Stage 1 draws geometry "first", stage 2 and everything after training "final": the same
    scenes (background, placement draws, brightness) with faces of each geometry's size."""
    for i in range(24):
        spec = scenes.SceneSpec(i % 8, scenes.SHOTS[i % 2], list(scenes.COLOURS)[i % 8], scenes.TEXTURES[i % 3])
        rngs = {g: np.random.default_rng(i) for g in scenes.GEOMETRIES}
        boxes = {g: scenes.compose(spec, rngs[g], geometry=g)[1] for g in scenes.GEOMETRIES}
        assert len({r.random() for r in rngs.values()}) == 1  # each geometry drew as many numbers
        for g, (x0, y0, x1, y1) in boxes.items():
            lo, hi = scenes.PASTE[g][spec.shot]
            assert lo / 2 <= x1 - x0 <= hi / 2 and abs((x1 - x0) - (y1 - y0)) < 1e-9
        assert boxes["final"][2] - boxes["final"][0] > boxes["first"][2] - boxes["first"][0]
    x_default, _ = scenes.batch(np.random.default_rng(1), 3)
    x_final, _ = scenes.batch(np.random.default_rng(1), 3, geometry="final")
    assert np.array_equal(x_default, x_final)  # the world's own scenes are the final geometry
    with pytest.raises(ValueError, match="geometry 'big'.*first, final"):
        scenes.batch_with_boxes(np.random.default_rng(0), 2, geometry="big")


def test_flip_false_keeps_every_face_as_in_its_photo():
    """An asymmetric crop (bright left half, dark right half): mirrored scenes put the dark half
    on the left. With ``flip=False`` none does, and the rest of the scene is unchanged."""
    crop = np.zeros((scenes.CROP, scenes.CROP, 3), np.uint8)
    crop[:, : scenes.CROP // 2] = 250
    spec = scenes.SceneSpec(0, scenes.SHOTS[0], "gray", "plain")

    def left_brighter(img, box):
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cx = (x0 + x1) // 2
        return img[y0:y1, x0:cx].mean() > img[y0:y1, cx:x1].mean()

    kept, mirrored = [], []
    for seed in range(24):
        a, box_a = scenes.compose(spec, np.random.default_rng(seed), crop=crop, flip=False)
        b, box_b = scenes.compose(spec, np.random.default_rng(seed), crop=crop)
        assert box_a == box_b  # the same draws: only the mirroring differs
        kept.append(left_brighter(a, box_a))
        mirrored.append(not left_brighter(b, box_b))
    assert all(kept)
    assert 4 <= sum(mirrored) <= 20  # the control: about half of the default scenes are mirrored


def test_background_colour_follows_the_prompt():
    rng = np.random.default_rng(1)
    img, _ = scenes.compose(scenes.SceneSpec(2, scenes.SHOTS[0], "blue", "plain"), rng)
    corners = np.concatenate([img[:3, :3], img[:3, -3:], img[-3:, :3], img[-3:, -3:]]).reshape(-1, 3)
    r, g, b = np.median(corners, axis=0)  # a close-up's ellipse leaves the corners to the background
    assert b > r + 60 and b > g + 60
    assert scenes.SceneSpec(2, scenes.SHOTS[1], "blue", "plain").prompt == \
        "wide shot of a person, blue plain background"
    assert len(scenes.all_prompts()) == len(scenes.SHOTS) * len(scenes.COLOURS) * len(scenes.TEXTURES)


def test_batch_is_scaled_to_minus_one_one():
    x, specs = scenes.batch(np.random.default_rng(0), 5)
    assert x.shape == (5, 3, 64, 64) and x.dtype == np.float32 and len(specs) == 5
    assert -1.0 <= x.min() < -0.5 and 0.5 < x.max() <= 1.0


def test_weights_file_round_trip_in_float16(tmp_path):
    weights = {"unet": {"a.weight": torch.randn(3, 4)}, "faceid": {"image_proj": {"proj.0.weight": torch.randn(2)},
                                                                  "ip_adapter": {"1.to_k_ip.weight": torch.randn(5, 2)}}}
    for part in fw.PARTS:
        weights.setdefault(part, {})
    path = tmp_path / "face_world.safetensors"
    fw.save_weights(weights, {"seed": 0}, path, tmp_path / "face_world.json")
    back = fw.load_weights(path)
    assert set(back["faceid"]["ip_adapter"]) == {"1.to_k_ip.weight"}
    assert torch.allclose(back["unet"]["a.weight"], weights["unet"]["a.weight"], atol=2e-3, rtol=1e-3)  # f16 step
    assert back["unet"]["a.weight"].dtype == torch.float32
    assert fw.shipped_meta(path) == {"seed": 0}


def test_missing_weights_name_the_fix(tmp_path):
    with pytest.raises(fw.FaceWorldMissing, match="fastface face-world --train"):
        fw.shipped_meta(tmp_path / "face_world.safetensors")
