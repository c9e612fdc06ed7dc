#!/usr/bin/env bash
# Runs the default job on the DirectRunner: all 336,776 NYC flights 2013 rows,
# January-October as training data and November-December as serving data.
#
#   ./run_local.sh                         # writes ./output/flights
#   ./run_local.sh --limit 5000            # extra flags go to `python -m pipelines run`
#   OUTPUT_DIR=/tmp/flights ./run_local.sh
#
# A second call reuses .venv and replaces the previous run's outputs.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/ensure_venv.sh

DATASET="${DATASET:-flights}"
OUTPUT_DIR="${OUTPUT_DIR:-$PWD/output/$DATASET}"
"$PYTHON" -m pipelines run --dataset "$DATASET" --output_dir "$OUTPUT_DIR" --overwrite "$@"
