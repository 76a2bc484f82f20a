#!/usr/bin/env bash
# Install everything the tests need, then run the whole test suite (CPU; GPU tests skip
# themselves without CUDA). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
set +e
python3 -m pytest -q -p no:cacheprovider --timeout=900 "$@"
rc=$?
set -e
if [[ $rc == 5 ]]; then echo "scripts/test.sh: pytest collected no tests" >&2; exit 1; fi
exit $rc
