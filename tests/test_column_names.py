"""Every column name works end to end: a CSV whose columns are called
``1stFlrSF``, ``home.dest``, ``mean radius``, ``fare-paid``, ``größe`` and
``class`` goes through the zero-code ``init``, ``run``, ``train``, ``serve``
(REST, by the CSV's names), its request log, ``predict`` and ``check-parity``.

A signature's inputs are Python keyword arguments, so TensorFlow renames most
of these names and refuses ``class``; the serving model takes them under input
names of its own (``export_serving.signature_input_names``) and every entry
point calls it by the CSV's names. The data is scikit-learn's breast-cancer
table (shipped with the package: no network), a few of its columns renamed,
two of them whole numbers, two with missing values, and a text column derived
from another. init, run and train happen once for the module (about 50 s, so
the tests that use them are marked slow).
"""

import csv
import glob
import http.client
import json
import os
import shutil
import threading

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode.request_logs import LOG_COLUMNS
from pipelines.model.export_serving import signature_input_names
from pipelines.model.request_checks import InvalidInstance, RequestChecks
from pipelines.model.request_log import RequestLog
from pipelines.model.serve import PredictionService, http_server
from pipelines.records.serving_info import ServingInfo
from tests.conftest import run_cli

LABEL = "diagnosis"
# The CSV's columns: name -> (the breast-cancer column it holds, a whole number?).
NUMBERS = {
    "1stFlrSF": ("mean area", True),  # digits first; required
    "mean radius": ("mean radius", False),  # a space
    "fare-paid": ("worst area", False),  # a dash; missing in every 9th row
    "größe": ("mean smoothness", False),  # not ASCII
    "class": ("mean perimeter", True),  # a keyword; whole numbers missing in every 11th row
}
TEXT = "home.dest"  # a dot: the texture's tercile as text
FEATURES = [*NUMBERS, TEXT]
# What the raw-feature signatures call them (the export's rule, documented).
SIGNATURE_INPUTS = {"1stFlrSF": "arg_1stFlrSF", "mean radius": "mean_radius",
                    "fare-paid": "fare_paid", "größe": "gr_e", "class": "class_",
                    "home.dest": "home_dest"}
OPTIONAL = {"fare-paid", "class"}
ROWS = 569


def _rows() -> list[dict]:
    """The breast-cancer rows under the CSV's names; None where a value is missing."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    column = {name: i for i, name in enumerate(data.feature_names)}
    terciles = np.quantile(data.data[:, column["mean texture"]], [1 / 3, 2 / 3])
    rows = []
    for i, values in enumerate(data.data):
        row = {}
        for name, (source, whole) in NUMBERS.items():
            value = float(values[column[source]])
            row[name] = int(round(value)) if whole else value
        row["fare-paid"] = None if i % 9 == 0 else row["fare-paid"]
        row["class"] = None if i % 11 == 0 else row["class"]
        row[TEXT] = ("smooth", "grainy", "rough")[int(np.searchsorted(
            terciles, values[column["mean texture"]]))]
        row[LABEL] = int(data.target[i])
        rows.append(row)
    return rows


def _write_csv(path: str, rows: list[dict], columns: list[str], extra_lines=()) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else repr(row[c]) if isinstance(row[c], float)
                             else row[c] for c in columns])
        f.writelines(extra_lines)


def _ok(result) -> str:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def named(tmp_path_factory) -> dict:
    """init, run and train (2 epochs) once; the paths and the rows."""
    root = tmp_path_factory.mktemp("column_names")
    rows = _rows()
    data = str(root / "data.csv")
    _write_csv(data, rows, [*FEATURES, LABEL])
    dataset, out, model = str(root / "named"), str(root / "run"), str(root / "model")
    _ok(run_cli("init", "--train_input", data, "--dir", dataset, "--label", LABEL))
    _ok(run_cli("run", "--dataset", dataset, "--train_input", data, "--output_dir", out))
    _ok(run_cli("train", "--run_dir", out, "--model_dir", model, "--epochs", "2"))
    return {"root": root, "rows": rows, "data": data, "out": out,
            "serving": os.path.join(model, "serving")}


@pytest.fixture(scope="module")
def server(named):
    """The REST API in this process, on a free port: yields (service, address)."""
    service = PredictionService(named["serving"])
    http = http_server(service)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield service, http.server_address
    http.shutdown()
    http.server_close()


def _request(address, method: str, path: str, body=None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection(*address, timeout=60)
    connection.request(method, path, body=None if body is None else json.dumps(body).encode())
    response = connection.getresponse()
    status, data = response.status, json.loads(response.read())
    connection.close()
    return status, data


def _instances(rows: list[dict]) -> list[dict]:
    """Rows as a JSON client sends them: no label, missing values left out."""
    return [{n: row[n] for n in FEATURES if row[n] is not None} for row in rows]


def _examples(rows: list[dict]) -> tf.Tensor:
    """Rows as serialized tf.Examples, keyed by the CSV's names."""
    serialized = []
    for row in rows:
        features = {}
        for name in FEATURES:
            value = row[name]
            if value is None:
                continue
            if isinstance(value, str):
                features[name] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[value.encode()]))
            elif isinstance(value, int):
                features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            else:
                features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        serialized.append(tf.train.Example(features=tf.train.Features(
            feature=features)).SerializeToString())
    return tf.constant(serialized)


def _served_by_examples(named, rows: list[dict]) -> np.ndarray:
    loaded = tf.saved_model.load(named["serving"])
    return loaded.signatures["serving_default"](examples=_examples(rows))["probability"].numpy()


# -- the names themselves, without a model ---------------------------------------------------

def test_signature_input_names_are_identifiers_unique_and_kept_when_they_can_be():
    features = ["home.dest", "home_dest", "class", "x y", "x-y", "_private", "ok", "größe"]
    names = signature_input_names(features)
    assert names == {"home.dest": "home_dest_2", "home_dest": "home_dest", "class": "class_",
                     "x y": "x_y", "x-y": "x_y_2", "_private": "arg__private", "ok": "ok",
                     "größe": "gr_e"}
    assert signature_input_names(FEATURES) == SIGNATURE_INPUTS


def test_an_integer_input_that_is_left_out_is_refused_not_turned_into_nan():
    # An int64 tensor cannot hold a missing value: the feature is required
    # even when the caller's list of required features misses it.
    checks = RequestChecks({"3SsnPorch": tf.TensorSpec([None], tf.int64),
                            "fare-paid": tf.TensorSpec([None], tf.float32)}, set(), None)
    with pytest.raises(InvalidInstance, match="lacks the required feature '3SsnPorch'"):
        checks.rows([{"fare-paid": 1.5}])
    rows, _ = checks.rows([{"3SsnPorch": 3}])
    assert np.isnan(checks.tensors(rows)["fare-paid"].numpy()[0])


def test_an_optional_integer_travels_exactly_up_to_2_53():
    # An optional integer is a float64 tensor (NaN: missing): an 11-digit census
    # tract is carried exactly (float32 would round it to a multiple of 2,048).
    schema = text_format.Parse('feature { name: "tract" type: INT }', schema_pb2.Schema())
    checks = RequestChecks({"tract": tf.TensorSpec([None], tf.float64)}, set(), schema)
    rows, _ = checks.rows([{"tract": 17031081500}, {"tract": None}])
    values = checks.tensors(rows)["tract"].numpy()
    assert values[0] == 17031081500 and np.isnan(values[1])
    with pytest.raises(InvalidInstance, match=r"'tract' = 9007199254740993 is beyond 2\*\*53"):
        checks.rows([{"tract": 2 ** 53 + 1}])


# -- the exported model ----------------------------------------------------------------------

@pytest.mark.slow
def test_the_model_records_its_signature_input_names(named):
    info = ServingInfo.read(named["serving"])
    assert info.signature_inputs == SIGNATURE_INPUTS
    assert set(info.optional_features) == OPTIONAL
    loaded = tf.saved_model.load(named["serving"])
    assert set(loaded.signatures["predict_raw"].structured_input_signature[1]) == set(
        SIGNATURE_INPUTS.values())


@pytest.mark.slow
def test_a_savedmodel_user_gets_the_same_scores_by_every_entry(named):
    """serving_default by the CSV's names in tf.Examples, the module's
    predict_raw by them in a dict, the predict_raw signature by its inputs."""
    rows = named["rows"][:60]
    expected = _served_by_examples(named, rows)
    loaded = tf.saved_model.load(named["serving"])
    signature = loaded.signatures["predict_raw"]
    specs = signature.structured_input_signature[1]
    tensors = {}
    for name in FEATURES:
        dtype = specs[SIGNATURE_INPUTS[name]].dtype
        missing = "" if dtype == tf.string else np.nan
        tensors[name] = tf.constant([missing if row[name] is None else row[name]
                                     for row in rows], dtype)
    by_names = loaded.predict_raw(tensors)["probability"].numpy()
    by_inputs = signature(**{SIGNATURE_INPUTS[n]: t for n, t in tensors.items()})
    np.testing.assert_allclose(by_names, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(by_inputs["probability"].numpy(), expected, rtol=0, atol=1e-6)


# -- serve -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_metadata_lists_the_csvs_names(server):
    status, body = _request(server[1], "GET", "/v1/models/named/metadata")
    assert status == 200
    features = body["signatures"]["predict_raw"]
    assert set(features) == set(FEATURES)
    assert {n: f["signature_input"] for n, f in features.items()} == SIGNATURE_INPUTS
    assert {n for n, f in features.items() if not f["required"]} == OPTIONAL


@pytest.mark.slow
def test_rest_takes_the_csvs_names_as_instances_and_as_inputs(server, named):
    rows = named["rows"][:100]
    instances = _instances(rows)
    assert any("fare-paid" not in i for i in instances) and any("class" not in i
                                                                for i in instances)
    expected = _served_by_examples(named, rows)
    status, body = _request(server[1], "POST", "/v1/models/named:predict",
                            {"instances": instances})
    assert status == 200, body
    np.testing.assert_allclose(body["predictions"], expected, rtol=0, atol=1e-6)
    columns = {n: [row[n] for row in rows] for n in FEATURES}
    status, body = _request(server[1], "POST", "/v1/models/named:predict", {"inputs": columns})
    assert status == 200, body
    np.testing.assert_allclose(body["predictions"], expected, rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("left_out, status, message", [
    ("fare-paid", 200, None),  # optional: imputed as in training
    ("class", 200, None),  # optional whole numbers
    ("1stFlrSF", 400, "instance 0: lacks the required feature '1stFlrSF'"),
    ("home.dest", 400, "instance 0: lacks the required feature 'home.dest'"),
])
def test_a_feature_left_out_is_imputed_or_named_never_a_500(server, named, left_out, status,
                                                             message):
    row = dict(named["rows"][1])
    assert row[left_out] is not None
    instance = {k: v for k, v in _instances([row])[0].items() if k != left_out}
    answered, body = _request(server[1], "POST", "/v1/models/named:predict",
                              {"instances": [instance]})
    assert answered == status, body
    if status == 200:
        row[left_out] = None
        np.testing.assert_allclose(body["predictions"], _served_by_examples(named, [row]),
                                   rtol=0, atol=1e-6)
    else:
        assert body["error"] == message


@pytest.mark.slow
def test_the_signatures_own_input_names_are_unknown_features(server, named):
    instance = _instances(named["rows"][1:2])[0]
    instance["arg_1stFlrSF"] = instance.pop("1stFlrSF")
    status, body = _request(server[1], "POST", "/v1/models/named:predict",
                            {"instances": [instance]})
    assert status == 400
    assert body["error"].startswith("instance 0: has unknown features ['arg_1stFlrSF']")


@pytest.mark.slow
def test_the_request_log_uses_the_csvs_names_and_validates(server, named):
    service, address = server
    log_dir = str(named["root"] / "logs")
    service.log = RequestLog(log_dir, service.checks.names, 1.0)
    rows = named["rows"][200:260]
    try:
        status, _ = _request(address, "POST", "/v1/models/named:predict",
                             {"instances": _instances(rows)})
    finally:
        service.log, log = None, service.log
        log.close()  # writes what is queued and completes the shard
    assert status == 200
    (shard,) = glob.glob(os.path.join(log_dir, "*.csv"))
    with open(shard, newline="", encoding="utf-8") as f:
        header, *logged = list(csv.reader(f))
    assert header == [*FEATURES, *LOG_COLUMNS]  # the schema's order: the CSV's
    expected = [["" if row[n] is None else repr(row[n]) if isinstance(row[n], float)
                 else str(row[n]) for n in FEATURES] for row in rows]
    assert [line[:len(FEATURES)] for line in logged] == expected
    stdout = _ok(run_cli("validate", "--run_dir", named["out"], "--serving_input", shard,
                         "--span", "log"))
    assert f"span log: {len(rows):,} rows, 0 rejected" in stdout


# -- predict and check-parity ----------------------------------------------------------------

@pytest.mark.slow
def test_predict_scores_every_row_by_the_csvs_names(named):
    requests = str(named["root"] / "requests.csv")
    bad = "not-a-number,1.0,2.0,0.1,100,smooth\n"  # 1stFlrSF is a whole number
    _write_csv(requests, named["rows"], FEATURES, extra_lines=[bad])
    out = str(named["root"] / "predictions")
    stdout = _ok(run_cli("predict", "--model", named["serving"], "--input", requests,
                         "--output_dir", out))
    assert f"{ROWS:,} rows predicted, 1 rejected (rows in {ROWS + 1:,})" in stdout
    lines = []
    for path in glob.glob(os.path.join(out, "predictions-*.csv")):
        with open(path, newline="") as f:
            lines += list(csv.DictReader(f))
    assert len(lines) == ROWS and len({line["row_key"] for line in lines}) == ROWS
    scored = sorted(float(line["probability"]) for line in lines)
    np.testing.assert_allclose(scored, np.sort(_served_by_examples(named, named["rows"])),
                               rtol=0, atol=1e-6)


@pytest.mark.slow
def test_check_parity_goes_through_the_raw_signature_by_the_csvs_names(named):
    stdout = _ok(run_cli("check-parity", "--run_dir", named["out"], "--model",
                         named["serving"], "--n", "1000"))
    first, second = stdout.splitlines()[:2]
    assert first.startswith("compared ") and first.endswith(": 0 mismatches")
    assert second == "  through transform_features and transform_raw"


@pytest.mark.slow
def test_check_parity_fails_a_model_whose_inputs_are_swapped_or_unrecorded(named, tmp_path):
    model = str(tmp_path / "serving")
    shutil.copytree(named["serving"], model)
    info_path = os.path.join(model, "assets.extra", "serving_info.json")
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    swapped = dict(info["signature_inputs"])
    swapped["mean radius"], swapped["größe"] = swapped["größe"], swapped["mean radius"]
    with open(info_path, "w", encoding="utf-8") as f:
        json.dump({**info, "signature_inputs": swapped}, f)
    result = run_cli("check-parity", "--run_dir", named["out"], "--model", model)
    assert result.returncode == 1
    assert "transform_raw" in result.stdout and "mismatches" in result.stdout
    assert ": 0 mismatches" not in result.stdout.splitlines()[0]

    del info["signature_inputs"]  # as if TensorFlow had renamed them unrecorded
    with open(info_path, "w", encoding="utf-8") as f:
        json.dump(info, f)
    result = run_cli("check-parity", "--run_dir", named["out"], "--model", model)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "does not take the features its serving_info.json names" in result.stderr
