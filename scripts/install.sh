#!/usr/bin/env bash
# Install FastFace Workbench (idempotent; Python >= 3.10, tested 3.11; ~2.3 GB, ~2 min).
#   bash scripts/install.sh          # the library, CLI and workbench
#   bash scripts/install.sh --test   # also Debian's chromium (browser test, figure export; ~350 MB)
#   bash scripts/install.sh --check  # only say which Python it would install into, and why
#   bash scripts/install.sh --gpu    # a CUDA machine: CUDA torch and onnxruntime-gpu (requirements-gpu.txt)
#                                    # instead of the CPU onnxruntime, never both
# FASTFACE_INSTALL_PLAN=1 prints the pip commands instead of running them.
# Where: the active virtual environment; else, when python3 is "externally managed" (Debian's
# and Ubuntu's system Python, where pip refuses), a virtual environment .venv in the repository
# that this script makes (FASTFACE_VENV=DIR to put it elsewhere), with the `fastface` command
# linked into ~/.local/bin or /usr/local/bin; else python3 itself (pyenv, conda, python.org).
# PYTHON=/path/to/python3 picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/python_env.sh
source scripts/python_env.sh
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

mode="${1:-}"
if [[ "$mode" == "--check" ]]; then
  fastface_python --quiet
  echo "install.sh: would install into $PY_WHY"
  exit 0
fi

pip_() {  # pip of the chosen interpreter, or only the command line with FASTFACE_INSTALL_PLAN=1
  if [[ -n "${FASTFACE_INSTALL_PLAN:-}" ]]; then echo "pip $*"; else "$PY" -m pip "$@"; fi
}

if [[ -n "${FASTFACE_INSTALL_PLAN:-}" ]]; then fastface_python --quiet; else fastface_python --create; fi
echo "install.sh: installing into $PY_WHY" >&2
# torch first, pinned, so that nothing later pulls another build of it
if [[ "$mode" == "--gpu" && -n "${TORCH_INDEX_URL:-}" ]]; then
  pip_ install -q "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
else
  pip_ install -q "torch==2.13.0"
fi
if [[ "$mode" == "--gpu" ]]; then
  # everything but the CPU onnxruntime, then exactly one ORT build: the GPU one
  reqs="$(mktemp)"
  grep -v -E '^[[:space:]]*onnxruntime([=<>~!; ]|$)' requirements.txt >"$reqs"
  pip_ install -q -r "$reqs"
  [[ -n "${FASTFACE_INSTALL_PLAN:-}" ]] && grep -v -E "^[[:space:]]*(#|$)" "$reqs" | sed "s/^/  requirement: /"
  rm -f "$reqs"
  pip_ uninstall -y -q onnxruntime
  pip_ install -q -r requirements-gpu.txt
else
  pip_ install -q -r requirements.txt
fi
# the editable install builds with the target's own setuptools (pyproject: >= 68) and wheel;
# a fresh Debian venv has setuptools 66 and no wheel
pip_ install -q "setuptools>=68" wheel
pip_ install -q --no-deps --no-build-isolation -e .
if [[ -n "${FASTFACE_INSTALL_PLAN:-}" ]]; then exit 0; fi
if [[ "$mode" == "--gpu" ]]; then
  "$PY" scripts/check_onnxruntime.py
fi

if [[ "$mode" == "--test" ]] && ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install.sh: could not install chromium; browser tests and figure export will be skipped" >&2
  else
    echo "install.sh: not root, skipping 'apt-get install chromium' (browser tests will be skipped)" >&2
  fi
fi

# A virtual environment this script chose: make `fastface` callable without activating it.
if [[ -n "${FASTFACE_VENV_DIR:-}" ]]; then
  fastface_link_cli "$FASTFACE_VENV_DIR"
  echo "install.sh: installed into $FASTFACE_VENV_DIR; to use its Python in a shell: . $FASTFACE_VENV_DIR/bin/activate" >&2
fi
