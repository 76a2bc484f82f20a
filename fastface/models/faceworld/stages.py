"""The face world's two training stages and the command's entry point (``fastface face-world --train``).

Stage 1 (:func:`train_stage1`, :mod:`fastface.models.faceworld.train`'s phases: autoencoder, UNet +
adapter + text encoders with the refinement phase, decoder) trains from scratch on the smaller
faces of scene geometry ``"first"`` and is exported as a world of its own
(``workdir/stage1/face_world.safetensors``). Stage 2 (:func:`train_stage2`) loads that export
through the real layouts, as inference does, and trains it on the world's final, larger faces
(geometry ``"final"``: face boxes 42-48 px for close-ups, 26-29 px for wide shots): refinement
losses throughout, a fresh optimiser with a cosine from ``stage2_lr``, a new EMA, then the
decoder on the same scenes. Its export is the world.

Why two stages: stage 1 alone (the recipe of the earlier weights) drew wide-shot faces of ~22 px
(11 latent cells) that dlib found in only 38-56 % of 4-step samples. 2,000 stage-2 steps on larger
faces, from that very export, raised wide-shot detection to 88-94 % and identity rank-1 from 0.63-0.84
to 0.86-0.90 (32 samples per preset, the same detector threshold; the model card has the tables). A
single stage at the final sizes from scratch was not tried.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from fastface.models.faceworld import world as fw
from fastface.models.faceworld.train import (
    FINAL, TrainSettings, export, train_autoencoder, train_decoder, train_unet, training_pipeline, verify_export,
)


def train(out_dir: Path | None = None, *, workdir: Path, settings: TrainSettings = TrainSettings(),
          stage1_weights: Path | None = None) -> Path:
    """Train the face world from scratch (resuming from ``workdir``) and write the weights file.

    ``stage1_weights``: start stage 2 from this stage-1 export instead of training stage 1."""
    s = settings
    stage1_weights = Path(stage1_weights) if stage1_weights is not None else None
    torch.set_num_threads(s.threads)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    out_dir = Path(out_dir) if out_dir is not None else fw.WEIGHTS_DIR
    final = out_dir / fw.WEIGHTS_FILE.name
    if s.stage2_unet_steps == 0:
        if stage1_weights is not None:
            raise ValueError("--stage1-weights (a stage-1 export to start from) needs stage 2: "
                             "drop --stage2-unet-steps 0")
        return train_stage1(s, workdir, final)[0]
    if stage1_weights is None:
        stage1_weights = workdir / "stage1" / fw.WEIGHTS_FILE.name
        if not stage1_weights.is_file():
            path, complete = train_stage1(s, workdir, stage1_weights, out_of_time_path=final)
            if not complete:  # --max-minutes ran out in stage 1: its partial export is the result
                return path
    elif not stage1_weights.is_file() or not stage1_weights.with_suffix(".json").is_file():
        raise FileNotFoundError(f"stage-1 weights {stage1_weights}: no such file (or its .json beside it); give a "
                                "face_world.safetensors that `fastface face-world --train --stage2-unet-steps 0` wrote")
    if s.max_minutes > 0:
        left = s.max_minutes - (time.time() - started) / 60
        if left <= 0:
            print(f"face world: --max-minutes reached after stage 1; stage 2 not started ({stage1_weights})")
            return stage1_weights
        s = replace(s, max_minutes=left)
    return train_stage2(s, stage1_weights, workdir / "stage2", final)


def train_stage1(s: TrainSettings, workdir: Path, path: Path,
                 out_of_time_path: Path | None = None) -> tuple[Path, bool]:
    """Stage 1 from scratch (resuming from ``workdir``): autoencoder, UNet + adapter + text
    encoders, decoder, on geometry ``"first"``; exported to ``path``. Returns the path written and
    whether every step ran (``max_minutes`` can stop it: then the export goes to
    ``out_of_time_path`` when given, so that a re-run resumes stage 1)."""
    started = time.time()
    vae, scaling = train_autoencoder(s, workdir)
    fp, key_map = training_pipeline(s, vae.state_dict(), scaling, workdir)
    ema, steps_done, minutes = train_unet(s, fp, workdir, started)
    complete = steps_done == s.unet_steps
    if complete:
        minutes = train_decoder(s, vae, workdir, minutes)
    elif out_of_time_path is not None:
        path = out_of_time_path
    fp.pipe.vae.load_state_dict(vae.state_dict())
    result = export(fp, ema, key_map, vae, scaling, s, steps_done, minutes)
    _save_and_verify(fp, ema, result, path, workdir)
    return path, complete


def stage2_settings(s: TrainSettings) -> TrainSettings:
    """The settings stage 2 trains with: refinement from its first step, its own steps and rates."""
    return replace(s, unet_steps=s.stage2_unet_steps, refine_from=0, lr=s.stage2_lr, dec_steps=s.stage2_decoder_steps)


def train_stage2(s: TrainSettings, start: Path, workdir: Path, path: Path) -> Path:
    """Stage 2: the stage-1 world ``start`` (a ``face_world.safetensors`` with its ``.json``),
    loaded through the real layouts as at inference, trained on the final (larger) faces:
    :func:`stage2_settings` (refinement losses throughout, a fresh optimiser, a cosine from
    ``stage2_lr`` to a tenth, a new EMA from the start weights), then the decoder on the same
    scenes. Resumable from ``workdir``; exported to ``path``."""
    from fastface.models.pipeline import load_pipeline
    from fastface.models.tiny import tiny_vae

    s2 = stage2_settings(s)
    workdir.mkdir(parents=True, exist_ok=True)
    start_meta = json.loads(start.with_suffix(".json").read_text())
    vae = tiny_vae(s.seed, fw.VAE_SIZES)
    vae.load_state_dict(fw.load_weights(start)["vae"])
    scaling = start_meta["vae_scaling_factor"]
    _, key_map = training_pipeline(s2, vae.state_dict(), scaling, workdir)
    fp = load_pipeline("hyper", tiny=True, weights_root=fw.build_face_world(workdir / "start-world", weights=start,
                                                                             force=True),
                       face_backend="none", device="cpu")
    started = time.time()
    ema, steps_done, minutes = train_unet(s2, fp, workdir, started, geometry=FINAL, label="stage 2: unet + adapter")
    if steps_done == s2.unet_steps:
        minutes = train_decoder(s2, vae, workdir, minutes, geometry=FINAL)
    fp.pipe.vae.load_state_dict(vae.state_dict())
    result = export(fp, ema, key_map, vae, scaling, s, int(start_meta["training"]["unet_steps_done"]), minutes)
    stage1 = start_meta["training"]
    result["meta"]["training"].update({
        "stage2_unet_steps_done": steps_done, "minutes": round(float(stage1["minutes"]) + minutes, 1),
        "stage1_minutes": stage1["minutes"], "stage2_minutes": round(minutes, 1),
        "stage1_weights_sha256": fw.weights_digest(start)})
    _save_and_verify(fp, ema, result, path, workdir)
    return path


def _save_and_verify(fp, ema, result: dict, path: Path, workdir: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fw.save_weights(result["weights"], result["meta"], path, path.with_suffix(".json"))
    diff = verify_export(fp, ema, path, workdir)
    training = result["meta"]["training"]
    steps = training["unet_steps_done"] + training.get("stage2_unet_steps_done", 0)
    print(f"face world: {steps} UNet steps in {training['minutes']} min; exported "
          f"{path} ({path.stat().st_size / 1e6:.1f} MB); reloaded world vs trained model: mean |pixel diff| "
          f"{diff:.4f}", flush=True)
