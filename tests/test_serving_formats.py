"""Serving data whose values are written another way than the dataset's
column formats (``dataset.json``'s ``column_formats``) is rejected with its
reason by ``run``, ``validate`` and ``predict`` and answered 400 by ``serve``,
never scored; a value written as the CSV writes it is read the same way by all
four (issue 29).

The dataset is generated here: a ``;``-delimited file with a day-first date
column (``%d/%m/%Y``) and a decimal-comma column, which ``init`` detects. Its
serving file writes four dates as ``2013-03-02`` and one amount with a decimal
point. ``init``, ``run`` and an export happen once for the module; the model is
the real wide-and-deep network, exported untrained (the tests are about which
rows are scored and how their values are read, not how well), so no training
is spent.
"""

import datetime
import glob
import http.client
import json
import os
import threading

import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets
from pipelines.model import export_serving, wide_and_deep
from pipelines.model.request_checks import InvalidInstance, RequestChecks
from pipelines.model.serve import PredictionService, http_server
from pipelines.reports.run_dir import RunDir
from tests.conftest import run_cli

HEADER = "when;amount;city"
TRAIN_ROWS, SERVING_ROWS = 120, 30
# Serving rows (0-based, after the header) written another way, and how.
ISO_DATES = (3, 9, 15, 21)
DECIMAL_POINT = 27
REJECTED_LINES = [*(k + 2 for k in ISO_DATES), DECIMAL_POINT + 2]  # 1-based, after the header


def _day_month(i: int) -> tuple[int, int]:
    return i % 28 + 1, i % 12 + 1


def _row(i: int) -> list[str]:
    day, month = _day_month(i)
    return [f"{day:02d}/{month:02d}/2013", f"{i % 50},{i % 10}", ("oslo", "rome", "lima")[i % 3]]


def _seconds(i: int) -> int:
    """Row ``i``'s date as the decoder reads it: seconds since 1970, UTC."""
    day, month = _day_month(i)
    return int(datetime.datetime(2013, month, day, tzinfo=datetime.UTC).timestamp())


def _serving_row(k: int) -> list[str]:
    row = _row(1000 + k)
    if k in ISO_DATES:
        day, month = _day_month(1000 + k)
        row[0] = f"2013-{month:02d}-{day:02d}"
    if k == DECIMAL_POINT:
        row[1] = row[1].replace(",", ".")
    return row


def _expected_rejections(source: str) -> list[tuple]:
    reasons = []
    for k in ISO_DATES:
        reasons.append((source, k + 2, "unparsable",
                        f"when: cannot read b'{_serving_row(k)[0]}' as a date %d/%m/%Y"))
    reasons.append((source, DECIMAL_POINT + 2, "unparsable",
                    f"amount: cannot read b'{_serving_row(DECIMAL_POINT)[1]}' as a number "
                    f"with a decimal comma"))
    return reasons


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _rejected(directory: str) -> list[tuple]:
    rows = []
    for path in sorted(glob.glob(os.path.join(directory, "rejected", "*.jsonl"))):
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    return sorted((r["source"], r["line"], r["kind"], r["reason"]) for r in rows)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """``init`` and ``run`` (with a permissive ``--max_rejected_fraction``) of
    the generated dataset; its serving model, exported untrained."""
    root = tmp_path_factory.mktemp("formats")
    train, serving = root / "train.csv", root / "serving.csv"
    train.write_text("\n".join([HEADER + ";label"] + [
        ";".join([*_row(i), str(i % 2)]) for i in range(TRAIN_ROWS)]) + "\n")
    serving.write_text("\n".join([HEADER] + [
        ";".join(_serving_row(k)) for k in range(SERVING_ROWS)]) + "\n")
    directory, out = str(root / "ds"), str(root / "run")
    _ok(run_cli("init", "--train_input", str(train), "--dir", directory, "--label", "label"))
    _ok(run_cli("run", "--dataset", directory, "--train_input", str(train),
                "--serving_input", str(serving), "--output_dir", out,
                "--max_rejected_fraction", "0.2"))
    run = RunDir(out)
    schema = run.tft_output.transformed_metadata.schema
    model = wide_and_deep.build_wide_and_deep(schema, "label", seed=0)
    serving_dir = export_serving.export_serving_model(
        str(root / "model" / "serving"), run.tft_output, run.dataset, model)
    with open(os.path.join(out, "run_summary.json")) as f:
        summary = json.load(f)
    return {"root": root, "dir": directory, "out": out, "serving": str(serving),
            "summary": summary, "model": serving_dir}


@pytest.mark.slow
def test_init_detects_the_formats_and_run_rejects_the_rows_written_another_way(ran):
    with open(os.path.join(ran["dir"], datasets.DATASET_FILE)) as f:
        csv_format = json.load(f)["csv_format"]
    assert csv_format["delimiter"] == ";"
    assert csv_format["column_formats"] == {"when": "%d/%m/%Y", "amount": "decimal_comma"}
    rows = ran["summary"]["rows"]
    assert rows["serving"] == SERVING_ROWS - len(REJECTED_LINES)
    assert rows["rejected"] == len(REJECTED_LINES)
    assert rows["read"] == TRAIN_ROWS + SERVING_ROWS == (
        rows["train"] + rows["eval"] + rows["serving"] + rows["rejected"])
    assert ran["summary"]["rejected_by_reason"] == {"unparsable": len(REJECTED_LINES)}
    assert _rejected(ran["out"]) == _expected_rejections(ran["serving"])


@pytest.mark.slow
def test_validate_fails_the_span_naming_the_first_rejection(ran):
    result = run_cli("validate", "--run_dir", ran["out"], "--serving_input", ran["serving"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    first = _serving_row(ISO_DATES[0])[0]
    assert message.startswith("error: span ")
    assert (f"failed: 5 of {SERVING_ROWS} rows rejected (16.67%): unparsable 5, e.g. "
            f"serving.csv line {REJECTED_LINES[0]}: when: cannot read b'{first}' as a date "
            f"%d/%m/%Y; they are in ") in message
    assert "more than --max_rejected_fraction 0.001 allows" in message
    [validation] = glob.glob(os.path.join(ran["out"], "validations", "*"))
    assert _rejected(validation) == _expected_rejections(ran["serving"])


def _predicted(ran) -> dict[int, tuple[int, float]]:
    """``predict`` of the serving file: serving line -> (its date as the model
    read it, the score). The rejected rows are checked on the way."""
    out = str(ran["root"] / "predictions")
    if not os.path.exists(out):
        stdout = _ok(run_cli("predict", "--model", ran["model"], "--input", ran["serving"],
                             "--output_dir", out, "--passthrough", "when"))
        assert (f"{SERVING_ROWS - 5} rows predicted, 5 rejected (rows in {SERVING_ROWS})"
                in stdout)
    assert _rejected(out) == _expected_rejections(ran["serving"])
    scored = {}
    for path in glob.glob(os.path.join(out, "predictions-*.csv")):
        with open(path) as f:
            header = f.readline().strip().split(",")
            assert header == ["row_key", "when", "input_file", "input_line", "probability"]
            for line in f:
                _, when, _, input_line, probability = line.strip().split(",")
                scored[int(input_line)] = (int(when), float(probability))
    return scored


@pytest.mark.slow
def test_predict_rejects_the_rows_written_another_way_and_scores_the_others(ran):
    scored = _predicted(ran)
    kept = [k for k in range(SERVING_ROWS) if k + 2 not in REJECTED_LINES]
    assert sorted(scored) == [k + 2 for k in kept]
    # The decimal-point row's date is fine: it is rejected for its amount alone.
    assert {line: when for line, (when, _) in scored.items()} == {
        k + 2: _seconds(1000 + k) for k in kept}


@pytest.fixture(scope="module")
def server(ran):
    service = PredictionService(ran["model"])
    http = http_server(service)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield http.server_address
    http.shutdown()
    http.server_close()


def _post(address, body) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(*address, timeout=60)
    connection.request("POST", "/v1/models/ds:predict", body=json.dumps(body).encode())
    response = connection.getresponse()
    status, data = response.status, json.loads(response.read())
    connection.close()
    return status, data


@pytest.mark.slow
def test_rest_reads_the_csv_way_of_writing_as_predict_does(ran, server):
    scored = _predicted(ran)
    lines = sorted(scored)[:4]
    rows = [dict(zip(HEADER.split(";"), _serving_row(line - 2), strict=True)) for line in lines]
    status, answer = _post(server, {"instances": rows})
    assert status == 200
    expected = [scored[line][1] for line in lines]
    assert answer["predictions"] == pytest.approx(expected, abs=1e-6)
    # Already converted (seconds, a number), the same instances score the same.
    converted = [{**row, "when": scored[line][0],
                  "amount": float(row["amount"].replace(",", "."))}
                 for row, line in zip(rows, lines, strict=True)]
    status, again = _post(server, {"instances": converted})
    assert status == 200 and again["predictions"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_rest_answers_400_to_a_value_written_another_way(ran, server):
    good = dict(zip(HEADER.split(";"), _serving_row(0), strict=True))
    for feature, value, format_named in (("when", "2013-03-02", "a date %d/%m/%Y"),
                                         ("amount", "12.5", "a number with a decimal comma")):
        status, answer = _post(server, {"instances": [good, {**good, feature: value}]})
        assert (status, answer) == (400, {"error": f"instance 1: {feature!r}: cannot read "
                                                   f"{value!r} as {format_named}"})
    connection = http.client.HTTPConnection(*server, timeout=60)
    connection.request("GET", "/v1/models/ds/metadata")
    metadata = json.loads(connection.getresponse().read())
    connection.close()
    inputs = metadata["signatures"]["predict_raw"]
    assert {name: inputs[name].get("format") for name in inputs} == {
        "when": "%d/%m/%Y", "amount": "decimal_comma", "city": None}


# -- the request checks alone, without a model -----------------------------------------------

def _checks() -> RequestChecks:
    schema = schema_pb2.Schema()
    for name, kind in (("when", schema_pb2.INT), ("at", schema_pb2.INT),
                       ("amount", schema_pb2.FLOAT), ("city", schema_pb2.BYTES)):
        schema.feature.add(name=name, type=kind)
    specs = {"when": tf.TensorSpec([None], tf.int64), "at": tf.TensorSpec([None], tf.float32),
             "amount": tf.TensorSpec([None], tf.float32),
             "city": tf.TensorSpec([None], tf.string)}
    return RequestChecks(specs, {"when"}, schema, {
        "when": "%d/%m/%Y %H:%M", "at": "iso8601", "amount": "decimal_comma"})


def test_request_checks_convert_a_formatted_string_as_the_decoder_does():
    rows, _ = _checks().rows([
        {"when": "31/01/2013 05:30", "at": "2013-01-31T05:30:00+02:00", "amount": "-0,25",
         "city": "oslo"},
        {"when": 1359610200, "at": "", "amount": 12.5},  # converted already; missing
    ])
    # 2013-01-31 05:30 UTC, and 05:30 at +02:00 (03:30 UTC), in seconds since 1970.
    assert rows == [{"when": 1359610200, "at": 1359603000, "amount": -0.25, "city": "oslo"},
                    {"when": 1359610200, "at": None, "amount": 12.5, "city": None}]


@pytest.mark.parametrize("instance, feature, message", [
    ({"when": "2013-01-31"}, "when",
     "instance 0: 'when': cannot read '2013-01-31' as a date %d/%m/%Y %H:%M"),
    ({"when": "31/01/2013 05:30", "at": "2013-01-31 05:30"}, "at",
     "instance 0: 'at': cannot read '2013-01-31 05:30' as an ISO 8601 time with a zone"),
    ({"when": "31/01/2013 05:30", "amount": "1.234,5"}, "amount",
     "instance 0: 'amount': cannot read '1.234,5' as a number with a decimal comma"),
    ({"when": "\ud800"}, "when",  # a lone surrogate: no UTF-8, so no date
     "instance 0: 'when': cannot read '\\ud800' as a date %d/%m/%Y %H:%M"),
    ({"when": True}, "when",
     "instance 0: 'when' must be a number or a string of a date %d/%m/%Y %H:%M, got True"),
])
def test_request_checks_refuse_a_string_the_format_does_not_read(instance, feature, message):
    with pytest.raises(InvalidInstance) as raised:
        _checks().rows([instance])
    assert (str(raised.value), raised.value.feature) == (message, feature)


def test_a_tf_example_holds_converted_values_and_its_text_is_not_read_as_a_format():
    example = tf.train.Example()
    example.features.feature["when"].bytes_list.value.append(b"31/01/2013 05:30")
    with pytest.raises(InvalidInstance, match="'when' must be a number"):
        _checks().example_rows([example.SerializeToString()])
