"""ImageReward (THUDM/ImageReward, ``ImageReward.pt`` + ``med_config.json``) re-implemented in
plain torch, loading the released state dict under its own key names.

The model, as released (ImageReward v1.0):

- ``blip.visual_encoder``: BLIP's ViT-L/16 (timm layout: ``patch_embed.proj`` conv, ``cls_token``,
  ``pos_embed``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``;
  pre-norm blocks, LayerNorm eps 1e-6, exact GELU, head dim 64).  Output: the whole normed
  token sequence [B, 1 + patches, width].
- ``blip.text_encoder``: BLIP's "med" BERT (``med_config.json``): word + absolute position
  embeddings (no token types), then per layer bidirectional self-attention, cross-attention
  to the image tokens (keys/values from the vision width), feed-forward; post-LayerNorm;
  padding masked with -10000 (as BLIP's ``get_extended_attention_mask``).
- ``mlp``: the 768-1024-128-64-16-1 head (:class:`RewardMLP`, ``layers.0/2/4/6/7``) on the
  final hidden state of the first token ([CLS]).
- score = ``(mlp(h_cls) - 0.16717362830052426) / 1.0333394966054072``.

Text: the ``bert-base-uncased`` tokenizer with BLIP's added ``[DEC]`` / ``[ENC]`` tokens,
``padding="max_length", truncation=True, max_length=35``.  Image: the CLIP transform at 224
(bicubic resize of the short side, centre crop, CLIP mean/std).

Shapes are read from the files: the text encoder from ``med_config.json`` and the ViT from the
state dict (width, depth, patch size, image size); the number of ViT heads is width // 64, as
in BLIP's ViT-B (768/12) and ViT-L (1024/16).  Keys the scorer does not use (``blip.vision_proj``,
``blip.text_proj``, ``position_ids`` buffers) are ignored; a missing or misshaped key is an error.
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fastface.evaluation.clip_scores import RewardMLP
from fastface.evaluation.models import (ModelUnavailable, clip_preprocess, load_state_dict, local_dir, local_file,
                                        model_string)

IMAGE_REWARD_ID = "THUDM/ImageReward"
IMAGE_REWARD_FILE = "ImageReward.pt"
MED_CONFIG_FILE = "med_config.json"
TOKENIZER_IDS = ("bert-base-uncased", "google-bert/bert-base-uncased")
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072
MAX_TEXT_LEN = 35
IGNORED_PREFIXES = ("blip.vision_proj.", "blip.text_proj.", "blip.visual_encoder_m.", "blip.text_encoder_m.",
                    "blip.vision_proj_m.", "blip.text_proj_m.")


# --- BLIP ViT -----------------------------------------------------------------------------
class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, width: int):
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class _VitAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (width // heads) ** -0.5
        self.qkv = nn.Linear(width, width * 3, bias=True)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class _VitMlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class _VitBlock(nn.Module):
    def __init__(self, width: int, heads: int, hidden: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = _VitAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = _VitMlp(width, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class BlipViT(nn.Module):
    def __init__(self, image_size: int = 224, patch: int = 16, width: int = 1024, depth: int = 24,
                 heads: int | None = None, mlp_hidden: int | None = None):
        super().__init__()
        self.image_size, self.patch, self.width = image_size, patch, width
        heads = heads or max(1, width // 64)
        self.patch_embed = _PatchEmbed(patch, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        self.pos_embed = nn.Parameter(torch.zeros(1, (image_size // patch) ** 2 + 1, width))
        self.blocks = nn.ModuleList([_VitBlock(width, heads, mlp_hidden or 4 * width) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed[:, : x.shape[1], :]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)


# --- BLIP med BERT ------------------------------------------------------------------------
@dataclass
class MedConfig:
    vocab_size: int = 30524
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int = 0
    add_cross_attention: bool = True
    encoder_width: int = 768

    @classmethod
    def from_file(cls, path) -> "MedConfig":
        data = json.loads(Path(path).read_text())
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


_ACTS = {"gelu": F.gelu, "relu": F.relu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
         "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


class _Embeddings(nn.Module):
    def __init__(self, cfg: MedConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.register_buffer("position_ids", torch.arange(cfg.max_position_embeddings)[None], persistent=False)

    def forward(self, input_ids):
        pos = self.position_ids[:, : input_ids.shape[1]]
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(pos))


class _SelfAttention(nn.Module):
    def __init__(self, cfg: MedConfig, kv_width: int):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(kv_width, cfg.hidden_size)
        self.value = nn.Linear(kv_width, cfg.hidden_size)

    def _split(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, hidden, context, mask):
        q, k, v = self._split(self.query(hidden)), self._split(self.key(context)), self._split(self.value(context))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        out = scores.softmax(dim=-1) @ v
        b, _, n, _ = out.shape
        return out.permute(0, 2, 1, 3).reshape(b, n, self.heads * self.head_dim)


class _SelfOutput(nn.Module):
    def __init__(self, cfg: MedConfig, in_size: int):
        super().__init__()
        self.dense = nn.Linear(in_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, cfg: MedConfig, kv_width: int):
        super().__init__()
        self.self = _SelfAttention(cfg, kv_width)
        self.output = _SelfOutput(cfg, cfg.hidden_size)

    def forward(self, hidden, context, mask):
        return self.output(self.self(hidden, context, mask), hidden)


class _Intermediate(nn.Module):
    def __init__(self, cfg: MedConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _ACTS[cfg.hidden_act]

    def forward(self, x):
        return self.act(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, cfg: MedConfig):
        super().__init__()
        self.attention = _Attention(cfg, cfg.hidden_size)
        self.crossattention = _Attention(cfg, cfg.encoder_width)
        self.intermediate = _Intermediate(cfg)
        self.output = _SelfOutput(cfg, cfg.intermediate_size)

    def forward(self, hidden, mask, image_tokens, image_mask):
        x = self.attention(hidden, hidden, mask)
        x = self.crossattention(x, image_tokens, image_mask)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, cfg: MedConfig):
        super().__init__()
        self.layer = nn.ModuleList([_Layer(cfg) for _ in range(cfg.num_hidden_layers)])


class MedBert(nn.Module):
    """BLIP's BERT text encoder in 'multimodal' mode (cross-attention to image tokens)."""

    def __init__(self, cfg: MedConfig):
        super().__init__()
        if not cfg.add_cross_attention:
            raise ModelUnavailable("med_config.json: add_cross_attention must be true for ImageReward")
        self.config = cfg
        self.embeddings = _Embeddings(cfg)
        self.encoder = _Encoder(cfg)

    def forward(self, input_ids, attention_mask, image_tokens, image_mask=None):
        ext = (1.0 - attention_mask[:, None, None, :].to(image_tokens.dtype)) * -10000.0
        img = None if image_mask is None else (1.0 - image_mask[:, None, None, :].to(image_tokens.dtype)) * -10000.0
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, ext, image_tokens, img)
        return x


class _Blip(nn.Module):
    def __init__(self, vit: BlipViT, cfg: MedConfig):
        super().__init__()
        self.visual_encoder = vit
        self.text_encoder = MedBert(cfg)


class ImageRewardModel(nn.Module):
    def __init__(self, vit: BlipViT, cfg: MedConfig):
        super().__init__()
        self.blip = _Blip(vit, cfg)
        self.mlp = RewardMLP(cfg.hidden_size)

    def forward(self, pixels, input_ids, attention_mask) -> torch.Tensor:
        """Normalised rewards [B] of (image, text) pairs."""
        image_tokens = self.blip.visual_encoder(pixels)
        image_mask = torch.ones(image_tokens.shape[:-1], dtype=torch.long, device=image_tokens.device)
        hidden = self.blip.text_encoder(input_ids, attention_mask, image_tokens, image_mask)
        raw = self.mlp(hidden[:, 0, :].float()).reshape(-1)
        return (raw - REWARD_MEAN) / REWARD_STD


def vit_from_state(state: dict, prefix: str = "blip.visual_encoder.") -> BlipViT:
    """A BlipViT shaped like the state dict (width, depth, patch, image size, MLP width)."""
    try:
        proj = state[prefix + "patch_embed.proj.weight"]
        pos = state[prefix + "pos_embed"]
        fc1 = state[prefix + "blocks.0.mlp.fc1.weight"]
    except KeyError as e:
        raise ModelUnavailable(f"ImageReward state dict: missing {e.args[0]!r}; not an ImageReward checkpoint") from e
    width, patch = int(proj.shape[0]), int(proj.shape[-1])
    n_patches = int(pos.shape[1]) - 1
    side = int(round(math.sqrt(n_patches)))
    if side * side != n_patches:
        raise ModelUnavailable(f"ImageReward state dict: pos_embed has {n_patches} patches, not a square grid")
    blocks = prefix + "blocks."
    depth = len({k[len(blocks):].split(".", 1)[0] for k in state if k.startswith(blocks)})
    return BlipViT(image_size=side * patch, patch=patch, width=width, depth=depth, mlp_hidden=int(fc1.shape[0]))


def build_model(state: dict, med_config: MedConfig, path="ImageReward.pt") -> tuple[ImageRewardModel, list[str]]:
    """The model loaded from ``state``; returns (model, ignored unexpected keys)."""
    vit = vit_from_state(state)
    cfg = MedConfig(**{**med_config.__dict__, "encoder_width": vit.width})
    model = ImageRewardModel(vit, cfg)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise ModelUnavailable(f"{path}: {len(missing)} keys missing from the ImageReward state dict, e.g. "
                               f"{missing[:5]}; is med_config.json the one released with it?")
    bad = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
           if tuple(state[k].shape) != tuple(v.shape)]
    if bad:
        raise ModelUnavailable(f"{path}: misshaped ImageReward weights: {bad[:5]}")
    model.load_state_dict({k: state[k] for k in expected}, strict=True)
    unexpected = [k for k in state if k not in expected]
    odd = [k for k in unexpected if not k.startswith(IGNORED_PREFIXES) and not k.endswith("position_ids")]
    if odd:
        warnings.warn(f"{path}: {len(odd)} unexpected ImageReward keys ignored, e.g. {odd[:5]}", stacklevel=2)
    return model.eval(), unexpected


def bert_tokenizer(folder):
    """BLIP's tokenizer: bert-base-uncased + [DEC] (bos) and [ENC] (additional special token).
    Neither is used when scoring (the prompt is encoded as [CLS] ... [SEP])."""
    from transformers import BertTokenizer

    tok = BertTokenizer.from_pretrained(str(folder))
    try:
        tok.add_special_tokens({"bos_token": "[DEC]"})
        tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    except (TypeError, ValueError, KeyError):  # the API moved between transformers versions
        tok.add_tokens(["[DEC]", "[ENC]"], special_tokens=True)
    return tok


class ImageRewardScorer:
    """``score(images, prompts)``: ImageReward of each (image, prompt) pair."""

    def __init__(self, repo: str = IMAGE_REWARD_ID, *, weights_root=None, cache_dir=None, device: str = "cpu",
                 tokenizer_repo: str | None = None, label: str | None = None):
        self.repo = repo
        what = f"ImageReward {repo}"
        self.path = local_file(repo, IMAGE_REWARD_FILE, weights_root=weights_root, cache_dir=cache_dir, what=what,
                               metric_key="ir")
        self.config_path = local_file(repo, MED_CONFIG_FILE, weights_root=weights_root, cache_dir=cache_dir,
                                      what=what, metric_key="ir")
        tok_repo = tokenizer_repo
        if tok_repo is None:
            from fastface.evaluation.models import first_existing

            tok_repo = first_existing(TOKENIZER_IDS, weights_root)
        self.tokenizer_dir = local_dir(tok_repo, weights_root=weights_root, cache_dir=cache_dir,
                                       allow_patterns=("vocab.txt", "tokenizer_config.json", "tokenizer.json",
                                                       "special_tokens_map.json"),
                                       what=f"ImageReward's tokenizer {tok_repo}", metric_key="ir")
        self.model_id = model_string(label or repo, [self.path, self.config_path])
        self.device = device
        self._model = None
        self._tok = None
        self.unexpected_keys: list[str] = []

    def load(self) -> ImageRewardModel:
        if self._model is None:
            model, self.unexpected_keys = build_model(load_state_dict(self.path), MedConfig.from_file(self.config_path),
                                                      self.path)
            self._model = model.to(self.device)
            self._tok = bert_tokenizer(self.tokenizer_dir)
        return self._model

    def tokens(self, prompts: Sequence[str]):
        self.load()
        return self._tok(list(prompts), padding="max_length", truncation=True, max_length=MAX_TEXT_LEN,
                         return_tensors="pt")

    def pixels(self, images: Sequence) -> torch.Tensor:
        size = self.load().blip.visual_encoder.image_size
        return torch.from_numpy(np.stack([clip_preprocess(im, size) for im in images])).to(self.device)

    @torch.no_grad()
    def score(self, images: Sequence, prompts: Sequence[str]) -> np.ndarray:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        if not images:
            return np.zeros(0)
        model = self.load()
        tok = self.tokens(prompts)
        out = model(self.pixels(images), tok["input_ids"].to(self.device), tok["attention_mask"].to(self.device))
        return out.cpu().numpy().astype(np.float64)
