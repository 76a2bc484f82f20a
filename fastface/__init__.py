"""FastFace on diffusers: decoupled CFG (DCG) and attention manipulation (AM) for
IP-Adapter FaceID-Plus-v2 on few-step distilled SDXL models (arXiv 2505.21144).

Light imports only: the math (``fastface.guidance``, ``fastface.transforms``) and the
configurations (``fastface.config``) need torch but no diffusers; the pipeline, checkpoints
and the tiny world import diffusers when used.
"""
from fastface.config import FastFaceConfig, load_preset, preset_names

__version__ = "0.1.0"
__all__ = ["FastFaceConfig", "load_preset", "preset_names", "__version__"]
