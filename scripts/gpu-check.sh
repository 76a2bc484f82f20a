#!/usr/bin/env bash
# The prepared GPU check (issue 14, part 4): on a CUDA machine with Python + PyTorch and no
# network, install what is missing from a folder of wheels, run tests/gpu and the --full
# benchmarks within a time budget (default 8 min) and print one table.
#
#   scripts/gpu-check.sh [--wheels DIR] [--target DIR] [--budget-s 480] [--out DIR] [--only STEPS]
#   scripts/gpu-check.sh --cpu-dry-run        # the same steps on CPU at tiny sizes (tests the script)
#   scripts/gpu-wheels.sh DIR                 # fill DIR on a machine with network (Python 3.12 manylinux)
#
# Python: $PYTHON if set, else python3 (the one that holds torch).  Exit status: 0 all steps
# passed, 1 a step failed or ran out of time, 2 no CUDA (without --cpu-dry-run), 3 packages
# missing and not installable.  Details: scripts/gpu_check.py --help.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "gpu-check: $PY cannot import torch: set PYTHON to the Python that holds PyTorch" >&2
  exit 2
fi
exec "$PY" scripts/gpu_check.py "$@"
