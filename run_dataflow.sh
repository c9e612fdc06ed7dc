#!/usr/bin/env bash
# Runs the same pipeline on Google Cloud Dataflow: `python -m pipelines run` with
# the Dataflow flags made from these variables.
#
#   required  PROJECT, REGION, BUCKET (a GCS bucket name, without gs://)
#   optional  MACHINE_TYPE, MAX_WORKERS, SERVICE_ACCOUNT, NETWORK,
#             DATASET (default flights), OUTPUT_DIR (default gs://BUCKET/output/DATASET),
#             SDK_CONTAINER_IMAGE (a worker image with the package installed, used
#             instead of installing it from --setup_file on every worker)
#
#   PROJECT=p REGION=us-central1 BUCKET=b ./run_dataflow.sh \
#       --train_input 'gs://b/raw/train-*.csv' --serving_input 'gs://b/raw/serving-*.csv'
#   PROJECT=p REGION=us-central1 BUCKET=b ./run_dataflow.sh \
#       --bigquery_table p.flights.flights_2013 --serving_where 'month >= 11'
#
# Extra flags go to the pipeline. With --dry_run the complete job is built
# offline and written as JSON (its path is printed), not submitted.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
for name in PROJECT REGION BUCKET; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
if [ "${#missing[@]}" -gt 0 ]; then
  printf -v names '%s, ' "${missing[@]}"
  echo "error: ${names%, } not set (e.g. PROJECT=my-project REGION=us-central1 BUCKET=my-bucket ./run_dataflow.sh ...)" >&2
  exit 2
fi
source scripts/ensure_venv.sh

DATASET="${DATASET:-flights}"
args=(
  --dataset "$DATASET"
  --output_dir "${OUTPUT_DIR:-gs://$BUCKET/output/$DATASET}"
  --temp_dir "gs://$BUCKET/tft-tmp"
  --runner DataflowRunner
  --project "$PROJECT"
  --region "$REGION"
  --temp_location "gs://$BUCKET/tmp"
  --staging_location "gs://$BUCKET/staging"
)
if [ -n "${SDK_CONTAINER_IMAGE:-}" ]; then
  args+=(--sdk_container_image "$SDK_CONTAINER_IMAGE")
else
  args+=(--setup_file ./setup.py)
fi
[ -z "${MACHINE_TYPE:-}" ] || args+=(--machine_type "$MACHINE_TYPE")
[ -z "${MAX_WORKERS:-}" ] || args+=(--max_num_workers "$MAX_WORKERS")
[ -z "${SERVICE_ACCOUNT:-}" ] || args+=(--service_account_email "$SERVICE_ACCOUNT")
[ -z "${NETWORK:-}" ] || args+=(--network "$NETWORK")
"$PYTHON" -m pipelines run "${args[@]}" "$@"
