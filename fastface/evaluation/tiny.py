"""The tiny evaluation world: random-weight evaluation models in the real Hub layouts.

:func:`build_tiny_eval_world` writes, under one folder that mirrors the Hub:

- ``openai/clip-vit-large-patch14``: a ``CLIPModel.save_pretrained`` folder (tiny text and
  vision towers: width 32, 2 layers, 224 px images in 32 px patches) whose **projection_dim is
  768**, like ViT-L/14's, so that the real-sized aesthetic MLP runs on its embeddings; an
  offline ``CLIPTokenizer`` (:func:`fastface.models.tiny.tiny_tokenizer`) and CLIP-L's
  ``preprocessor_config.json`` (224 px, OpenAI mean/std);
- ``christophschuhmann/improved-aesthetic-predictor/sac+logos+ava1-l14-linearMSE.pth`` and the
  release's ``ava+logos-l14-linearMSE.pth``: aesthetic MLPs with the real key names **and the
  real dims** (768-1024-128-64-16-1), random (different seeds);
- ``THUDM/ImageReward/ImageReward.pt`` + ``med_config.json``: an ImageReward state dict with
  the real key names (``blip.visual_encoder.*``, ``blip.text_encoder.*``, ``mlp.layers.*``,
  plus the unused ``blip.vision_proj``/``text_proj`` of the release), a tiny ViT (width 64,
  2 blocks, 32 px patches at 224 px) and a one-layer med-BERT whose hidden size is the real
  768, so that the reward head is the real-sized 768-1024-128-64-16-1 MLP;
- ``bert-base-uncased``: an offline WordPiece vocabulary (special tokens, a-z, 0-9,
  punctuation and their ``##`` continuations) saved by ``BertTokenizer``.

Everything is deterministic from the seed.  The scores these models give are meaningless
numbers; the world exists to run every loading, preprocessing, scoring and store code path
of ``fastface evaluate`` offline.  What only real weights can check: that the numbers match
the released models' (CLIP ViT-L/14, the LAION predictor, ImageReward v1.0, buffalo_l).
"""
from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from pathlib import Path

import torch

TINY_EVAL_VERSION = 2  # 2: + the release's aesthetic head (ava+logos-l14-linearMSE.pth)
CLIP_PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_convert_rgb": True,
    "do_normalize": True, "do_rescale": True, "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "image_processor_type": "CLIPImageProcessor", "resample": 3, "rescale_factor": 0.00392156862745098,
    "size": {"shortest_edge": 224},
}


def default_eval_root(seed: int = 0) -> Path:
    cache = Path(os.environ.get("FASTFACE_CACHE", Path.home() / ".cache" / "fastface"))
    return cache / f"tiny-eval-v{TINY_EVAL_VERSION}-seed{seed}"


def bert_vocab() -> dict[str, int]:
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = special + chars + ["##" + c for c in chars]
    return {t: i for i, t in enumerate(tokens)}


def tiny_bert_tokenizer():
    from transformers import BertTokenizer

    return BertTokenizer(vocab=bert_vocab(), do_lower_case=True)


def tiny_clip(seed: int):
    from transformers import CLIPConfig, CLIPModel

    from fastface.models.tiny import _vocab

    cfg = CLIPConfig(
        text_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                         vocab_size=len(_vocab()) + 8, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1, hidden_act="quick_gelu"),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                           image_size=224, patch_size=32, hidden_act="quick_gelu"),
        projection_dim=768,
    )
    torch.manual_seed(seed)
    return CLIPModel(cfg).eval()


def tiny_aesthetic_state(seed: int) -> dict:
    from fastface.evaluation.clip_scores import RewardMLP

    torch.manual_seed(seed)
    return {k: v.contiguous() for k, v in RewardMLP(768).state_dict().items()}


MED_CONFIG_TINY = {
    "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 64,
    "layer_norm_eps": 1e-12, "max_position_embeddings": 40, "model_type": "bert", "num_attention_heads": 12,
    "num_hidden_layers": 1, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": len(bert_vocab()) + 2,
    "encoder_width": 64, "add_cross_attention": True,
}


def tiny_image_reward_state(seed: int) -> dict:
    from fastface.evaluation.image_reward import BlipViT, ImageRewardModel, MedConfig

    torch.manual_seed(seed)
    vit = BlipViT(image_size=224, patch=32, width=64, depth=2)
    cfg = MedConfig(**{k: MED_CONFIG_TINY[k] for k in MedConfig.__dataclass_fields__ if k in MED_CONFIG_TINY})
    model = ImageRewardModel(vit, cfg)
    with torch.no_grad():  # zero-initialised parameters would make the ViT input-independent
        vit.cls_token.normal_(std=0.02)
        vit.pos_embed.normal_(std=0.02)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(seed + 1)
    state["blip.vision_proj.weight"] = torch.randn(256, 64, generator=g) * 0.02  # in the release, unused
    state["blip.vision_proj.bias"] = torch.zeros(256)
    state["blip.text_proj.weight"] = torch.randn(256, 768, generator=g) * 0.02
    state["blip.text_proj.bias"] = torch.zeros(256)
    state["blip.text_encoder.embeddings.position_ids"] = torch.arange(MED_CONFIG_TINY["max_position_embeddings"])[None]
    return state


def build_tiny_eval_world(root: str | os.PathLike | None = None, *, seed: int = 0, force: bool = False) -> Path:
    """Write the tiny evaluation world under ``root`` (default: a cache folder); idempotent
    (a complete world, marked by ``tiny_eval_world.json`` written last, is reused)."""
    from fastface.evaluation.clip_scores import AESTHETIC_FILE, AESTHETIC_REPOS, CLIP_ID
    from fastface.evaluation.image_reward import IMAGE_REWARD_FILE, IMAGE_REWARD_ID, MED_CONFIG_FILE, TOKENIZER_IDS
    from fastface.evaluation.protocol import AESTHETIC_HEADS
    from fastface.models.tiny import tiny_tokenizer

    root = Path(root) if root is not None else default_eval_root(seed)
    marker = root / "tiny_eval_world.json"
    meta = {"version": TINY_EVAL_VERSION, "seed": seed}
    if marker.exists() and not force and json.loads(marker.read_text()) == meta:
        return root
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-eval-", dir=root))
    try:
        clip_dir = tmp / CLIP_ID
        tiny_clip(seed).save_pretrained(clip_dir)
        tiny_tokenizer().save_pretrained(clip_dir)
        (clip_dir / "preprocessor_config.json").write_text(json.dumps(CLIP_PREPROCESSOR, indent=2))

        aes = tmp / AESTHETIC_REPOS[0]
        aes.mkdir(parents=True)
        torch.save(tiny_aesthetic_state(seed + 1), aes / AESTHETIC_FILE)
        torch.save(tiny_aesthetic_state(seed + 3), aes / AESTHETIC_HEADS["release"])

        ir = tmp / IMAGE_REWARD_ID
        ir.mkdir(parents=True)
        torch.save(tiny_image_reward_state(seed + 2), ir / IMAGE_REWARD_FILE)
        (ir / MED_CONFIG_FILE).write_text(json.dumps(MED_CONFIG_TINY, indent=2))
        tiny_bert_tokenizer().save_pretrained(tmp / TOKENIZER_IDS[0])

        for child in tmp.iterdir():  # move into place: org folders first, marker last
            target = root / child.name
            if target.exists():
                shutil.rmtree(target)
            os.replace(child, target)
        marker.write_text(json.dumps(meta))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
