"""Schedulers made from SDXL's config: the few-step DDIM (Hyper) never clips latents.

DDIM's default ``clip_sample=True`` clips the predicted x0 to [-1, 1]. That is meant for pixel
space; on latents it shifts colours (the face world's backgrounds came out purple instead of blue
before the tiny world's scheduler config carried SDXL's ``clip_sample: false``)."""
from __future__ import annotations

import torch

from fastface.models.checkpoints import get_checkpoint, make_scheduler
from fastface.models.tiny import SDXL_SCHEDULER_CONFIG, base_scheduler


def _x0_after_one_step(sched) -> float:
    """Largest predicted x0 of one step whose exact x0 is far outside [-1, 1]."""
    sched.set_timesteps(4)
    t = sched.timesteps[-1]
    sample = torch.full((1, 4, 8, 8), 3.0)
    return float(sched.step(torch.zeros_like(sample), t, sample).pred_original_sample.max())


def test_tiny_base_scheduler_is_sdxl_base_config():
    config = base_scheduler("v_prediction").config
    for key, value in SDXL_SCHEDULER_CONFIG.items():
        if not key.startswith("_") and key != "prediction_type":
            assert config[key] == value, key
    assert config["prediction_type"] == "v_prediction"


def test_hyper_ddim_does_not_clip_even_from_a_config_without_clip_sample():
    from diffusers import DDIMScheduler, EulerDiscreteScheduler

    lacking = EulerDiscreteScheduler.from_config(
        {k: v for k, v in SDXL_SCHEDULER_CONFIG.items() if k != "clip_sample"}).config
    hyper = make_scheduler(get_checkpoint("hyper"), lacking)
    assert type(hyper).__name__ == "DDIMScheduler" and hyper.config.timestep_spacing == "trailing"
    assert _x0_after_one_step(hyper) > 3.0  # x_t / sqrt(alpha_bar) with eps = 0: unclipped
    # the control: DDIM made from that config as is clips to 1
    assert abs(_x0_after_one_step(DDIMScheduler.from_config(lacking)) - 1.0) < 1e-6
    # from SDXL's own config both agree (nothing clipped)
    sdxl = base_scheduler().config
    assert _x0_after_one_step(make_scheduler(get_checkpoint("hyper"), sdxl)) > 3.0
    assert _x0_after_one_step(DDIMScheduler.from_config(sdxl, timestep_spacing="trailing")) > 3.0
