"""Command-line arguments shared by several ``fastface`` commands (generate, capture)."""
from __future__ import annotations

import argparse

from fastface.method.config import ConfigError


def add_face_args(p: argparse.ArgumentParser) -> None:
    """--face-backend, --insightface-root and --clip-crop-order (generate, capture)."""
    p.add_argument("--face-backend", choices=["insightface", "dlib", "skimage"],
                   help="face analysis (default: insightface on real weights, buffalo_l; dlib in the offline worlds)")
    p.add_argument("--insightface-root", help="folder holding models/buffalo_l/*.onnx (default: "
                                              "<weights-root>/insightface, $INSIGHTFACE_HOME, ~/.insightface)")
    p.add_argument("--clip-crop-order", choices=["bgr", "rgb"],
                   help="channel order of the aligned ID crop fed to the CLIP image encoder (default on real "
                        "weights: bgr, as the authors' release crops the cv2 image; rgb in the offline worlds)")


def add_size_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--height", type=int, help="image height in pixels, a multiple of 8 (default: the checkpoint's)")
    p.add_argument("--width", type=int, help="image width in pixels, a multiple of 8 (default: the checkpoint's)")


def check_size(height: int | None, width: int | None) -> None:
    for flag, v in (("--height", height), ("--width", width)):
        if v is not None and (v < 8 or v % 8):
            raise ConfigError(f"{flag} {v}: give a multiple of 8 (the VAE downsamples by 8), e.g. 1024")
