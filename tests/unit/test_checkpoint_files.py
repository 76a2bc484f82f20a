"""fastface.models.checkpoint_files on hand-made files: the variant a local folder is loaded with, partial
files, and which FaceID files are refused (pure: empty or tiny files, no model is built)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fastface.models.checkpoint_files import check_faceid, folder_variant, nest_faceid, read_state_dict

FP32, FP16 = "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"


def _repo(tmp_path: Path, unet: tuple[str, ...], text: tuple[str, ...] = ("model.safetensors",)) -> Path:
    for name, files, config in (("unet", unet, {"_class_name": "UNet2DConditionModel"}),
                                ("text_encoder", text, {"model_type": "clip_text_model"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(config))
        for f in files:
            (tmp_path / name / f).write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("unet, text, dtype, expected", [
    ((FP32, FP16), ("model.safetensors", "model.fp16.safetensors"), torch.float16, "fp16"),
    ((FP32, FP16), ("model.safetensors", "model.fp16.safetensors"), torch.float32, None),
    ((FP16,), ("model.fp16.safetensors",), torch.float16, "fp16"),   # an fp16-only download
    ((FP16,), ("model.fp16.safetensors",), torch.float32, "fp16"),   # loaded and upcast
    ((FP32,), ("model.safetensors",), torch.float16, None),          # plain files, cast down
    ((FP32,), ("model.safetensors",), torch.float32, None),
    ((FP16,), ("model.safetensors",), torch.float32, "fp16"),        # mixed: diffusers falls back per component
])
def test_folder_variant(tmp_path, unet, text, dtype, expected):
    assert folder_variant(_repo(tmp_path, unet, text), ["unet", "text_encoder"], dtype) == expected


def test_folder_without_weights_or_config(tmp_path):
    repo = _repo(tmp_path, ("diffusion_pytorch_model.onnx",))
    with pytest.raises(FileNotFoundError, match=f"{repo / 'unet'} has no weights: expected {FP32} or {FP16}"):
        folder_variant(repo, ["unet", "text_encoder"], torch.float16)
    (repo / "text_encoder" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="text_encoder/config.json not found"):
        folder_variant(repo, ["text_encoder"], torch.float16)


def test_partial_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.ones(64, 64)}, str(tmp_path / "a.safetensors"))
    torch.save({"w": torch.ones(64, 64)}, tmp_path / "a.bin")
    for name in ("a.safetensors", "a.bin"):
        data = (tmp_path / name).read_bytes()
        assert torch.equal(read_state_dict(tmp_path / name)["w"], torch.ones(64, 64))
        (tmp_path / name).write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match="is not a complete checkpoint file .*partial or corrupt") as e:
            read_state_dict(tmp_path / name)
        assert str(tmp_path / name) in str(e.value) and "\n" not in str(e.value)


# --- FaceID kinds, on a stand-in UNet with 2 cross-attention layers of width 64 ------------------------
UNET = SimpleNamespace(
    attn_processors={"a.attn1.processor": 0, "a.attn2.processor": 0, "b.attn1.processor": 0, "b.attn2.processor": 0},
    config=SimpleNamespace(cross_attention_dim=64),
)
PLUS_PROJ = {k: torch.zeros(1) for k in (
    "proj.0.weight", "proj.2.weight", "norm.weight", "perceiver_resampler.proj_in.weight",
    "perceiver_resampler.proj_out.weight", "perceiver_resampler.layers.0.0.to_q.weight")}


def _ip(width: int = 64, n: int = 2) -> dict:
    ip = {}
    for i in range(n):
        ip[f"{2 * i + 1}.to_k_ip.weight"] = torch.zeros(16, width)
        ip[f"{2 * i + 1}.to_v_ip.weight"] = torch.zeros(16, width)
        ip[f"{2 * i}.to_q_lora.down.weight"] = torch.zeros(4, 16)
    return ip


def test_plus_v2_passes_and_flat_files_nest():
    check_faceid({"image_proj": PLUS_PROJ, "ip_adapter": _ip()}, "f.bin", UNET)
    flat = {f"image_proj.{k}": v for k, v in PLUS_PROJ.items()} | {f"ip_adapter.{k}": v for k, v in _ip().items()}
    check_faceid(nest_faceid(flat), "f.safetensors", UNET)


@pytest.mark.parametrize("state, words", [
    ({"image_proj": {k: v for k, v in PLUS_PROJ.items() if "perceiver" not in k}, "ip_adapter": _ip()},
     "is a plain FaceID adapter"),
    ({"lora_unet_x.lora_down.weight": torch.zeros(1)}, "is not an IP-Adapter file"),
    ({"image_proj": {"latents": torch.zeros(1)}, "ip_adapter": _ip()}, "is another IP-Adapter kind"),
    ({"image_proj": PLUS_PROJ, "ip_adapter": {k: v for k, v in _ip().items() if "lora" not in k}},
     "has no FaceID LoRA"),
    ({"image_proj": PLUS_PROJ, "ip_adapter": _ip(width=768, n=16)}, "is made for another base model"),
])
def test_other_faceid_files_are_refused(state, words):
    with pytest.raises(ValueError) as e:
        check_faceid(state, "/w/x.bin", UNET)
    message = str(e.value)
    assert message.startswith("/w/x.bin ") and words in message and "\n" not in message
    assert "ip-adapter-faceid-plusv2_sdxl.bin" in message
