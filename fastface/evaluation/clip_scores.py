"""CLIP ViT-L/14 scores: CLIP score (image-text), FSC (face crop vs style text) and the LAION
aesthetic predictor on top of the same image embeddings (METHOD.md section 6).

- **clip_t** = ``max(cos(E_img, E_txt), 0)`` with ``E`` the projected CLIP embeddings
  (``CLIPModel.get_image_features`` / ``get_text_features``) of the image and the prompt
  (tokenised with CLIP's tokenizer, truncated to 77 tokens).  This is torchmetrics'
  ``CLIPScore`` divided by 100, i.e. on the paper's scale (Table 1: CLIP 0.244).
- **fsc** = the same score between the generated face crop and the style part of a
  ``"style; Person ..."`` prompt (the text before the first ';').  The crop is the square of
  side ``max(w, h)`` of the face box, centred on the box and clipped to the image.
- **aesthetic** = an improved-aesthetic-predictor MLP (``sac+logos+ava1-l14-linearMSE.pth`` under
  the corrected protocol, the release's ``ava+logos-l14-linearMSE.pth`` under ``release``;
  ``--aesthetic-head`` picks another) applied to the L2-normalised CLIP ViT-L/14 image embedding.

Images are preprocessed with :func:`fastface.evaluation.models.clip_preprocess` (OpenAI CLIP's
transform: PIL bicubic resize of the short side, centre crop, normalise) with the size and
constants of the model folder's ``preprocessor_config.json``; under the release protocol with
:func:`fastface.evaluation.protocol.release_clip_pixels` (the release's tensor pipeline).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from fastface.evaluation.models import (ModelUnavailable, clip_preprocess, first_existing, load_state_dict,
                                        local_dir, local_file, model_string, preprocessor_settings)

CLIP_ID = "openai/clip-vit-large-patch14"
AESTHETIC_REPOS = ("christophschuhmann/improved-aesthetic-predictor", "camenduru/improved-aesthetic-predictor")
AESTHETIC_FILE = "sac+logos+ava1-l14-linearMSE.pth"
CLIP_PATTERNS = ("*.json", "*.txt", "model.safetensors")


def _features(out) -> torch.Tensor:
    """get_*_features returns a tensor (transformers 4) or an output with pooler_output (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def style_text(prompt: str) -> str | None:
    """The style part of a "style; Person ..." prompt (text before the first ';'), or None."""
    if ";" not in prompt:
        return None
    style = prompt.split(";", 1)[0].strip()
    return style or None


class ClipScorer:
    """CLIP ViT-L/14 (transformers ``CLIPModel``) from a Hub id, a local path or a mirror."""

    def __init__(self, repo: str = CLIP_ID, *, weights_root=None, cache_dir=None, device: str = "cpu",
                 label: str | None = None, metric_key: str = "clip"):
        self.repo = repo
        self.folder = local_dir(repo, weights_root=weights_root, cache_dir=cache_dir, allow_patterns=CLIP_PATTERNS,
                                what=f"CLIP model {repo}", metric_key=metric_key)
        weights = [p for p in (self.folder / "model.safetensors", self.folder / "pytorch_model.bin") if p.is_file()]
        if not weights:
            raise ModelUnavailable(f"CLIP model {repo}: no model.safetensors / pytorch_model.bin in {self.folder}")
        self.files = [self.folder / "config.json", weights[0]]
        self.model_id = model_string(label or repo, self.files)
        self.device = device
        self.pre = preprocessor_settings(self.folder)
        self._model = None
        self._tokenizer = None

    def load(self):
        if self._model is None:
            from transformers import CLIPModel, CLIPTokenizer

            self._model = CLIPModel.from_pretrained(str(self.folder), dtype=torch.float32).to(self.device).eval()
            self._tokenizer = CLIPTokenizer.from_pretrained(str(self.folder))
        return self._model

    @property
    def projection_dim(self) -> int:
        return int(self.load().config.projection_dim)

    def pixels(self, images: Sequence) -> torch.Tensor:
        arr = np.stack([clip_preprocess(im, self.pre["size"], self.pre["crop"], self.pre["mean"], self.pre["std"])
                        for im in images])
        return torch.from_numpy(arr).to(self.device)

    def release_pixels(self, images: Sequence, value_range: str = "-1..1") -> torch.Tensor:
        """The release's preprocessing (:func:`fastface.evaluation.protocol.release_clip_pixels`)."""
        from fastface.evaluation.protocol import release_clip_pixels

        return release_clip_pixels(images, value_range=value_range, size=self.pre["crop"], mean=self.pre["mean"],
                                   std=self.pre["std"]).to(self.device)

    @torch.no_grad()
    def image_embeds(self, images: Sequence, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """[N, D] L2-normalised projected image embeddings (float32) of ``images``, or of
        already preprocessed ``pixels`` [N, 3, 224, 224]."""
        model = self.load()
        px = self.pixels(images) if pixels is None else pixels
        emb = _features(model.get_image_features(pixel_values=px)).float()
        return emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def text_embeds(self, texts: Sequence[str]) -> torch.Tensor:
        """[N, D] L2-normalised projected text embeddings (prompts truncated to 77 tokens)."""
        model = self.load()
        max_len = int(getattr(model.config.text_config, "max_position_embeddings", 77))
        tok = self._tokenizer(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        emb = _features(model.get_text_features(input_ids=tok["input_ids"].to(self.device),
                                                attention_mask=tok["attention_mask"].to(self.device))).float()
        return emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def scores_from_embeds(self, image_embeds: torch.Tensor, texts: Sequence[str], *, clamp: bool = True
                           ) -> np.ndarray:
        """cos(image, text) per pair; ``clamp``: CLIPScore's max(cos, 0) (the release: raw cosine)."""
        cos = (image_embeds * self.text_embeds(texts)).sum(-1)
        cos = cos.clamp_min(0.0) if clamp else cos
        return cos.cpu().numpy().astype(np.float64)

    def score(self, images: Sequence, texts: Sequence[str]) -> np.ndarray:
        """clip_t of each (image, text) pair: max(cos, 0)."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        if not images:
            return np.zeros(0)
        return self.scores_from_embeds(self.image_embeds(images), texts)


class RewardMLP(nn.Module):
    """The head of the improved aesthetic predictor and of ImageReward: five Linear layers with
    dropout in between and no activation; state-dict keys ``layers.0/2/4/6/7``."""

    def __init__(self, input_size: int = 768):
        super().__init__()
        self.input_size = input_size
        self.layers = nn.Sequential(
            nn.Linear(input_size, 1024), nn.Dropout(0.2),
            nn.Linear(1024, 128), nn.Dropout(0.2),
            nn.Linear(128, 64), nn.Dropout(0.1),
            nn.Linear(64, 16),
            nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def load_reward_mlp(state: dict, path, prefix: str = "") -> RewardMLP:
    """A RewardMLP from ``state`` (keys ``<prefix>layers.N.weight/bias``), strictly."""
    key = f"{prefix}layers.0.weight"
    if key not in state:
        raise ModelUnavailable(f"{path}: no {key!r}; not an aesthetic/ImageReward MLP state dict "
                               f"(keys: {sorted(state)[:8]} ...)")
    mlp = RewardMLP(int(state[key].shape[1]))
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix + "layers.")}
    try:
        mlp.load_state_dict(sub, strict=True)
    except RuntimeError as e:
        raise ModelUnavailable(f"{path}: the MLP state dict does not match layers.0/2/4/6/7 "
                               f"(Linear 768-1024-128-64-16-1): {e}") from e
    return mlp.eval()


def locate_aesthetic_head(repo: str | None = None, filename: str = AESTHETIC_FILE, *, weights_root=None,
                          cache_dir=None, label_prefix: str = "") -> tuple[Path, str]:
    """(local path, versioned model string) of an aesthetic head, without loading CLIP: a
    missing head is reported with the other missing models.  ``filename``: a file name in the
    repo, or a path to a .pth."""
    if Path(filename).expanduser().is_file():
        path = Path(filename).expanduser()
        return path, model_string(f"{label_prefix}{path.name}", [path])
    repo = repo or first_existing(AESTHETIC_REPOS, weights_root)
    path = local_file(repo, filename, weights_root=weights_root, cache_dir=cache_dir,
                      what=f"aesthetic predictor {repo}/{filename} (--aesthetic-head picks the file)", metric_key="ae")
    return path, model_string(f"{label_prefix}{repo}/{Path(filename).name}", [path])


class AestheticScorer:
    """LAION improved aesthetic predictor on CLIP ViT-L/14 image embeddings."""

    def __init__(self, clip: ClipScorer, *, repo: str | None = None, filename: str = AESTHETIC_FILE,
                 weights_root=None, cache_dir=None, label_prefix: str = "", located: tuple[Path, str] | None = None):
        self.clip = clip
        self.path, mlp_id = located or locate_aesthetic_head(repo, filename, weights_root=weights_root,
                                                             cache_dir=cache_dir, label_prefix=label_prefix)
        self.model_id = f"{mlp_id}+{clip.model_id}"  # the value depends on both
        self._mlp = None

    def load(self) -> RewardMLP:
        if self._mlp is None:
            mlp = load_reward_mlp(load_state_dict(self.path), self.path)
            dim = self.clip.projection_dim
            if mlp.input_size != dim:
                raise ModelUnavailable(f"{self.path}: the MLP takes {mlp.input_size}-d embeddings but the CLIP "
                                       f"model {self.clip.repo} projects to {dim}-d (ViT-L/14: 768)")
            self._mlp = mlp.to(self.clip.device)
        return self._mlp

    @torch.no_grad()
    def score_embeds(self, image_embeds: torch.Tensor) -> np.ndarray:
        """Scores of L2-normalised image embeddings [N, 768]."""
        mlp = self.load()
        return mlp(image_embeds.float()).reshape(-1).cpu().numpy().astype(np.float64)

    def score(self, images: Sequence) -> np.ndarray:
        if not images:
            return np.zeros(0)
        return self.score_embeds(self.clip.image_embeds(images))
