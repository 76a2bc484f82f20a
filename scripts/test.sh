#!/usr/bin/env bash
# Install everything the tests need, then run the whole test suite (CPU; GPU tests skip
# themselves without CUDA) with the Python that install.sh installed into (see
# scripts/python_env.sh: the active venv, .venv for an externally managed python3, or python3).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
# shellcheck source=scripts/python_env.sh
source scripts/python_env.sh
fastface_python --quiet
set +e
"$PY" -m pytest -q -p no:cacheprovider --timeout=900 "$@"
rc=$?
set -e
if [[ $rc == 5 ]]; then echo "scripts/test.sh: pytest collected no tests" >&2; exit 1; fi
exit $rc
