#!/usr/bin/env bash
# Submits the same pipeline to Google Cloud Dataflow. Not yet implemented.
echo "run_dataflow.sh: not yet implemented; run the pipeline locally with ./run_local.sh" >&2
exit 2
