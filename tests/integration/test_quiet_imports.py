"""The demo path prints no transformers torchvision-fallback warning (and keeps other messages)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMPORT = "from diffusers import StableDiffusionXLPipeline\n"
AFTER = ("import logging, transformers\n"
         "log = logging.getLogger('transformers.utils.import_utils')\n"
         "print(transformers.CLIPImageProcessor.__name__, len(log.filters))\n"
         "log.warning('another transformers message')\n")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                    reason="with torchvision installed transformers has no fallback to warn about")
def test_sdxl_import_drops_only_the_torchvision_fallback_warning():
    plain = _run(IMPORT + AFTER)  # control: without the filter the warning is there
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "requires torchvision (not installed)" in plain.stderr
    quiet = _run("from fastface.models.checkpoints import quiet_torchvision_fallback\n"
                 "with quiet_torchvision_fallback():\n    " + IMPORT + AFTER)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "requires torchvision" not in quiet.stderr
    assert quiet.stdout.split() == ["CLIPImageProcessorPil", "0"]  # the fallback happened; filter removed
    assert "another transformers message" in quiet.stderr
