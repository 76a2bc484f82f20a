#!/usr/bin/env bash
# Install FastFace Workbench into the current Python environment (idempotent).
#   bash scripts/install.sh          # the library, CLI and workbench
#   bash scripts/install.sh --test   # also Debian's chromium (browser test, figure export)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# torch first, pinned, so that nothing later pulls another build of it
$PY -m pip install -q "torch==2.13.0"
$PY -m pip install -q -r requirements.txt
$PY -m pip install -q --no-deps --no-build-isolation -e .
if [[ "${1:-}" == "--test" ]] && ! command -v chromium >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install.sh: could not install chromium; browser tests and figure export will be skipped" >&2
  else
    echo "install.sh: not root, skipping 'apt-get install chromium' (browser tests will be skipped)" >&2
  fi
fi
