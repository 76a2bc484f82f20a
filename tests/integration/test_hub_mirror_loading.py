"""The loaders on the real repositories' layouts (tests/fixtures/hub_mirror.py): every checkpoint
loads from the full mirror in float32 and from an fp16-only mirror in float16; fused LoRAs,
Lightning's UNet and the laion encoder equal references computed here from the files themselves
(not through the code under test); bad input is one line naming the file and the fix."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fastface.models.checkpoints import get_checkpoint, load_faceid, load_sdxl
from tests.fixtures.hub_mirror import (
    BASE, FACEID, HYPER, HYPER_FILES, LAION, LCM, LCM_FILE, LIGHTNING, LIGHTNING_FILES, TURBO, build_hub_mirror,
    write_laion,
)

pytestmark = pytest.mark.filterwarnings("ignore")
CHECKPOINTS = ("hyper", "lightning", "lcm", "turbo")
#: float32 arithmetic of W + s * up @ down in another order than peft's: differences ~1e-7
FUSE_ATOL = 1e-5
#: the same float32 CLIP forward, built two ways
CLIP_ATOL = 1e-5


@pytest.fixture(scope="module")
def full_mirror():
    return build_hub_mirror()


@pytest.fixture(scope="module")
def fp16_mirror():
    """fp16 files only, and laion's config without projection_dim in vision_config (most likely
    what the real repo's old config.json is), so load_faceid goes through that fix too."""
    return build_hub_mirror(fp32=False, fp16=True, projection_dim_in_vision_config=False)


def _one_line(excinfo, *parts: str) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message
    return message


# --- every checkpoint, both variants --------------------------------------------------------------
@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
@pytest.mark.parametrize("mirror, dtype", [("full_mirror", torch.float32), ("fp16_mirror", torch.float16)])
def test_loads_every_checkpoint(request, checkpoint, mirror, dtype):
    root = request.getfixturevalue(mirror)
    pipe = load_sdxl(checkpoint, weights_root=root, device="cpu", dtype=dtype)
    load_faceid(pipe, weights_root=root)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2", "image_encoder"):
        dtypes = {p.dtype for p in getattr(pipe, name).parameters()}
        assert dtypes == {dtype}, (name, dtypes)
    assert "faceid_0" in pipe.get_list_adapters()["unet"]
    assert type(pipe.scheduler).__name__ == get_checkpoint(checkpoint).scheduler
    # the text encoder holds exactly the file of that dtype: fp32 values are not fp16-representable,
    # so equality shows the plain files were read for float32 (not the fp16 ones, upcast)
    stem = "model.safetensors" if dtype == torch.float32 else "model.fp16.safetensors"
    expected = load_file(str(root / BASE / "text_encoder" / stem))
    got = pipe.text_encoder.state_dict()
    assert all(torch.equal(got[k], v) for k, v in expected.items())
    if checkpoint == "turbo":
        unet_file = "diffusion_pytorch_model.safetensors" if dtype == torch.float32 else \
            "diffusion_pytorch_model.fp16.safetensors"
        expected = load_file(str(root / TURBO / "unet" / unet_file))
        got = _base_weights(pipe.unet)
        assert set(expected) <= set(got)
        assert all(torch.equal(got[k], v) for k, v in expected.items())


def _base_weights(unet) -> dict[str, torch.Tensor]:
    """The UNet's own weights under their diffusers names, seen through peft's LoRA wrappers."""
    out = {}
    for key, value in unet.state_dict().items():
        if "lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    return out


def test_old_loader_would_fail_on_fp16_only(fp16_mirror):
    """The fp16-only mirror really has no plain files (what made variant=None fail before)."""
    from diffusers import StableDiffusionXLPipeline

    assert not list((fp16_mirror / BASE).rglob("diffusion_pytorch_model.safetensors"))
    assert not list((fp16_mirror / BASE).rglob("model.safetensors"))
    with pytest.raises(OSError):
        StableDiffusionXLPipeline.from_pretrained(fp16_mirror / BASE, dtype=torch.float16)


# --- fused LoRAs against W + (alpha / rank) * up @ down from the files ------------------------------
#: kohya module -> diffusers module, from SDXL's SGM layout (input_blocks 1-2: down_blocks.0,
#: 3: its downsampler, 4-5: down_blocks.1, 7-8: down_blocks.2; middle_block 0/1/2: resnet, attention,
#: resnet; output_blocks 0-2: up_blocks.0, 3-5: up_blocks.1; resnet in_layers.2 = conv1,
#: emb_layers.1 = time_emb_proj, skip_connection = conv_shortcut)
HYPER_LAYERS = {
    "input_blocks_4_1_transformer_blocks_0_attn1_to_q": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    "input_blocks_8_1_transformer_blocks_1_attn2_to_k": "down_blocks.2.attentions.1.transformer_blocks.1.attn2.to_k",
    "middle_block_1_transformer_blocks_0_ff_net_2": "mid_block.attentions.0.transformer_blocks.0.ff.net.2",
    "output_blocks_5_1_proj_out": "up_blocks.1.attentions.2.proj_out",
    "output_blocks_3_0_skip_connection": "up_blocks.1.resnets.0.conv_shortcut",
    "input_blocks_7_0_in_layers_2": "down_blocks.2.resnets.0.conv1",
    "output_blocks_0_0_emb_layers_1": "up_blocks.0.resnets.0.time_emb_proj",
    "middle_block_2_out_layers_3": "mid_block.resnets.1.conv2",
}
LCM_LAYERS = {
    "down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q":
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
    "mid_block_attentions_0_transformer_blocks_1_attn2_to_v": "mid_block.attentions.0.transformer_blocks.1.attn2.to_v",
    "up_blocks_0_attentions_2_transformer_blocks_0_ff_net_0_proj":
        "up_blocks.0.attentions.2.transformer_blocks.0.ff.net.0.proj",
    "down_blocks_0_downsamplers_0_conv": "down_blocks.0.downsamplers.0.conv",
    "up_blocks_1_resnets_2_conv2": "up_blocks.1.resnets.2.conv2",
    "down_blocks_2_resnets_0_time_emb_proj": "down_blocks.2.resnets.0.time_emb_proj",
}


@pytest.mark.parametrize("checkpoint, lora_file, layers", [
    ("hyper", Path(HYPER) / HYPER_FILES[4], HYPER_LAYERS), ("lcm", Path(LCM) / LCM_FILE, LCM_LAYERS),
])
def test_fused_lora_equals_reference(full_mirror, checkpoint, lora_file, layers):
    pipe = load_sdxl(checkpoint, weights_root=full_mirror, device="cpu", dtype=torch.float32)
    base = load_file(str(full_mirror / BASE / "unet" / "diffusion_pytorch_model.safetensors"))
    lora = {k: v.float() for k, v in load_file(str(full_mirror / lora_file)).items()}
    fused = pipe.unet.state_dict()
    assert not any("lora" in k for k in fused)  # fused and unloaded
    for kohya, module in layers.items():
        down, up = lora[f"lora_unet_{kohya}.lora_down.weight"], lora[f"lora_unet_{kohya}.lora_up.weight"]
        alpha = lora[f"lora_unet_{kohya}.alpha"].item()
        w = base[f"{module}.weight"]
        delta = (alpha / down.shape[0]) * (up.flatten(1) @ down.flatten(1)).reshape(w.shape)
        assert delta.abs().max() > 1e-3  # the LoRA matters at this layer
        torch.testing.assert_close(fused[f"{module}.weight"], w + delta, atol=FUSE_ATOL, rtol=0)
    # every LoRA layer of the file changed exactly one UNet weight, nothing else changed
    changed = [k for k, v in base.items() if not torch.equal(fused[k], v)]
    n_layers = sum(1 for k in lora if k.endswith(".lora_down.weight"))
    assert len(changed) == n_layers and all(k.endswith(".weight") for k in changed)


def test_lightning_unet_is_the_file(full_mirror):
    pipe = load_sdxl("lightning", steps=8, weights_root=full_mirror, device="cpu", dtype=torch.float32)
    expected = load_file(str(full_mirror / LIGHTNING / LIGHTNING_FILES[8]))
    got = pipe.unet.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], v.float()) for k, v in expected.items())
    other = load_file(str(full_mirror / LIGHTNING / LIGHTNING_FILES[4]))
    assert not all(torch.equal(got[k], v.float()) for k, v in other.items())


# --- the laion image encoder ------------------------------------------------------------------------
def _clip_reference(folder: Path, pixels: torch.Tensor):
    """CLIPModel's vision tower + projection, built here from the config sizes and model.safetensors."""
    import json

    from transformers import CLIPConfig, CLIPModel

    data = json.loads((folder / "config.json").read_text())
    config = CLIPConfig(text_config=data["text_config"], vision_config={**data["vision_config"]},
                        projection_dim=data["projection_dim"])
    model = CLIPModel(config).eval()
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in k for k in missing)
    with torch.no_grad():
        out = model.vision_model(pixel_values=pixels, output_hidden_states=True)
        return model.visual_projection(out.pooler_output), out.hidden_states[-2]


@pytest.mark.parametrize("with_projection_dim", [True, False])
def test_laion_encoder_matches_clipmodel(tmp_path, with_projection_dim):
    from transformers import CLIPVisionModelWithProjection

    from fastface.models.checkpoint_files import load_image_encoder

    folder = tmp_path / LAION
    write_laion(folder, 0, with_projection_dim)
    if not with_projection_dim:  # the known laion failure of the plain transformers call (512 != 40)
        with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
            CLIPVisionModelWithProjection.from_pretrained(folder)
    encoder = load_image_encoder(str(folder), dtype=torch.float32).eval()
    pixels = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    ref_embeds, ref_hidden = _clip_reference(folder, pixels)
    with torch.no_grad():
        out = encoder(pixel_values=pixels, output_hidden_states=True)
    assert out.image_embeds.shape[-1] == 40  # the top-level projection_dim, not 512
    torch.testing.assert_close(out.image_embeds, ref_embeds, atol=CLIP_ATOL, rtol=0)
    torch.testing.assert_close(out.hidden_states[-2], ref_hidden, atol=CLIP_ATOL, rtol=0)


def test_bare_vision_folder_still_loads(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from fastface.models.checkpoint_files import load_image_encoder

    torch.manual_seed(0)
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, image_size=224,
        patch_size=32, projection_dim=24)).eval()
    model.save_pretrained(tmp_path / "enc")
    encoder = load_image_encoder(str(tmp_path / "enc"), dtype=torch.float32).eval()
    pixels = torch.randn(1, 3, 224, 224)
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(encoder(pixel_values=pixels).image_embeds, model(pixel_values=pixels).image_embeds,
                                   atol=CLIP_ATOL, rtol=0)


def test_open_clip_files_hold_the_same_weights(full_mirror):
    hf = load_file(str(full_mirror / LAION / "model.safetensors"))
    oc = torch.load(full_mirror / LAION / "open_clip_pytorch_model.bin", weights_only=True)
    assert torch.equal(oc["visual.proj"], hf["visual_projection.weight"].t())
    assert torch.equal(oc["text_projection"], hf["text_projection.weight"].t())
    qkv = [hf[f"vision_model.encoder.layers.1.self_attn.{p}_proj.weight"] for p in "qkv"]
    assert torch.equal(oc["visual.transformer.resblocks.1.attn.in_proj_weight"], torch.cat(qkv))
    assert torch.equal(oc["visual.conv1.weight"], hf["vision_model.embeddings.patch_embedding.weight"])


# --- bad input: one line naming the file and the fix -------------------------------------------------
def _sd15_kohya_lora(path: Path) -> None:
    """A kohya LoRA of SD 1.5's UNet (320/640 channels, 768-d text): attention in down_blocks.0."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for name, din, dout in (("down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320),
                            ("down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", 768, 640),
                            ("mid_block_attentions_0_transformer_blocks_0_attn1_to_v", 1280, 1280)):
        state[f"lora_unet_{name}.lora_down.weight"] = torch.randn(4, din, generator=g).half()
        state[f"lora_unet_{name}.lora_up.weight"] = torch.randn(dout, 4, generator=g).half()
        state[f"lora_unet_{name}.alpha"] = torch.tensor(4.0).half()
    save_file(state, str(path))


def _with_file(name: str, path: Path):
    return dataclasses.replace(get_checkpoint(name), weight_name=str(path), allowed_steps=None)


def test_lora_for_another_base(full_mirror, tmp_path):
    bad = tmp_path / "sd15-lora.safetensors"
    _sd15_kohya_lora(bad)
    with pytest.raises(ValueError) as excinfo:
        load_sdxl(_with_file("hyper", bad), weights_root=full_mirror, device="cpu", dtype=torch.float32)
    _one_line(excinfo, str(bad), "another base model", "does not fit")


def test_truncated_lora(full_mirror, tmp_path):
    data = (full_mirror / HYPER / HYPER_FILES[4]).read_bytes()
    bad = tmp_path / HYPER_FILES[4]
    bad.write_bytes(data[: len(data) - 1000])
    with pytest.raises(ValueError) as excinfo:
        load_sdxl(_with_file("hyper", bad), weights_root=full_mirror, device="cpu", dtype=torch.float32)
    _one_line(excinfo, str(bad), "partial or corrupt", "download it again")


def _base_copy(full_mirror, tmp_path) -> Path:
    folder = tmp_path / "sdxl-base"
    shutil.copytree(full_mirror / BASE, folder)
    return folder


def test_truncated_file_in_a_folder(full_mirror, tmp_path):
    folder = _base_copy(full_mirror, tmp_path)
    bad = folder / "vae" / "diffusion_pytorch_model.safetensors"
    bad.write_bytes(bad.read_bytes()[:5000])
    with pytest.raises(ValueError) as excinfo:
        load_sdxl("hyper", base=str(folder), weights_root=full_mirror, device="cpu", dtype=torch.float32)
    _one_line(excinfo, str(bad), "partial or corrupt")


def test_folder_missing_a_config(full_mirror, tmp_path):
    folder = _base_copy(full_mirror, tmp_path)
    (folder / "text_encoder_2" / "config.json").unlink()
    with pytest.raises(FileNotFoundError) as excinfo:
        load_sdxl("hyper", base=str(folder), weights_root=full_mirror, device="cpu", dtype=torch.float32)
    _one_line(excinfo, str(folder / "text_encoder_2" / "config.json"), "download that repository again")


def test_folder_without_weights(full_mirror, tmp_path):
    folder = _base_copy(full_mirror, tmp_path)
    for p in (folder / "unet").glob("*.safetensors"):
        p.unlink()
    with pytest.raises(FileNotFoundError) as excinfo:
        load_sdxl("lcm", base=str(folder), weights_root=full_mirror, device="cpu", dtype=torch.float16)
    _one_line(excinfo, str(folder / "unet"), "diffusion_pytorch_model.safetensors or diffusion_pytorch_model.fp16")


@pytest.fixture(scope="module")
def lightning_pipe(full_mirror):
    return load_sdxl("lightning", weights_root=full_mirror, device="cpu", dtype=torch.float32)


def test_faceid_of_another_kind(full_mirror, lightning_pipe):
    plain = full_mirror / FACEID / "ip-adapter-faceid_sdxl.bin"
    with pytest.raises(ValueError) as excinfo:
        load_faceid(lightning_pipe, weight_name="ip-adapter-faceid_sdxl.bin", weights_root=full_mirror)
    _one_line(excinfo, str(plain), "plain FaceID", "ip-adapter-faceid-plusv2_sdxl.bin")
    assert not hasattr(lightning_pipe.unet, "encoder_hid_proj") or lightning_pipe.unet.encoder_hid_proj is None


def test_faceid_not_an_adapter_and_truncated(full_mirror, lightning_pipe, tmp_path):
    lora = full_mirror / LCM / LCM_FILE
    with pytest.raises(ValueError) as excinfo:
        load_faceid(lightning_pipe, weight_name=str(lora), weights_root=full_mirror)
    _one_line(excinfo, str(lora), "not an IP-Adapter file", "ip-adapter-faceid-plusv2_sdxl.bin")
    data = (full_mirror / FACEID / "ip-adapter-faceid-plusv2_sdxl.bin").read_bytes()
    bad = tmp_path / "ip-adapter-faceid-plusv2_sdxl.bin"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as excinfo:
        load_faceid(lightning_pipe, weight_name=str(bad), weights_root=full_mirror)
    _one_line(excinfo, str(bad), "partial or corrupt")
