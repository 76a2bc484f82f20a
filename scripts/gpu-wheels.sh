#!/usr/bin/env bash
# Download, on a machine with network, the wheels that scripts/gpu-check.sh installs on a
# machine without network: what the GPU tests and benchmarks import (versions from
# requirements.txt) and their dependencies, binary wheels for CPython 3.12 on manylinux x86-64.
#
#   scripts/gpu-wheels.sh DIR [--python-version 3.12] [--require MODULE=DIST ...]
#
# Then copy DIR to the GPU machine and run scripts/gpu-check.sh --wheels DIR.  pip there keeps
# what is installed already and takes only the missing packages from DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: scripts/gpu-wheels.sh DIR [--python-version 3.12] [--require MODULE=DIST ...]" >&2
  exit 2
fi
dir="$1"; shift
PY="${PYTHON:-python3}"
exec "$PY" scripts/gpu_check.py --download-wheels "$dir" "$@"
