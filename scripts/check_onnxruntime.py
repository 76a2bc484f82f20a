"""After `install.sh --gpu`: exactly one onnxruntime build (onnxruntime-gpu) is installed, and which
execution providers it offers. Exit 1, with the fix, otherwise."""
from __future__ import annotations

import sys
from importlib import metadata

BUILDS = ("onnxruntime", "onnxruntime-gpu")


def installed_builds() -> list[str]:
    names = {(d.metadata["Name"] or "").lower().replace("_", "-") for d in metadata.distributions()}
    return [b for b in BUILDS if b in names]


def main() -> int:
    builds = installed_builds()
    try:
        import onnxruntime

        providers = ", ".join(onnxruntime.get_available_providers())
    except ImportError as e:
        providers = f"import failed: {e}"
    print(f"onnxruntime builds installed: {', '.join(builds) or 'none'}; providers: {providers}")
    if builds != ["onnxruntime-gpu"]:
        print("expected only onnxruntime-gpu; fix: pip uninstall -y onnxruntime onnxruntime-gpu && "
              "pip install -r requirements-gpu.txt", file=sys.stderr)
        return 1
    if "CUDAExecutionProvider" not in providers:
        print("onnxruntime-gpu offers no CUDAExecutionProvider here (no CUDA / cuDNN libraries found): insightface "
              "would run on the CPU", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
