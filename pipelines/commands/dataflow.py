"""Submitting to Google Cloud Dataflow, and building the job offline (dry run).

``--dry_run`` builds the complete Dataflow job (the portable pipeline proto the
service would receive, and the sdist of ``setup.py`` that workers install)
without submitting it, and writes the pipeline proto as JSON. Two things in
Beam 2.59 would otherwise reach for the network while the job is built, and
``offline()`` turns them off for a dry run only:

- with no Google credentials, Beam retries the credential lookup with
  exponential backoff (about 25 s of warnings) before going on anonymously;
- validating ``--temp_location`` probes the bucket's soft-delete policy, which
  only serves to log a storage-cost warning.

Dataflow refuses a job request over 10 MB ("Job graph is too large"), as TFT's
jobs with many features used to make. When a request to submit is over
``UPLOAD_GRAPH_BYTES``, ``--experiments=upload_graph`` is added: Beam then
stages the graph's steps to GCS and the request only names them. (Beam 2.59
runs Python jobs on Runner v2, which already stages the pipeline proto as a
file and sends no steps: the request stays small, and the switch is the guard
for what else would grow it.) A dry run reports both sizes.
"""

import contextlib
import os
import unittest.mock
from collections.abc import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DebugOptions,
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    WorkerOptions,
)
from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
from apache_beam.runners.dataflow.internal import apiclient
from google.protobuf import json_format

from pipelines.errors import UserError

__all__ = [
    "UPLOAD_GRAPH_BYTES", "DataflowSettings", "default_job_description", "dry_run", "job_bytes",
    "offline", "settings", "write_job_description",
]


# Dataflow's limit is 10 MB; the switch is made with room to spare.
UPLOAD_GRAPH_BYTES = 8 << 20
_UPLOAD_GRAPH = "upload_graph"


def job_bytes(job) -> int:
    """The size of the job request Dataflow receives (its JSON), once its
    environment is described."""
    return len(job.json().encode("utf-8"))


def _staging_large_graphs(create_job_description: Callable) -> Callable:
    """``create_job_description`` that then adds ``upload_graph`` to a job over
    ``UPLOAD_GRAPH_BYTES``: ``create_job`` reads the experiment right after."""

    def create_job_description_staging_large_graphs(client, job):
        create_job_description(client, job)
        debug = job.options.view_as(DebugOptions)
        size = job_bytes(job)
        if size > UPLOAD_GRAPH_BYTES and not debug.lookup_experiment(_UPLOAD_GRAPH):
            debug.add_experiment(_UPLOAD_GRAPH)
            print(f"the job request is {size / 2**20:.1f} MiB, near Dataflow's 10 MB limit: "
                  f"its graph is staged to GCS (--experiments={_UPLOAD_GRAPH})", flush=True)

    create_job_description_staging_large_graphs.stages_large_graphs = True
    return create_job_description_staging_large_graphs


def _switch_upload_graph() -> None:
    """Makes every Dataflow submission of this process stage a large graph."""
    client = apiclient.DataflowApplicationClient
    if not getattr(client.create_job_description, "stages_large_graphs", False):
        client.create_job_description = _staging_large_graphs(client.create_job_description)


def _described_bytes(job) -> tuple[int, int]:
    """A dry-run job's request size as ``create_job_description`` would make it
    (less the staged packages' list), and its pipeline proto's size (staged to
    GCS as a file, not sent in the request)."""
    pipeline = job.proto_pipeline
    environment = apiclient.Environment(
        proto_pipeline_staged_url="gs://staging/pipeline.pb", packages=[], options=job.options,
        environment_version="0", proto_pipeline=pipeline).proto
    job.proto.environment = environment  # a dry run's job, never sent
    return job_bytes(job), pipeline.ByteSize()


class DataflowSettings:
    """What the launcher needs to know about a Dataflow submission."""

    def __init__(self, beam_args: list[str], dry_run: bool):
        options = PipelineOptions(beam_args)
        self.project = options.view_as(GoogleCloudOptions).project
        self.region = options.view_as(GoogleCloudOptions).region
        self.temp_location = options.view_as(GoogleCloudOptions).temp_location
        self.setup_file = options.view_as(SetupOptions).setup_file
        self.container_image = options.view_as(WorkerOptions).sdk_container_image
        self.dry_run = dry_run


def settings(beam_args: list[str], dry_run: bool) -> DataflowSettings | None:
    """The Dataflow settings when the runner is Dataflow, else None.

    Raises:
      UserError: a flag Dataflow needs is missing, or --dry_run without Dataflow.
    """
    runner = PipelineOptions(beam_args).view_as(StandardOptions).runner or ""
    if "dataflow" not in runner.lower():
        if dry_run:
            raise UserError("--dry_run builds a Dataflow job: add --runner DataflowRunner")
        return None
    dataflow = DataflowSettings(beam_args, dry_run)
    missing = [flag for flag, value in (("--project", dataflow.project),
                                         ("--region", dataflow.region),
                                         ("--temp_location", dataflow.temp_location)) if not value]
    if not (dataflow.setup_file or dataflow.container_image):
        missing.append("--setup_file ./setup.py (or an --sdk_container_image with the "
                       "package installed)")
    if missing:
        raise UserError(f"Dataflow needs {', '.join(missing)}; run_dataflow.sh passes them")
    # Beam validates these when the pipeline is built, and answers a malformed
    # bucket by trying to create a default one: check them here, offline.
    options = PipelineOptions(beam_args)
    cloud = options.view_as(GoogleCloudOptions)
    validator = PipelineOptionsValidator(options, runner=None)
    errors = validator.validate_gcs_path(cloud, "temp_location")
    if cloud.staging_location:
        errors += validator.validate_gcs_path(cloud, "staging_location")
    errors += validator.validate_cloud_options(cloud)
    if errors:
        raise UserError("invalid Dataflow options: " + " ".join(errors))
    _switch_upload_graph()
    return dataflow


@contextlib.contextmanager
def offline():
    """Builds a Dataflow job without touching the network (see the module doc)."""
    from apache_beam.internal.gcp import auth
    from apache_beam.io.gcp import gcsio

    with unittest.mock.patch.object(auth._Credentials, "_credentials_init", True), \
            unittest.mock.patch.object(auth._Credentials, "_credentials", None), \
            unittest.mock.patch.object(gcsio.GcsIO, "is_soft_delete_enabled",
                                       lambda self, path: False):
        yield


def write_job_description(result, path: str) -> tuple[int, list[str]]:
    """Writes a dry-run job's pipeline proto as JSON.

    Returns the number of transforms and the top-level stage labels.
    """
    proto = result.job.proto_pipeline
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(json_format.MessageToJson(proto))
    transforms = proto.components.transforms.values()
    stages = sorted({t.unique_name.split("/")[0] for t in transforms
                     if "/" in t.unique_name})
    return len(transforms), stages


def default_job_description(dataset: str) -> str:
    """Where ``--dry_run`` writes the job unless ``--job_description`` says."""
    return os.path.join("output", "dataflow", f"{dataset}_job.json")


def dry_run(build: Callable[[], beam.Pipeline], job_description: str) -> int:
    """Builds the Dataflow job offline with ``build`` (a pipeline whose options
    carry ``--dry_run=True``) and writes it to ``job_description``; returns 0."""
    with offline():
        result = build().run()
    transforms, stages = write_job_description(result, job_description)
    request, pipeline = _described_bytes(result.job)
    switch = (f"over {UPLOAD_GRAPH_BYTES >> 20} MiB: its graph would be staged, "
              f"--experiments={_UPLOAD_GRAPH}" if request > UPLOAD_GRAPH_BYTES
              else "under Dataflow's 10 MB limit")
    print(f"Dataflow job built, not submitted (dry run): {transforms:,} transforms in "
          f"stages {', '.join(stages)}.\njob request: {request:,} bytes ({switch}); "
          f"pipeline proto: {pipeline:,} bytes (staged to GCS as a file)"
          f"\njob description: {os.path.abspath(job_description)}", flush=True)
    return 0
