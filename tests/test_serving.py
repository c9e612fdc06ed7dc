"""The serving side: training on the pipeline's output, the hermetic serving
SavedModel and its signatures, and train/serve parity."""

import csv
import gzip
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from pipelines import datasets
from pipelines.decode.row_keys import ROW_KEY
from tests.conftest import raw_rows, run_cli
from transforms import flights

# Every test here reads a full pipeline run (or a trained model) of its own.
pytestmark = pytest.mark.slow

MODEL_FEATURES = set(flights.OUTPUT_KEYS) - {flights.LABEL_KEY}


def test_training_beats_the_majority_class_baseline(trained_model):
    metrics = trained_model.metrics
    assert metrics["eval"]["accuracy"] > metrics["baseline"]["accuracy"]
    assert metrics["eval"]["auc"] > 0.75
    assert metrics["train_rows"] + metrics["eval_rows"] == 5000
    assert "majority-class baseline" in trained_model.stdout


def test_serving_model_has_the_four_signatures(trained_model):
    loaded = tf.saved_model.load(trained_model.serving_dir)
    assert set(loaded.signatures) == {"serving_default", "predict_raw", "transform_features",
                                      "transform_raw"}
    assert set(loaded.signatures["serving_default"].structured_input_signature[1]) == {
        "examples"}
    assert set(loaded.signatures["predict_raw"].structured_input_signature[1]) == set(
        flights.SERVING_INPUTS)


def test_serving_model_works_after_the_run_dir_is_deleted(trained_model, flights_run):
    assert not os.path.exists(trained_model.deleted_run_dir)
    _, serialized = raw_rows(flights_run.output_dir, "serving", 20)
    loaded = tf.saved_model.load(trained_model.serving_dir)
    probability = loaded.signatures["serving_default"](
        examples=tf.constant(serialized))["probability"].numpy()
    assert probability.shape == (20,)
    assert ((probability > 0) & (probability < 1)).all()


def _predict_raw_inputs(raw, specs: dict) -> dict[str, tf.Tensor]:
    """Raw rows as predict_raw takes them: NaN or "" where a value is missing."""
    missing = {tf.string: b"", tf.float32: np.nan, tf.float64: np.nan}
    return {name: tf.constant([missing.get(spec.dtype) if v is None else v[0]
                               for v in raw.column(name).to_pylist()], spec.dtype)
            for name, spec in specs.items()}


def test_predict_raw_agrees_with_serving_default_including_missing_values(
        trained_model, flights_run):
    raw, serialized = raw_rows(flights_run.output_dir, "eval", 1000)
    dep_delay = raw.column("dep_delay")
    assert dep_delay.null_count > 0, "the slice has cancelled flights: missing dep_delay"
    loaded = tf.saved_model.load(trained_model.serving_dir)
    from_examples = loaded.signatures["serving_default"](
        examples=tf.constant(serialized))["probability"].numpy()
    predict_raw = loaded.signatures["predict_raw"]
    from_raw = predict_raw(**_predict_raw_inputs(
        raw, predict_raw.structured_input_signature[1]))["probability"].numpy()
    np.testing.assert_allclose(from_raw, from_examples, rtol=0, atol=1e-6)


def test_a_missing_optional_value_is_imputed_as_in_training(trained_model, flights_run):
    example = tf.train.Example()
    for name, value in [("year", 2013), ("month", 1), ("day", 2), ("hour", 9), ("minute", 0),
                        ("distance", 1000), ("origin_departures_1h", 7),
                        ("carrier_departures_1h", 3)]:
        example.features.feature[name].int64_list.value.append(value)
    for name, value in [("origin_dep_delay_mean_24h", 4.5), ("carrier_dep_delay_mean_24h", -1.0)]:
        example.features.feature[name].float_list.value.append(value)
    for name, value in [("carrier", b"UA"), ("origin", b"EWR"), ("dest", b"ORD")]:
        example.features.feature[name].bytes_list.value.append(value)
    loaded = tf.saved_model.load(trained_model.serving_dir)
    transformed = loaded.signatures["transform_features"](
        examples=tf.constant([example.SerializeToString()]))
    # No dep_delay: imputed with the training mean, whose z-score is 0.
    assert transformed["dep_delay_missing"].numpy().tolist() == [1]
    assert abs(transformed["dep_delay_z"].numpy()[0]) < 1e-6
    # No tail number hashes as "", as in the pipeline.
    tft_output = tft.TFTransformOutput(flights_run.output_dir)
    raw = tft_output.raw_feature_spec()
    parsed = tf.io.parse_example([example.SerializeToString()],
                                 {k: raw[k] for k in flights.SERVING_INPUTS})
    expected = tft_output.transform_raw_features(parsed)
    for name in MODEL_FEATURES:
        np.testing.assert_allclose(transformed[name].numpy(), expected[name].numpy(),
                                   atol=1e-6, err_msg=name)


def test_serving_inputs_are_all_the_model_needs(flights_run):
    tft_output = tft.TFTransformOutput(flights_run.output_dir)
    _, serialized = raw_rows(flights_run.output_dir, "eval", 5)
    raw_spec = tft_output.raw_feature_spec()
    parsed = tf.io.parse_example(serialized, {k: raw_spec[k] for k in flights.SERVING_INPUTS})
    # TFT prunes the outputs that depend on inputs it was not given.
    assert set(tft_output.transform_raw_features(parsed)) == MODEL_FEATURES
    label_only = set(datasets.get_dataset("flights").transforms.LABEL_INPUTS)
    assert all(isinstance(raw_spec[k], tf.io.VarLenFeature) for k in label_only)


def test_export_serving_writes_a_transform_only_model(flights_run, tmp_path):
    out = str(tmp_path / "transform_only")
    result = run_cli("export-serving", "--run_dir", flights_run.output_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    loaded = tf.saved_model.load(out)
    assert set(loaded.signatures) == {"transform_features", "transform_raw"}
    _, serialized = raw_rows(flights_run.output_dir, "eval", 3)
    outputs = loaded.signatures["transform_features"](examples=tf.constant(serialized))
    assert set(outputs) == set(flights.OUTPUT_KEYS)


@pytest.mark.parametrize("split_name", ["eval", "serving"])
def test_check_parity_finds_no_mismatch(flights_run, split_name):
    result = run_cli("check-parity", "--run_dir", flights_run.output_dir,
                     "--split", split_name, "--n", "1000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        f"compared 1,000 rows x {len(flights.OUTPUT_KEYS)} features "
        f"({1000 * len(flights.OUTPUT_KEYS):,} values): 0 mismatches")


def test_check_parity_of_the_trained_models_own_transform(flights_run, trained_model):
    result = run_cli("check-parity", "--run_dir", flights_run.output_dir,
                     "--model", trained_model.serving_dir, "--n", "1000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 mismatches" in result.stdout


def test_check_parity_reports_a_record_that_differs(flights_run, tmp_path):
    run_copy = tmp_path / "run"
    shutil.copytree(flights_run.output_dir, run_copy)
    shard = next((run_copy / "data" / "eval").glob("*.tfrecord.gz"))
    records = list(tf.data.TFRecordDataset(str(shard), compression_type="GZIP").as_numpy_iterator())
    example = tf.train.Example.FromString(records[0])
    row_key = example.features.feature[ROW_KEY].int64_list.value[0]
    example.features.feature["dep_delay_z"].float_list.value[0] += 0.01
    records[0] = example.SerializeToString()
    with tf.io.TFRecordWriter(str(shard), options="GZIP") as writer:
        for record in records:
            writer.write(record)
    assert gzip.open(shard).read(1)  # still a valid gzip file
    result = run_cli("check-parity", "--run_dir", str(run_copy), "--n", "2000")
    assert result.returncode == 1
    assert ": 1 mismatches" in result.stdout.splitlines()[0]
    assert f"row_key {row_key}, dep_delay_z" in result.stdout


# -- predict: what joins back, and a failure that blocks nothing -----------------------------

def test_a_failed_predict_leaves_nothing_that_blocks_the_next(
        trained_model, flights_run, tmp_path, monkeypatch):
    from pipelines import api
    from pipelines.options import PredictOptions
    from pipelines.stages import predictions

    source = tmp_path / "rows.csv"
    with open(flights_run.serving_input, "rb") as f:
        source.write_bytes(b"".join(f.readlines()[:301]))  # the header and 300 rows
    out = tmp_path / "predictions"
    written = predictions._output
    calls = []

    def fails_mid_way(prediction):  # after 100 rows were scored and written out
        calls.append(1)
        if len(calls) > 100:
            raise RuntimeError("the disk filled up")
        return written(prediction)

    monkeypatch.setattr(predictions, "_output", fails_mid_way)
    with pytest.raises(Exception, match="the disk filled up"):
        api.predict(PredictOptions(model=trained_model.serving_dir, input=str(source),
                                   output_dir=str(out)))
    monkeypatch.undo()
    assert not out.exists()  # the directory it made is removed with what it wrote
    # What a killed predict leaves: its staging directory, Beam's temp files in it.
    killed = out / ".staging" / "20260101T000000-1" / "beam-temp-predictions-0123"
    killed.mkdir(parents=True)
    (killed / "shard").write_bytes(b"row_key,probability\n1,0.5\n")

    result = run_cli("predict", "--model", trained_model.serving_dir, "--input", str(source),
                     "--output_dir", str(out), "--passthrough", "dep_delay,carrier")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out)) == [".lock", "predictions-00000-of-00001.csv", "rejected"]
    with open(out / "predictions-00000-of-00001.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    # The keys, then the columns passed through (carrier is a key: written once).
    assert list(rows[0]) == ["row_key", "year", "month", "day", "carrier", "flight", "origin",
                             "dep_delay", "probability"]
    with open(source, newline="") as f:
        given = {(r["year"], r["month"], r["day"], r["carrier"], r["flight"], r["origin"]):
                 r["dep_delay"] for r in csv.DictReader(f)}
    assert len(rows) == 300
    assert {(r["year"], r["month"], r["day"], r["carrier"], r["flight"], r["origin"]):
            r["dep_delay"] for r in rows} == given


def test_predict_refuses_a_passthrough_column_the_rows_lack(trained_model, tmp_path):
    result = run_cli("predict", "--model", trained_model.serving_dir, "--input", "x.csv",
                     "--output_dir", str(tmp_path / "out"), "--passthrough", "dep_delay,tip")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: --passthrough names 'tip', not a column of flights's rows; its columns: year, "
        "month, day,")
    assert not (tmp_path / "out").exists()
