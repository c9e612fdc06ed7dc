"""``serve --log_dir``: answered instances logged as CSV, stopped by SIGTERM
without losing any, and ``validate`` checking the log against training."""

import csv
import glob
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

from pipelines import layout
from pipelines.decode.request_logs import LOG_COLUMNS, PREDICTION_COLUMN
from tests.conftest import PROJECT_ROOT, raw_rows, run_cli
from tests.test_rest import _instances
from transforms import flights

# Every test here reads a full pipeline run (or a trained model) of its own.
pytestmark = pytest.mark.slow

DELAY_SHIFT_MINUTES = 90
BATCH = 100


def _start(model_dir: str, log_dir: str) -> tuple[subprocess.Popen, tuple[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "serve", "--model", model_dir, "--port", "0",
         "--log_dir", log_dir, "--log_sample", "1.0"],
        cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stderr:
        lines.append(line)
        match = re.search(r"at http://([\d.]+):(\d+)/v1/models/flights", line)
        if match:
            return process, (match.group(1), int(match.group(2)))
    pytest.fail("the server did not start:\n" + "".join(lines))


def _serve_and_log(model_dir: str, log_dir: str, instances: list[dict]) -> list[float]:
    """Sends the instances in batches, stops the server with SIGTERM; returns
    the predictions."""
    process, address = _start(model_dir, log_dir)
    predictions = []
    try:
        for start in range(0, len(instances), BATCH):
            connection = http.client.HTTPConnection(*address, timeout=60)
            connection.request("POST", "/v1/models/flights:predict", body=json.dumps(
                {"instances": instances[start:start + BATCH]}))
            response = connection.getresponse()
            assert response.status == 200
            predictions += json.loads(response.read())["predictions"]
            connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    return predictions


def _logged(log_dir: str) -> tuple[list[str], list[dict]]:
    header, rows = None, []
    for path in sorted(glob.glob(os.path.join(log_dir, "*.csv"))):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            rows += list(reader)
    assert not glob.glob(os.path.join(log_dir, "*.partial")), "a shard was left incomplete"
    return header, rows


def _as_sent(row: dict) -> dict:
    """A logged row's features back as a JSON client sent them."""
    sent = {}
    for name in flights.SERVING_INPUTS:
        text = row[name]
        if text == "":
            continue
        if name in ("carrier", "origin", "dest", "tailnum"):
            sent[name] = text
        elif re.fullmatch(r"-?\d+", text):
            sent[name] = int(text)
        else:
            sent[name] = float(text)
    return sent


def _validate(run_dir: str, log_dir: str, span: str, *flags: str):
    return run_cli("validate", "--run_dir", run_dir, "--serving_input",
                   os.path.join(log_dir, "*.csv"), "--span", span, "--fail_on_anomalies",
                   *flags)


def test_logged_requests_are_what_was_sent_and_validate_as_serving_data(
        tmp_path, trained_model, flights_run):
    raw, _ = raw_rows(flights_run.output_dir, "eval", 1000)
    instances = _instances(raw)
    log_dir = str(tmp_path / "log")
    predictions = _serve_and_log(trained_model.serving_dir, log_dir, instances)

    header, logged = _logged(log_dir)
    assert header[-2:] == list(LOG_COLUMNS)
    assert len(logged) == len(instances)  # every row, none lost at SIGTERM
    # One server thread answers a connection's requests in order: the log
    # holds them in the order sent.
    assert [_as_sent(row) for row in logged] == instances
    assert [float(row[PREDICTION_COLUMN]) for row in logged] == predictions

    # validate writes into the run directory: a copy keeps the shared run intact.
    run_dir = str(tmp_path / "run")
    shutil.copytree(flights_run.output_dir, run_dir)
    result = _validate(run_dir, log_dir, "logged")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "a request log of 19 features" in result.stdout
    assert f"span logged: {len(instances):,} rows, 0 rejected, no anomalies" in result.stdout

    shifted_dir = str(tmp_path / "shifted")
    shifted = [{**row, "dep_delay": row["dep_delay"] + DELAY_SHIFT_MINUTES}
               if "dep_delay" in row else row for row in instances]
    _serve_and_log(trained_model.serving_dir, shifted_dir, shifted)
    previous = layout.stats_file(layout.validation_dir(run_dir, "logged"), "serving")
    result = _validate(run_dir, shifted_dir, "shifted", "--previous_stats", previous)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    anomalous = re.search(r"anomalies in \d+ features?\n((?:  .*\n)+)", result.stdout)
    assert anomalous, result.stdout
    named = {line.split(":")[0].strip() for line in anomalous.group(1).splitlines()}
    assert named == {"dep_delay"}, result.stdout
    assert "between training and serving" in result.stdout  # skew
    assert re.search(r"drift: .*over: dep_delay", result.stdout)  # against the first span
