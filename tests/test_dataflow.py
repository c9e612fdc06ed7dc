"""Dataflow submission, verified offline with Beam's dry run.

``run_dataflow.sh --dry_run`` builds the complete job (the pipeline proto the
service would receive, and the sdist of setup.py that workers install) without
network access. The tests read the command the script makes of its variables
(from a stand-in python that prints it), build that job in this interpreter
and read what it built.
"""

import glob
import hashlib
import os
import re
import subprocess
import tarfile
import types

import pytest
from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.dataflow.internal import apiclient
from google.protobuf import json_format

from pipelines import cli
from pipelines.commands import dataflow, predict
from pipelines.records.serving_info import ServingInfo
from tests.conftest import PROJECT_ROOT, run_cli

STAGES = {"Prepare", "SplitExamples", "GenerateStats", "ValidateStats", "Analyze",
          "Transform", "WriteOutputs"}
ENV = {"PROJECT": "my-project", "REGION": "us-central1", "BUCKET": "my-bucket"}


def _run_dataflow(env: dict, *args: str, venv: str | None = None
                  ) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ENV} | env
    if venv is not None:
        environment["VENV_DIR"] = venv
    return subprocess.run(["bash", "run_dataflow.sh", *args], cwd=PROJECT_ROOT, env=environment,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def stand_in_venv(tmp_path_factory) -> str:
    """A venv whose python prints its arguments: what run_dataflow.sh would run,
    read without starting the pipeline (the tests then run it in-process)."""
    venv = tmp_path_factory.mktemp("stand_in_venv")
    python = venv / "bin" / "python"
    python.parent.mkdir()
    python.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    python.chmod(0o755)
    with open(os.path.join(PROJECT_ROOT, "setup.py"), "rb") as f:  # up to date: no install
        (venv / ".tft-preprocessing-setup.sha256").write_text(
            hashlib.sha256(f.read()).hexdigest() + "\n")
    return str(venv)


def _command_of(stand_in_venv: str, env: dict, *args: str) -> list[str]:
    """The ``python -m pipelines`` arguments run_dataflow.sh makes of ``env`` and ``args``."""
    result = _run_dataflow(env, *args, venv=stand_in_venv)
    assert result.returncode == 0, result.stderr[-3000:]
    words = result.stdout.splitlines()
    assert words[:2] == ["-m", "pipelines"], words
    return words[2:]


def _dry_run(tmp_path_factory, stand_in_venv, name: str, *args: str):
    job_file = str(tmp_path_factory.mktemp(name) / "job.json")
    command = _command_of(stand_in_venv, ENV | {"MACHINE_TYPE": "n2-standard-4",
                                                "MAX_WORKERS": "5"},
                          "--dry_run", "--job_description", job_file, *args)
    result = run_cli(*command)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(job_file) as f:
        proto = json_format.Parse(f.read(), beam_runner_api_pb2.Pipeline())
    return result, job_file, proto


@pytest.fixture(scope="module")
def csv_job(tmp_path_factory, stand_in_venv):
    return _dry_run(tmp_path_factory, stand_in_venv, "csv_job",
                    "--train_input", "gs://my-bucket/raw/train-*.csv",
                    "--serving_input", "gs://my-bucket/raw/serving-*.csv")


@pytest.fixture(scope="module")
def bigquery_job(tmp_path_factory, stand_in_venv):
    return _dry_run(tmp_path_factory, stand_in_venv, "bigquery_job",
                    "--bigquery_table", "my-project.flights.flights_2013",
                    "--serving_where", "month >= 11", "--sample_percent", "10",
                    "--drop_duplicates", "--oversample_minority", "0.5")


def _names(proto) -> set[str]:
    return {t.unique_name for t in proto.components.transforms.values()}


def _top_level_stages(proto) -> set[str]:
    return {name.split("/")[0] for name in _names(proto) if "/" in name}


def _steps_of(proto, stage: str) -> set[str]:
    """The labels of the steps directly inside a top-level stage."""
    return {name.split("/")[1] for name in _names(proto) if name.startswith(f"{stage}/")}


def test_run_dataflow_passes_its_variables_and_the_flags_it_is_given(stand_in_venv):
    assert _command_of(stand_in_venv, ENV | {"MAX_WORKERS": "5"}, "--limit", "10") == [
        "run", "--dataset", "flights", "--output_dir", "gs://my-bucket/output/flights",
        "--temp_dir", "gs://my-bucket/tft-tmp", "--runner", "DataflowRunner",
        "--project", "my-project", "--region", "us-central1",
        "--temp_location", "gs://my-bucket/tmp", "--staging_location", "gs://my-bucket/staging",
        "--setup_file", "./setup.py", "--max_num_workers", "5", "--limit", "10"]


def test_missing_variables_are_named_in_one_line():
    result = _run_dataflow({"PROJECT": "my-project"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: REGION, BUCKET not set (e.g. PROJECT=my-project REGION=us-central1 "
        "BUCKET=my-bucket ./run_dataflow.sh ...)"]


@pytest.mark.parametrize("job", ["csv_job", "bigquery_job"])
def test_dry_run_builds_every_stage(request, job):
    result, job_file, proto = request.getfixturevalue(job)
    assert STAGES <= _top_level_stages(proto)
    assert f"job description: {job_file}" in result.stdout
    assert "not submitted (dry run)" in result.stdout
    assert "dry run: TFT's temp dir is local" in result.stdout
    assert "gs://my-bucket/tft-tmp" in result.stdout
    assert "Retry with exponential backoff" not in result.stderr, "no credential lookups"


def test_bigquery_job_reads_the_generated_query(bigquery_job):
    result, _, proto = bigquery_job
    assert "Prepare/Read/BigQuery/Query" in _names(proto)
    # Instance selection runs on BigQuery rows too (one read, no second pass).
    assert {"RepeatedRowsTrain", "RepeatedRowsServing", "DeduplicateTrain"} <= _steps_of(
        proto, "Prepare")
    assert "OversampleMinority" in _top_level_stages(proto)
    assert "PrepareAgain" not in _top_level_stages(proto)
    assert "WHEN (month >= 11) THEN 'serving'" in result.stdout
    assert "< 1000" in result.stdout  # 10 percent, in hundredths of a percent


def test_a_csv_job_reads_its_inputs_again_to_transform_them(csv_job):
    _, _, proto = csv_job
    # The window events from a read of their own; the second pass reuses them.
    assert {"Read", "ReadForWindows", "LookupsTrain", "LookupsServing", "WindowEventsTrain",
            "WindowEventsServing", "WindowFeaturesTrain", "WindowFeaturesServing"} <= _steps_of(
        proto, "Prepare")
    again = _steps_of(proto, "PrepareAgain")
    assert {"Read", "LookupsTrain", "WindowFeaturesTrain"} <= again
    assert not {"ReadForWindows", "WindowEventsTrain", "RepeatedRowsTrain"} & again


def _staged_sdist(proto) -> str:
    for environment in proto.components.environments.values():
        assert environment.urn == "beam:env:docker:v1"
        for artifact in environment.dependencies:
            role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                artifact.role_payload)
            if role.staged_name == "workflow.tar.gz":  # what --setup_file stages
                return beam_runner_api_pb2.ArtifactFilePayload.FromString(
                    artifact.type_payload).path
    raise AssertionError("the job stages no sdist")


def test_workers_install_the_package_with_its_schemas_and_pins(csv_job):
    _, _, proto = csv_job
    with tarfile.open(_staged_sdist(proto)) as sdist:
        names = {re.sub(r"^[^/]+/", "", n) for n in sdist.getnames()}
        requires = next(m for m in sdist.getmembers() if m.name.endswith("requires.txt"))
        pins = sdist.extractfile(requires).read().decode()
    # Every module of the package, in every role folder, reaches the workers.
    package = sorted(os.path.relpath(path, PROJECT_ROOT) for path in glob.glob(
        os.path.join(PROJECT_ROOT, "pipelines", "**", "*.py"), recursive=True))
    assert "pipelines/stages/read.py" in package
    for module in (*package, "transforms/flights.py", "schemas/__init__.py",
                   "schemas/flights.pbtxt", "setup.py"):
        assert module in names, module
    for pin in ("tensorflow-transform==1.16.0", "apache-beam[gcp]==2.59.0", "pyarrow==10.0.1",
                "tensorflow-data-validation==1.16.1", "tfx-bsl==1.16.1"):
        assert pin in pins, pin


@pytest.mark.parametrize("output_dir, train_input, overrides, message", [
    ("gs://my-bucket/out", "/data/train.csv", {},
     "Dataflow workers cannot reach this machine's files"),
    ("/tmp/out", "gs://my-bucket/train.csv", {}, "/tmp/out is not on GCS"),
    ("gs://my-bucket/out", "gs://my-bucket/train.csv", {"--setup_file": None},
     "Dataflow needs --setup_file ./setup.py (or an --sdk_container_image"),
    ("gs://my-bucket/out", "gs://my-bucket/train.csv", {"--temp_location": "gs://b/tmp"},
     "Invalid GCS bucket (gs://b/tmp)"),
    ("gs://my-bucket/out", "gs://my-bucket/train.csv", {"--project": "P"},
     "Invalid Project ID (P)"),
])
def test_dataflow_flags_are_checked_before_building(output_dir, train_input, overrides,
                                                    message, capsys):
    settings = {"--project": "my-project", "--region": "us-central1",
                "--temp_location": "gs://my-bucket/tmp", "--setup_file": "./setup.py"}
    settings.update(overrides)
    flags = ["run", "--dataset", "flights", "--output_dir", output_dir,
             "--train_input", train_input,
             "--runner", "DataflowRunner", "--dry_run"]
    for flag, value in settings.items():
        if value is not None:
            flags += [flag, value]
    assert cli.main(flags) == 2
    assert message in capsys.readouterr().err


def test_dry_run_needs_the_dataflow_runner(tmp_path, capsys):
    assert cli.main(["run", "--output_dir", str(tmp_path), "--dry_run"]) == 2
    assert "--dry_run builds a Dataflow job" in capsys.readouterr().err


def test_the_streaming_job_reads_pubsub_and_computes_the_window_features(
        tmp_path_factory, stand_in_venv):
    result, job_file, proto = _dry_run(
        tmp_path_factory, stand_in_venv, "streaming_job", "--streaming",
        "--input_topic", "projects/my-project/topics/flights-raw",
        "--output_topic", "projects/my-project/topics/flights-windows")
    urns = {t.spec.urn for t in proto.components.transforms.values()}
    assert {"beam:transform:pubsub_read:v1", "beam:transform:pubsub_write:v1"} <= urns
    names = _names(proto)
    assert {"Prepare/Read/ReadPubSub", "Prepare/Read/DecodeMessages", "WriteRows",
            "WriteRejected"} <= names
    # Lookups, then one stateful step per entity column the features group by, and the join.
    assert {"Prepare/LookupsServing", "Prepare/WindowFeaturesServing/Windowsorigin",
            "Prepare/WindowFeaturesServing/Windowscarrier",
            "Prepare/WindowFeaturesServing/Join"} <= names
    assert "not submitted (dry run)" in result.stdout and job_file in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--input_topic", "projects/p/topics/t", "--output_topic", "projects/p/topics/o"],
     "error: --input_topic is a streaming job: add --streaming"),
    (["--input_topic", "projects/p/topics/t", "--streaming"],
     "error: --input_topic needs --output_topic, where the rows go"),
])
def test_streaming_flags_are_checked_in_one_line(stand_in_venv, args, message):
    result = run_cli(*_command_of(stand_in_venv, ENV, "--dry_run", *args))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == message


_DATAFLOW_FLAGS = ["--runner", "DataflowRunner", "--project", "my-project", "--region",
                   "us-central1", "--temp_location", "gs://my-bucket/tmp",
                   "--setup_file", "./setup.py"]


@pytest.mark.slow
def test_predict_builds_a_dataflow_job_that_runs_inference(tmp_path, trained_model,
                                                           monkeypatch):
    # The launcher reads the serving model's info and dataset from --model (on GCS
    # in real use); offline, they are handed over from the local model.
    info = ServingInfo.read(trained_model.serving_dir)
    carried = predict._dataset(trained_model.serving_dir)
    monkeypatch.setattr(ServingInfo, "read", classmethod(lambda cls, model_dir: info))
    monkeypatch.setattr(predict, "_dataset", lambda model_dir: carried)
    job_file = tmp_path / "predict_job.json"
    result = run_cli(
        "predict", "--model", "gs://my-bucket/models/flights/serving",
        "--input", "gs://my-bucket/raw/new-*.csv", "--output_dir", "gs://my-bucket/predictions",
        *_DATAFLOW_FLAGS, "--dry_run", "--job_description", str(job_file))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "not submitted (dry run)" in result.stdout
    proto = json_format.Parse(job_file.read_text(), beam_runner_api_pb2.Pipeline())
    assert {"Prepare", "Predict"} <= _top_level_stages(proto)
    assert {"Read", "ReadForWindows", "LookupsServing", "WindowEventsServing",
            "WindowFeaturesServing"} <= _steps_of(proto, "Prepare")
    assert {"RunInference", "Write"} <= _steps_of(proto, "Predict")


@pytest.mark.slow
def test_predict_on_dataflow_needs_inputs_on_gcs(trained_model):
    result = run_cli("predict", "--model", trained_model.serving_dir, "--input", "new.csv",
                     "--output_dir", "gs://my-bucket/predictions", *_DATAFLOW_FLAGS, "--dry_run")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: new.csv is not on GCS")


class _Request:
    """What Beam's ``create_job`` handles: options, the request's steps, its JSON."""

    def __init__(self, size: int):
        self.options = PipelineOptions(["--staging_location", "gs://my-bucket/staging"])
        self.proto = types.SimpleNamespace(steps=["a step"], stepsLocation=None)
        self._size = size

    def json(self) -> str:
        return "x" * self._size


def test_a_job_request_near_the_limit_has_its_graph_staged(monkeypatch):
    dataflow.settings(["--runner", "DataflowRunner", "--project", "my-project", "--region",
                       "us-central1", "--temp_location", "gs://my-bucket/tmp",
                       "--setup_file", "./setup.py"], dry_run=True)
    client_class = apiclient.DataflowApplicationClient
    assert client_class.create_job_description.stages_large_graphs  # the switch is on
    client = object.__new__(client_class)  # no GCS client: staging and submitting recorded
    staged, submitted = [], []
    monkeypatch.setattr(client_class, "stage_file",
                        lambda self, location, name, stream: staged.append(name))
    monkeypatch.setattr(client_class, "submit_job_description",
                        lambda self, job: submitted.append(job))
    monkeypatch.setattr(client_class, "create_job_description",
                        dataflow._staging_large_graphs(lambda self, job: None))

    large, small = _Request(dataflow.UPLOAD_GRAPH_BYTES + 1), _Request(7_000)
    for job in (large, small):
        client_class.create_job(client, job)  # Beam's own create_job
    assert submitted == [large, small]
    assert large.options.view_as(DebugOptions).lookup_experiment("upload_graph")
    assert staged == ["dataflow_graph.json"] and large.proto.steps == []
    assert large.proto.stepsLocation == "gs://my-bucket/staging/dataflow_graph.json"
    assert not small.options.view_as(DebugOptions).lookup_experiment("upload_graph")
    assert small.proto.steps == ["a step"]


def test_the_dry_run_reports_the_job_sizes(csv_job):
    result, _, _ = csv_job
    sizes = re.search(r"job request: ([\d,]+) bytes \(under Dataflow's 10 MB limit\); "
                      r"pipeline proto: ([\d,]+) bytes", result.stdout)
    assert sizes, result.stdout
    request, pipeline = (int(s.replace(",", "")) for s in sizes.groups())
    assert request < dataflow.UPLOAD_GRAPH_BYTES < 10_000_000 and pipeline > request
