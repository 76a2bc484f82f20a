"""`fastface face-world --train` end to end on a few steps: train, export, reload, resume, and
the refinement phase (localisation loss through the pipeline's processors, always restored) and
the decoder fine-tuning after the UNet; stage 2 on the final (larger) faces, from a stage-1 export
and as the default second stage of one command."""
from __future__ import annotations

import json

import pytest
import torch


@pytest.fixture
def drawn(monkeypatch):
    """The keyword arguments of every batch of scenes drawn (``scenes.batch_with_boxes``), in order."""
    from fastface.models.faceworld import scenes

    calls: list[dict] = []
    draw = scenes.batch_with_boxes

    def spy(rng, n, **kw):
        calls.append(kw)
        return draw(rng, n, **kw)

    monkeypatch.setattr(scenes, "batch_with_boxes", spy)
    return calls


def test_train_exports_a_world_that_reloads_and_resumes(tmp_path, drawn):
    from fastface.cli import main
    from fastface.models.faceworld import world as fw

    def flips():  # those of the UNet and decoder phases (None: not given, as the autoencoder's)
        return [kw["flip"] for kw in drawn if "flip" in kw]

    work, out = tmp_path / "work", tmp_path / "out"
    args = ["face-world", "--train", "--workdir", str(work), "--out", str(out), "--ae-steps", "2", "--threads", "1",
            "--stage2-unet-steps", "0"]  # stage 1 alone (stage 2: the next test)
    assert main(args + ["--unet-steps", "2", "--decoder-steps", "0"]) == 0
    meta = json.loads((out / "face_world.json").read_text())
    assert meta["training"]["unet_steps_done"] == 2 and meta["prediction_type"] == "v_prediction"
    assert flips() == [False, False] and meta["training"]["mirror_faces"] is False  # the default: never mirrored
    weights = fw.load_weights(out / "face_world.safetensors")
    assert set(weights) == set(fw.PARTS) | {"faceid"} and weights["faceid"]["ip_adapter"]
    first = weights["unet"]["conv_in.weight"].clone()
    # resume: two more steps continue from the checkpoint (the autoencoder is not retrained),
    # in the refinement phase from step 3 on, then the decoder is fine-tuned; --mirror-faces mirrors
    # faces at random in both phases
    assert main(args + ["--unet-steps", "4", "--refine-from", "3", "--mirror-faces", "--decoder-steps", "2"]) == 0
    meta = json.loads((out / "face_world.json").read_text())
    assert meta["training"]["unet_steps_done"] == 4 and meta["training"]["mirror_faces"] is True
    assert flips() == [False, False, True, True, True, True]
    assert not torch.equal(fw.load_weights(out / "face_world.safetensors")["unet"]["conv_in.weight"], first)
    lines = [json.loads(line) for line in (work / "loss.log").read_text().splitlines()]
    records = [r for r in lines if "step" in r]
    assert [r["step"] for r in records] == [2, 4]
    # the decoder phase: logged after the UNet; only the decoder side of the autoencoder changed
    assert "decoder_loss" in lines[-1] and lines[-1]["minutes"] >= records[-1]["minutes"]
    trained_ae = torch.load(work / "vae.pt")["vae"]
    exported = fw.load_weights(out / "face_world.safetensors")["vae"]
    same = {k: torch.equal(exported[k], v.to(torch.float16).float()) for k, v in trained_ae.items()}
    decoder = [k for k in same if k.startswith(("decoder.", "post_quant_conv."))]
    assert all(same[k] for k in same if k not in decoder)  # the encoder: the UNet's latent space
    assert sum(not same[k] for k in decoder) > len(decoder) / 2
    # the refinement phase logs its localisation term (a gap of mean attention probabilities)
    assert "loc" not in records[0] and -1.0 <= records[1]["loc"] <= 1.0 and records[1]["loc"] != 0.0
    assert {kw["geometry"] for kw in drawn} == {"first"}  # stage 1 (autoencoder, UNet, decoder): the smaller faces


def test_stage2_trains_a_stage1_export_on_the_final_faces(tmp_path, drawn):
    from fastface.cli import main
    from fastface.models.faceworld import world as fw

    def geometries():
        return [kw["geometry"] for kw in drawn]
    base = ["face-world", "--train", "--ae-steps", "2", "--threads", "1", "--unet-steps", "2", "--decoder-steps", "0"]
    # one command, both stages: stage 1 is exported under the workdir, stage 2 continues from it
    work, out = tmp_path / "work", tmp_path / "out"
    assert main(base + ["--workdir", str(work), "--out", str(out), "--stage2-unet-steps", "2",
                        "--stage2-decoder-steps", "1"]) == 0
    stage1 = work / "stage1" / "face_world.safetensors"
    assert stage1.is_file() and (out / "face_world.safetensors").is_file()
    n_first = geometries().count("first")
    assert n_first >= 2 and geometries()[n_first:] == ["final"] * 3  # stage 2: 2 UNet batches, 1 decoder batch
    meta = json.loads((out / "face_world.json").read_text())["training"]
    assert meta["unet_steps_done"] == 2 and meta["stage2_unet_steps_done"] == 2
    assert meta["stage1_weights_sha256"] == fw.weights_digest(stage1)
    first, final = fw.load_weights(stage1), fw.load_weights(out / "face_world.safetensors")
    assert not torch.equal(first["unet"]["conv_in.weight"], final["unet"]["conv_in.weight"])
    assert all(torch.equal(first["vae"][k], v) for k, v in final["vae"].items() if k.startswith("encoder."))
    assert any(not torch.equal(first["vae"][k], v) for k, v in final["vae"].items() if k.startswith("decoder."))
    # --stage1-weights: stage 2 alone from a given export, the same seeds: the same weights
    # (the same code run twice)
    drawn.clear()
    out2 = tmp_path / "out2"
    assert main(base + ["--workdir", str(tmp_path / "work2"), "--out", str(out2), "--stage2-unet-steps", "2",
                        "--stage2-decoder-steps", "1", "--stage1-weights", str(stage1)]) == 0
    assert geometries() == ["final"] * 3  # no stage 1
    again = fw.load_weights(out2 / "face_world.safetensors")
    assert all(torch.equal(final[part][k], v) for part in fw.PARTS for k, v in again[part].items())
    # a missing stage-1 export, or one given while stage 2 is off, is a one-line error
    assert main(base + ["--workdir", str(tmp_path / "w3"), "--out", str(tmp_path / "o3"),
                        "--stage1-weights", str(tmp_path / "nope.safetensors")]) == 2
    assert main(base + ["--workdir", str(tmp_path / "w3"), "--out", str(tmp_path / "o3"), "--stage2-unet-steps", "0",
                        "--stage1-weights", str(stage1)]) == 2
