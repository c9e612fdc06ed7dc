"""``python -m pipelines serve``: real HTTP requests to TF Serving's REST API."""

import base64
import csv
import glob
import http.client
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from pipelines import layout
from pipelines.datasets import get_dataset
from pipelines.decode import row_keys
from pipelines.decode.files import decoded_table
from pipelines.decode.row_keys import ROW_KEY
from tests.conftest import PROJECT_ROOT, raw_rows, run_cli
from transforms import flights

# Every test here reads a full pipeline run (or a trained model) of its own.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(trained_model):
    """The server on a free port; yields (host, port)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "serve", "--model", trained_model.serving_dir,
         "--port", "0"],
        cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stderr:  # the server names its address once it listens
        lines.append(line)
        match = re.search(r"at http://([\d.]+):(\d+)/v1/models/flights", line)
        if match:
            break
    else:
        pytest.fail("the server did not start:\n" + "".join(lines))
    yield match.group(1), int(match.group(2))
    process.terminate()
    process.wait(timeout=30)


def _request(server, method: str, path: str, body=None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(*server, timeout=60)
    payload = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    connection.request(method, path, body=payload,
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    status, data = response.status, json.loads(response.read())
    connection.close()
    return status, data


def _instances(raw) -> list[dict]:
    """Raw rows as a JSON client sends them: missing optional values left out."""
    rows = []
    for i in range(raw.num_rows):
        row = {}
        for name in flights.SERVING_INPUTS:
            value = raw.column(name)[i].as_py()
            if value is not None:
                row[name] = value[0].decode() if isinstance(value[0], bytes) else value[0]
        rows.append(row)
    return rows


def _expected(trained_model, serialized) -> np.ndarray:
    loaded = tf.saved_model.load(trained_model.serving_dir)
    return loaded.signatures["serving_default"](
        examples=tf.constant(serialized))["probability"].numpy()


def test_status(server):
    status, body = _request(server, "GET", "/v1/models/flights")
    assert status == 200
    assert body["model_version_status"][0]["state"] == "AVAILABLE"


def test_metadata_names_the_features(server):
    status, body = _request(server, "GET", "/v1/models/flights/metadata")
    assert status == 200
    features = body["signatures"]["predict_raw"]
    assert set(features) == set(flights.SERVING_INPUTS)
    assert features["dep_delay"]["required"] is False and features["carrier"]["required"]


def test_predictions_match_the_saved_model(server, trained_model, flights_run):
    raw, serialized = raw_rows(flights_run.output_dir, "eval", 1000)
    instances = _instances(raw)
    assert any("dep_delay" not in row for row in instances), "some rows lack dep_delay"
    status, body = _request(server, "POST", "/v1/models/flights:predict",
                            {"instances": instances})
    assert status == 200
    expected = _expected(trained_model, serialized)
    np.testing.assert_allclose(body["predictions"], expected, rtol=0, atol=1e-6)

    columns = {name: [row.get(name) for row in instances] for name in flights.SERVING_INPUTS}
    status, body = _request(server, "POST", "/v1/models/flights:predict", {"inputs": columns})
    assert status == 200
    np.testing.assert_allclose(body["predictions"], expected, rtol=0, atol=1e-6)

    examples = [{"b64": base64.b64encode(s).decode()} for s in serialized]
    status, body = _request(server, "POST", "/v1/models/flights:predict",
                            {"signature_name": "serving_default", "instances": examples})
    assert status == 200
    np.testing.assert_allclose(body["predictions"], expected, rtol=0, atol=1e-6)


GOOD = {"year": 2013, "month": 1, "day": 1, "hour": 5, "minute": 15, "carrier": "UA",
        "origin": "EWR", "dest": "IAH", "distance": 1400, "dep_delay": 2, "tailnum": "N14228",
        "origin_departures_1h": 0, "carrier_departures_1h": 0,
        "origin_dep_delay_mean_24h": 0.0, "carrier_dep_delay_mean_24h": 0.0}


@pytest.mark.parametrize("method, path, body, status, message", [
    ("POST", "/v1/models/flights:predict", b"{not json", 400, "not valid JSON"),
    ("POST", "/v1/models/flights:predict", [GOOD], 400, "must be a JSON object"),
    ("POST", "/v1/models/flights:predict", {"rows": [GOOD]}, 400, '"instances"'),
    ("POST", "/v1/models/flights:predict", {"instances": []}, 400, "non-empty list"),
    ("POST", "/v1/models/flights:predict",
     {"instances": [{k: v for k, v in GOOD.items() if k != "carrier"}]}, 400,
     "lacks the required feature 'carrier'"),
    ("POST", "/v1/models/flights:predict", {"instances": [{**GOOD, "carier": "UA"}]}, 400,
     "unknown features ['carier']"),
    ("POST", "/v1/models/flights:predict", {"instances": [{**GOOD, "distance": "far"}]}, 400,
     "'distance' must be a number"),
    ("POST", "/v1/models/flights:predict", {"instances": [{**GOOD, "month": 1.5}]}, 400,
     "whole number"),
    ("POST", "/v1/models/flights:predict",
     {"signature_name": "serving_default", "instances": [{"b64": "%%%"}]}, 400, "base64"),
    ("POST", "/v1/models/flights:predict", {"instances": [{**GOOD, "year": 10**30}]}, 400,
     "instance 0: 'year' = 1000000000000000000000000000000 is outside int64"),
    ("POST", "/v1/models/flights:predict", {"instances": [GOOD, {**GOOD, "month": 13}]}, 400,
     "instance 1: 'month' = 13 is outside its domain"),
    ("POST", "/v1/models/flights:predict", {"instances": [{**GOOD, "temp": 1e300}]}, 400,
     "'temp' must be a finite float32"),
    ("POST", "/v1/models/flights:predict",
     {"signature_name": "serving_default",
      "instances": [{"b64": base64.b64encode(b"not an example").decode()}]}, 400,
     "instance 0: is not a serialized tf.Example"),
    ("POST", "/v1/models/flights:predict", {"signature_name": "nope", "instances": [GOOD]},
     400, "unknown signature_name"),
    ("POST", "/v1/models/other:predict", {"instances": [GOOD]}, 404, "/v1/models/flights"),
    ("GET", "/v1/models/other", None, 404, "no resource"),
])
def test_bad_requests_get_a_json_error(server, method, path, body, status, message):
    got_status, got = _request(server, method, path, body)
    assert got_status == status
    assert message in got["error"]
    # ... and the server keeps serving.
    ok, answer = _request(server, "POST", "/v1/models/flights:predict", {"instances": [GOOD]})
    assert ok == 200 and 0 < answer["predictions"][0] < 1


def _metrics(server) -> dict[str, float]:
    """The server's Prometheus samples, by name and labels as written."""
    connection = http.client.HTTPConnection(*server, timeout=60)
    connection.request("GET", "/monitoring/prometheus/metrics")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/plain; version=")
    text = response.read().decode()
    connection.close()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_count_requests_invalid_and_out_of_domain_values(server):
    before = _metrics(server)

    def delta(name):
        return _metrics(server).get(name, 0.0) - before.get(name, 0.0)

    # An unseen carrier is scored, and counted.
    status, body = _request(server, "POST", "/v1/models/flights:predict",
                            {"instances": [GOOD, {**GOOD, "carrier": "ZZ"}]})
    assert status == 200 and len(body["predictions"]) == 2
    status, body = _request(server, "POST", "/v1/models/flights:predict",
                            {"instances": [{**GOOD, "distance": "far"}]})
    assert status == 400 and "'distance'" in body["error"]
    ok = 'tft_serving_requests_total{signature="predict_raw",status="200"}'
    refused = 'tft_serving_requests_total{signature="predict_raw",status="400"}'
    assert delta(ok) == 1 and delta(refused) == 1
    assert delta('tft_serving_instances_total{signature="predict_raw",status="200"}') == 2
    assert delta('tft_serving_out_of_domain_values_total{feature="carrier"}') == 1
    assert delta('tft_serving_invalid_instances_total{feature="distance"}') == 1
    assert delta('tft_serving_request_latency_seconds_count{signature="predict_raw"}') == 2


def _eval_lines(path: str) -> bytes:
    """The header and the eval rows of a flights CSV, chosen by their split key
    from the raw text (the rows the run held out)."""
    with open(path, "rb") as f:
        header, lines = f.readline(), f.readlines()
    names = header.decode().strip().split(",")
    key_fields = [names.index(c) for c in get_dataset("flights").csv_format.key_columns]
    kept = []
    for line in lines:
        fields = line.decode().strip().split(",")
        if len(fields) != len(names):
            continue
        key = row_keys.KEY_SEPARATOR.join(fields[i] for i in key_fields)
        if row_keys.eval_mask(row_keys.row_keys([key]), 20)[0]:
            kept.append(line)
    return header + b"".join(kept)


def test_batch_predictions_equal_the_rest_api_on_every_eval_row(
        server, trained_model, flights_run, tmp_path):
    source = tmp_path / "eval.csv"
    source.write_bytes(_eval_lines(flights_run.train_input) + b"2013,1,1,not,a,flight\n")
    out = tmp_path / "predictions"
    result = run_cli("predict", "--model", trained_model.serving_dir, "--input", str(source),
                     "--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(glob.glob(str(out / "predictions-*.csv"))[0], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["row_key", "year", "month", "day", "carrier", "flight", "origin",
                             "probability"]
    rejected = [json.loads(line) for path in glob.glob(str(out / "rejected" / "*.jsonl"))
                for line in open(path)]
    assert "2013,1,1,not,a,flight" in [r["text"] for r in rejected
                                       if r["kind"] == "wrong_field_count"]
    lines = source.read_bytes().count(b"\n") - 1  # less the header
    assert len(rows) + len(rejected) == lines
    assert f"{len(rows):,} rows predicted, {len(rejected)} rejected" in result.stdout

    # The REST API, given the same rows with the features predict derived from
    # them (the windows over this file's own rows, the weather joined).
    dataset = get_dataset("flights")
    table = dataset.preparation().prepare_table(
        decoded_table(dataset.csv_decoder(), [str(source)]).table, layout.SERVING)
    instances = _instances(table)
    assert len(instances) == len(rows)
    rest = []
    for start in range(0, len(instances), 500):
        status, body = _request(server, "POST", "/v1/models/flights:predict",
                                {"instances": instances[start:start + 500]})
        assert status == 200
        rest += body["predictions"]
    keys = table.column(ROW_KEY).combine_chunks().flatten().to_pylist()
    by_key = dict(zip(keys, rest, strict=True))
    assert set(by_key) == {int(r["row_key"]) for r in rows}
    np.testing.assert_allclose([float(r["probability"]) for r in rows],
                               [by_key[int(r["row_key"])] for r in rows], rtol=0, atol=1e-6)
