"""Full-size SDXL architecture with random weights, for GPU tests and benchmarks.

Builds a ``StableDiffusionXLPipeline`` whose UNet has SDXL 1.0's exact configuration
(2.6 B parameters, 70 decoupled cross-attention blocks), full-size CLIP text encoders
(ViT-L and bigG shapes), a full-size VAE, a random FaceID-Plus-v2 adapter with the real key
layout (512-d ID embedding, 1280-d CLIP ViT-H hidden states) loaded through
``load_ip_adapter``, and a random CLIP ViT-H/14 vision tower. No weights are downloaded:
this measures speed and memory of the real architecture, not image quality.
"""
from __future__ import annotations

import torch

SDXL_UNET_CONFIG = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), use_linear_projection=True,
    cross_attention_dim=2048, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816, norm_num_groups=32,
)


def fullsize_pipeline(device: str = "cuda", dtype: torch.dtype = torch.float16, *, seed: int = 0):
    """A FastFacePipeline (Hyper-style DDIM trailing, 4 steps) on the full SDXL architecture."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import (
        CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from fastface.models.checkpoints import get_checkpoint, set_lora_scale
    from fastface.models.pipeline import FastFacePipeline
    from fastface.models.tiny import base_scheduler, faceid_plusv2_state_dict, tiny_tokenizer

    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**SDXL_UNET_CONFIG).to(dtype)
        te1 = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                           num_hidden_layers=12, projection_dim=768, vocab_size=49408)).to(dtype)
        te2 = CLIPTextModelWithProjection(CLIPTextConfig(
            hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
            projection_dim=1280, vocab_size=49408, hidden_act="gelu")).to(dtype)
        vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), latent_channels=4,
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=2, sample_size=1024, scaling_factor=0.13025,
                            force_upcast=True).to(dtype)
        vision = CLIPVisionModelWithProjection(CLIPVisionConfig(
            hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32,
            image_size=224, patch_size=14, projection_dim=1024, hidden_act="gelu")).to(dtype)
    sched = DDIMScheduler.from_config(base_scheduler().config, timestep_spacing="trailing")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tiny_tokenizer(),
                                     tokenizer_2=tiny_tokenizer(), unet=unet, scheduler=sched)
    sd = faceid_plusv2_state_dict(unet, id_dim=512, clip_dim=1280, seed=seed + 1, lora_rank=128)
    pipe.load_ip_adapter(sd, subfolder=None, weight_name=None, image_encoder_folder=None)
    pipe.register_modules(image_encoder=vision)
    pipe.to(device, dtype)
    set_lora_scale(pipe, 1.0)
    pipe.set_progress_bar_config(disable=True)
    return FastFacePipeline(pipe, get_checkpoint("hyper"), resolution=1024)
