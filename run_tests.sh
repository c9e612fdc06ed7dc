#!/usr/bin/env bash
# Sets up .venv as run_local.sh does, then lints, checks the architecture
# (import-linter's contracts in .importlinter) and runs the whole test suite.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k split
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh

"$VENV_DIR/bin/ruff" check .
"$VENV_DIR/bin/lint-imports"
"$PYTHON" -m pytest "$@"
