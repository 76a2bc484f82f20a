"""What ``fastface weights check|download --metrics ...`` needs of the evaluation models: the Hub
files of CLIP, the aesthetic head and ImageReward, as :class:`fastface.models.weights.Need` for the
pre-flight of :mod:`fastface.models.weights` (which knows nothing of evaluation)."""
from __future__ import annotations

from typing import Sequence

from fastface.evaluation.clip_scores import AESTHETIC_REPOS, CLIP_ID
from fastface.evaluation.image_reward import IMAGE_REWARD_FILE, IMAGE_REWARD_ID, MED_CONFIG_FILE, TOKENIZER_IDS
from fastface.evaluation.models import first_existing
from fastface.evaluation.protocol import Protocol
from fastface.models.weights import Need


def evaluation_needs(metrics: Sequence[str], *, protocol: str = "corrected", weights_root=None,
                     clip_model: str | None = None, aesthetic_model: str | None = None,
                     image_reward_model: str | None = None) -> list[Need]:
    """The Hub files of the evaluation models these metrics use (face models: :func:`fastface.models.weights.face_need`)."""
    metrics, needs = set(metrics), []
    if metrics & {"clip", "ae", "fsc"}:
        needs.append(Need("evaluation: CLIP ViT-L/14", clip_model or CLIP_ID,
                          (("config.json",), ("model.safetensors",), ("vocab.json",), ("merges.txt",)),
                          flags="--clip-model, or --metrics without clip/ae/fsc"))
    if "ae" in metrics:
        head = Protocol(protocol).aesthetic_head
        needs.append(Need("evaluation: aesthetic head", aesthetic_model or first_existing(AESTHETIC_REPOS, weights_root),
                          ((head,),), flags="--aesthetic-model, or --metrics without ae"))
    if "ir" in metrics:
        repo = image_reward_model or IMAGE_REWARD_ID
        needs.append(Need("evaluation: ImageReward", repo, ((IMAGE_REWARD_FILE,), (MED_CONFIG_FILE,)),
                          flags="--image-reward-model, or --metrics without ir"))
        needs.append(Need("evaluation: ImageReward's BERT tokenizer", first_existing(TOKENIZER_IDS, weights_root),
                          (("vocab.txt",), ("tokenizer_config.json",)), flags="--metrics without ir"))
    return needs
