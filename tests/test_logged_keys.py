"""The dataset's key columns in the request log: a key column the model does
not take (flights' ``flight``) is accepted, checked as its schema feature says,
never fed to the model, and logged after the model's features, so that a logged
row joins the pipeline's own row by key; a keyless model, and one that carries
no dataset, are unchanged.

The served model here is a tiny SavedModel with the two signatures ``serve``
calls (saved in a second), not a trained one: what is tested is what the
service does around the model."""

import base64
import csv
import glob
import os
import shutil

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import layout
from pipelines.datasets import load_directory, write_directory
from pipelines.decode import csv_decoder
from pipelines.decode.columns import CsvFormat, RejectedRow
from pipelines.decode.request_logs import LOG_COLUMNS, LOG_FORMAT, log_decoder, logged_schema
from pipelines.model.request_checks import InvalidInstance, RequestChecks
from pipelines.model.request_log import RequestLog
from pipelines.model.serve import PredictionService, RequestError
from pipelines.model.serving_metrics import OTHER_FEATURE, ServingMetrics
from pipelines.records.serving_info import PREDICT_RAW, SERVING_DEFAULT, ServingInfo

# A flights-like dataset: ``flight`` is required in the schema, as in flights',
# but no model input; ``origin`` has a hard domain; ``distance`` is a float key
# (odd for a key, but it checks that floats are typed too); ``arr_delay`` is
# neither a model input nor a key column.
SCHEMA = text_format.Parse("""
feature { name: "year" type: INT presence { min_fraction: 1.0 min_count: 1 }
          shape { dim { size: 1 } } }
feature { name: "carrier" type: BYTES presence { min_fraction: 1.0 min_count: 1 }
          shape { dim { size: 1 } } }
feature { name: "flight" type: INT int_domain { min: 1 }
          presence { min_fraction: 1.0 min_count: 1 } shape { dim { size: 1 } } }
feature { name: "origin" type: BYTES domain: "origin" presence { min_count: 1 }
          value_count { min: 1 max: 1 } annotation { tag: "reject_out_of_domain" } }
feature { name: "dep_delay" type: INT presence { min_count: 1 } value_count { min: 1 max: 1 } }
feature { name: "distance" type: FLOAT value_count { min: 1 max: 1 } }
feature { name: "arr_delay" type: INT value_count { min: 1 max: 1 } }
string_domain { name: "origin" value: "EWR" value: "JFK" value: "LGA" }
""", schema_pb2.Schema())
KEY_COLUMNS = ("year", "carrier", "flight", "origin", "distance")
# The model's inputs, as an export makes them: an optional integer is a float64.
SPECS = {"year": tf.TensorSpec([None], tf.int64), "carrier": tf.TensorSpec([None], tf.string),
         "dep_delay": tf.TensorSpec([None], tf.float64)}
REQUIRED = {"year", "carrier"}
MODEL_FEATURES = ["year", "carrier", "dep_delay"]  # the schema's order
LOGGED_KEYS = ["flight", "origin", "distance"]  # the key's order
KEYLESS_MESSAGE = "the model takes ['carrier', 'dep_delay', 'year']"

FULL = {"year": 2013, "carrier": "UA", "dep_delay": 2, "flight": 1545, "origin": "EWR",
        "distance": 1400.5}
BARE = {"year": 2013, "carrier": "UA", "dep_delay": 2}  # what a client sent before keys


def _checks(key_columns=KEY_COLUMNS) -> RequestChecks:
    return RequestChecks(SPECS, REQUIRED, SCHEMA, key_columns=key_columns)


# -- the request checks alone ----------------------------------------------------------------

def test_key_columns_the_model_does_not_take_are_typed_logged_and_never_tensors():
    checks = _checks()
    assert checks.names == [*MODEL_FEATURES, *LOGGED_KEYS]
    assert list(checks.features) == MODEL_FEATURES and list(checks.keys) == LOGGED_KEYS
    # A whole float is an integer, as for a model feature; left out or "" is missing.
    rows, outside = checks.rows([FULL, {**BARE, "flight": 1545.0, "origin": ""}, BARE])
    assert rows == [FULL, {**BARE, "flight": 1545, "origin": None, "distance": None},
                    {**BARE, "flight": None, "origin": None, "distance": None}]
    assert not outside
    assert sorted(checks.tensors(rows)) == sorted(MODEL_FEATURES)
    # A value outside a soft domain (flight 0; its int_domain starts at 1) is
    # taken and counted, as a model feature's is.
    _, outside = checks.rows([{**BARE, "flight": 0}])
    assert outside == {"flight": 1}


@pytest.mark.parametrize("value, feature, message", [
    ({"flight": "UA1545"}, "flight", "instance 0: 'flight' must be a number, got 'UA1545'"),
    ({"flight": 1545.5}, "flight", "instance 0: 'flight' must be a whole number, got 1545.5"),
    ({"flight": 2 ** 63}, "flight", f"instance 0: 'flight' = {2 ** 63} is outside int64"),
    ({"flight": True}, "flight", "instance 0: 'flight' must be a number, got True"),
    ({"origin": 7}, "origin", "instance 0: 'origin' must be a string, got 7"),
    ({"origin": "SFO"}, "origin", "instance 0: 'origin' = 'SFO' is outside its domain"),
    ({"distance": "far"}, "distance", "instance 0: 'distance' must be a number, got 'far'"),
    ({"distance": 1e39}, "distance", "instance 0: 'distance' must be a finite float32, got 1e+39"),
])
def test_a_key_column_of_the_wrong_type_or_outside_a_hard_domain_is_refused(value, feature,
                                                                             message):
    with pytest.raises(InvalidInstance) as raised:
        _checks().rows([{**BARE, **value}])
    assert (str(raised.value), raised.value.feature) == (message, feature)


def test_a_name_neither_an_input_nor_a_key_is_unknown_and_told_what_may_be_carried():
    with pytest.raises(InvalidInstance) as raised:
        _checks().rows([{**FULL, "arr_delay": 5}])
    assert str(raised.value) == (
        f"instance 0: has unknown features ['arr_delay']; {KEYLESS_MESSAGE}; a request may "
        f"also carry the key columns ['flight', 'origin', 'distance'], logged, not scored")
    assert raised.value.feature == "arr_delay"


def test_a_tf_example_s_key_columns_are_taken_for_the_log():
    example = tf.train.Example()
    features = example.features.feature
    features["year"].int64_list.value.append(2013)
    features["carrier"].bytes_list.value.append(b"UA")
    features["flight"].int64_list.value.append(1545)
    features["arr_delay"].int64_list.value.append(5)  # neither: left out, as parsing does
    rows, _ = _checks().example_rows([example.SerializeToString()])
    assert rows == [{"year": 2013, "carrier": "UA", "dep_delay": None, "flight": 1545,
                     "origin": None, "distance": None}]
    features["flight"].bytes_list.value.append(b"1545")  # a text: refused, naming it
    features["flight"].ClearField("int64_list")
    with pytest.raises(InvalidInstance, match="'flight' must be a number"):
        _checks().example_rows([example.SerializeToString()])


@pytest.mark.parametrize("key_columns", [(), ("year", "carrier")])
def test_without_key_columns_beyond_the_models_inputs_the_checks_are_unchanged(key_columns):
    checks = _checks(key_columns)
    assert checks.names == MODEL_FEATURES and checks.keys == {}
    with pytest.raises(InvalidInstance) as raised:
        checks.rows([FULL])
    assert str(raised.value) == (f"instance 0: has unknown features ['distance', 'flight', "
                                 f"'origin']; {KEYLESS_MESSAGE}")


def test_a_key_column_the_schema_does_not_declare_is_not_taken():
    # No schema (a model exported before it carried one): nothing to check a key against.
    checks = RequestChecks(SPECS, REQUIRED, None, key_columns=KEY_COLUMNS)
    assert checks.keys == {}


def test_metrics_label_a_key_column_by_its_name_and_anything_else_other():
    metrics = ServingMetrics(_checks().names)
    assert [metrics.feature_label(name) for name in ("flight", "year", "made_up", None)] == [
        "flight", "year", OTHER_FEATURE, "-"]


def test_a_log_never_carrying_a_required_key_reads_back_with_no_anomaly():
    header = [*MODEL_FEATURES, *LOGGED_KEYS, *LOG_COLUMNS]
    logged = logged_schema(SCHEMA, header)
    assert [f.name for f in logged.feature] == [
        "year", "carrier", "flight", "origin", "dep_delay", "distance"]
    flight = next(f for f in logged.feature if f.name == "flight")
    assert not flight.HasField("shape") and not flight.HasField("presence")
    batch = _batch({"year": [2013, 2013], "carrier": [b"UA", b"AA"], "flight": [None, None]})
    statistics = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
    # The model's required features and the required key: what the batch holds.
    carried = schema_pb2.Schema()
    carried.feature.extend(f for f in logged.feature if f.name in ("year", "carrier", "flight"))
    assert dict(tfdv.validate_statistics(statistics, carried).anomaly_info) == {}


def _batch(columns: dict) -> pa.RecordBatch:
    """Decoded rows' layout: a list of one value, or a null list when missing."""
    arrays = [pa.array([None if v is None else [v] for v in values],
                       pa.large_list(pa.large_binary() if isinstance(values[0], bytes)
                                     else pa.int64()))
              for values in columns.values()]
    return pa.RecordBatch.from_arrays(arrays, list(columns))


# -- a served model --------------------------------------------------------------------------

class _TinyModel(tf.Module):
    """A model of the signatures ``serve`` calls: its score depends on
    ``dep_delay`` alone, so a request with its key columns scores as without."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="year"),
                                  tf.TensorSpec([None], tf.string, name="carrier"),
                                  tf.TensorSpec([None], tf.float64, name="dep_delay")])
    def predict_raw(self, year, carrier, dep_delay):
        delay = tf.where(tf.math.is_nan(dep_delay), tf.zeros_like(dep_delay), dep_delay)
        return {"probability": tf.sigmoid(tf.cast(delay, tf.float32) / 10.0)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serving_default(self, examples):
        parsed = tf.io.parse_example(examples, {
            "dep_delay": tf.io.FixedLenFeature([], tf.int64, default_value=0)})
        return {"probability": tf.sigmoid(tf.cast(parsed["dep_delay"], tf.float32) / 10.0)}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """The tiny model's serving directory as exported from the keyed dataset,
    from a keyless one, and with no dataset at all (an old export)."""
    root = tmp_path_factory.mktemp("logged_keys")
    keyed = str(root / "keyed")
    model = _TinyModel()
    tf.saved_model.save(model, keyed, signatures={
        PREDICT_RAW: model.predict_raw.get_concrete_function(),
        SERVING_DEFAULT: model.serving_default.get_concrete_function()})
    ServingInfo(dataset="tiny", signatures=[SERVING_DEFAULT, PREDICT_RAW],
                required_features=["year", "carrier"], optional_features=["dep_delay"],
                output="probability").write(keyed)
    write_directory(layout.serving_dataset_dir(keyed), "tiny",
                    CsvFormat(key_columns=KEY_COLUMNS), SCHEMA, "")
    keyless, old = str(root / "keyless"), str(root / "old")
    shutil.copytree(keyed, keyless)
    write_directory(layout.serving_dataset_dir(keyless), "tiny", CsvFormat(), SCHEMA, "")
    shutil.copytree(keyed, old)
    shutil.rmtree(layout.serving_dataset_dir(old))
    assert load_directory(layout.serving_dataset_dir(keyless)).csv_format.key_columns == ()
    return {"keyed": keyed, "keyless": keyless, "old": old}


class _Recorded:
    """A ``RawSignature`` that records the names of the features of each call."""

    def __init__(self, signature):
        self._signature, self.fed = signature, []

    def __getattr__(self, name):
        return getattr(self._signature, name)

    def __call__(self, tensors: dict) -> dict:
        self.fed.append(sorted(tensors))
        return self._signature(tensors)


def _served(model_dir: str) -> tuple[PredictionService, list[list[str]]]:
    """The service, and the names of the features each call of its model got."""
    service = PredictionService(model_dir)
    service._predict_raw = _Recorded(service._predict_raw)
    return service, service._predict_raw.fed


def _logged(service: PredictionService, log_dir: str, requests: list[dict]) -> list[list[str]]:
    """Answers ``requests`` with a request log on; the log's one shard, as CSV lines."""
    service.log = RequestLog(log_dir, service.checks.names, 1.0)
    try:
        for request in requests:
            service.predict(request)
    finally:
        service.log.close()
    (shard,) = glob.glob(os.path.join(log_dir, "*.csv"))
    with open(shard, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _read_back(log_dir: str) -> list[dict]:
    """The log's rows as ``validate`` decodes them: by its decoder of request
    logs, for the logged schema of the log's own header."""
    (shard,) = glob.glob(os.path.join(log_dir, "*.csv"))
    with open(shard, "rb") as stream:
        header = csv_decoder.header_names(stream, LOG_FORMAT)
    decoder = log_decoder(logged_schema(SCHEMA, header)).for_serving()
    names = [n for n in header if n not in LOG_COLUMNS]
    rows = []
    with open(shard, "rb") as stream:
        for item in decoder.decode(stream, shard):
            assert not isinstance(item, RejectedRow), item
            columns = {n: item.column(n).to_pylist() for n in names}
            rows += [{n: None if columns[n][i] is None else columns[n][i][0] for n in names}
                     for i in range(item.num_rows)]
    return rows


def _example(**values) -> dict:
    example = tf.train.Example()
    for name, value in values.items():
        if isinstance(value, str):
            example.features.feature[name].bytes_list.value.append(value.encode())
        else:
            example.features.feature[name].int64_list.value.append(value)
    return {"b64": base64.b64encode(example.SerializeToString()).decode()}


def test_a_served_model_logs_its_key_columns_after_its_features_and_never_feeds_them(
        models, tmp_path):
    service, fed = _served(models["keyed"])
    log_dir = str(tmp_path / "log")
    lines = _logged(service, log_dir, [
        {"instances": [FULL, BARE]},
        {"signature_name": SERVING_DEFAULT,
         "instances": [_example(year=2013, carrier="AA", dep_delay=2, flight=11)]},
    ])
    assert fed == [sorted(MODEL_FEATURES)]  # predict_raw, once; serving_default parses itself
    header, *rows = lines
    assert header == [*MODEL_FEATURES, *LOGGED_KEYS, *LOG_COLUMNS]
    assert [row[:len(header) - len(LOG_COLUMNS)] for row in rows] == [
        ["2013", "UA", "2", "1545", "EWR", "1400.5"],
        ["2013", "UA", "2", "", "", ""],
        ["2013", "AA", "2", "11", "", ""]]
    # The keys change no score: the same delay, the same prediction.
    assert len({row[header.index(LOG_COLUMNS[0])] for row in rows}) == 1
    # validate's decoder reads every row, typed as the schema says, and the
    # missing keys as missing, not as rows lacking a required value.
    assert _read_back(log_dir) == [
        {"year": 2013, "carrier": b"UA", "dep_delay": 2, "flight": 1545, "origin": b"EWR",
         "distance": 1400.5},
        {"year": 2013, "carrier": b"UA", "dep_delay": 2, "flight": None, "origin": None,
         "distance": None},
        {"year": 2013, "carrier": b"AA", "dep_delay": 2, "flight": 11, "origin": None,
         "distance": None}]


def test_a_served_model_refuses_a_key_of_the_wrong_type_with_a_400_naming_it(models):
    service, fed = _served(models["keyed"])
    with pytest.raises(RequestError) as raised:
        service.predict({"instances": [BARE, {**BARE, "flight": "UA1545"}]})
    assert (raised.value.status, str(raised.value)) == (
        400, "instance 1: 'flight' must be a number, got 'UA1545'")
    assert fed == []
    assert b'tft_serving_invalid_instances_total{feature="flight"} 1.0' in service.metrics.text()


def test_the_metadata_names_the_key_columns_and_those_that_are_no_model_input(models):
    service, _ = _served(models["keyed"])
    metadata = service.metadata()
    assert metadata["key_columns"] == {
        "names": list(KEY_COLUMNS),
        "not_model_inputs": {"flight": {"dtype": "int64", "required": False},
                             "origin": {"dtype": "string", "required": False},
                             "distance": {"dtype": "float32", "required": False}}}
    assert sorted(metadata["signatures"][PREDICT_RAW]) == sorted(MODEL_FEATURES)


@pytest.mark.parametrize("model", ["keyless", "old"])
def test_a_keyless_or_old_model_is_served_and_logged_as_before(models, model, tmp_path):
    service, fed = _served(models[model])
    # Without a schema (an old export) the features are in the order of their
    # names, and an optional integer is a float: as before.
    features, delay = (MODEL_FEATURES, "2") if model == "keyless" else (
        sorted(MODEL_FEATURES), "2.0")
    assert service.checks.names == features
    assert "key_columns" not in service.metadata()
    assert service.metadata()["signatures"][PREDICT_RAW]["dep_delay"] == {
        "dtype": "float64", "required": False, "signature_input": "dep_delay"}
    with pytest.raises(RequestError) as raised:
        service.predict({"instances": [{**BARE, "flight": 1545}]})
    assert str(raised.value) == f"instance 0: has unknown features ['flight']; {KEYLESS_MESSAGE}"
    header, row = _logged(service, str(tmp_path / "log"), [{"instances": [BARE]}])
    assert header == [*features, *LOG_COLUMNS]
    assert dict(zip(features, row, strict=False)) == {"year": "2013", "carrier": "UA",
                                                      "dep_delay": delay}
    assert fed == [sorted(MODEL_FEATURES)]
    assert np.isfinite(float(row[len(features)]))
