#!/usr/bin/env bash
# Sets up .venv as run_local.sh does, then lints and runs the whole test suite.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k split
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh

"$VENV_DIR/bin/ruff" check .
"$PYTHON" -m pytest "$@"
