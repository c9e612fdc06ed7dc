"""Every mean and variance a flights run's transform_fn holds is within one
float32 ulp of numpy's float64 mean and variance of the training rows it
analyzed, and stays so when the same rows arrive in other batches.

The recipes analyze in float64 (``transforms.recipes``): a float32 accumulation
was up to 4 ulps off on these rows, by an amount that changed with the batch
sizes, which differ between runners. The taxi data's constants are checked in
``tests/test_own_data.py``, which holds its run.
"""

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam

from pipelines import tft_precision
from pipelines.model.check_parity import read_raw_rows
from pipelines.reports.run_dir import RunDir
from pipelines.stages.transform import tensor_adapter_config
from tests.analyzer_constants import float32_ulps, present_values, z_score_moments
from transforms import recipes

# Each z-score analyzer of transforms/flights.py and what it scales.
FLIGHTS_Z_SCORES = {
    "dep_delay_z": ("dep_delay", None), "distance_log": ("distance", np.log1p),
    "temp_z": ("temp", None), "wind_speed_z": ("wind_speed", None),
    "precip_z": ("precip", None), "visib_z": ("visib", None),
}
# Batch sizes unlike a run's: single rows, small and large batches, interleaved.
UNEVEN_BATCH_SIZES = (1, 7, 130, 1, 2048, 33)


@pytest.fixture(scope="module")
def train_rows(flights_run):
    """The run's training split, read, prepared and split as the run did."""
    run = RunDir(flights_run.output_dir)
    rows = read_raw_rows(run, "train", flights_run.summary["rows"]["train"])
    assert rows.num_rows == flights_run.summary["rows"]["train"]
    return rows


def _exact_moments(rows) -> dict[str, tuple[float, float]]:
    exact = {}
    for analyzer, (column, function) in FLIGHTS_Z_SCORES.items():
        values = present_values(rows.column(column))
        values = function(values) if function else values
        exact[analyzer] = (values.mean(), values.var())
    return exact


def _assert_within_one_ulp(moments: dict, exact: dict) -> None:
    assert moments.keys() == exact.keys()
    for analyzer, (mean, variance) in moments.items():
        assert float32_ulps(mean, exact[analyzer][0]) <= 1, (analyzer, mean, exact[analyzer])
        assert float32_ulps(variance, exact[analyzer][1]) <= 1, (
            analyzer, variance, exact[analyzer])


def test_the_run_s_means_and_variances_are_within_a_float32_ulp(flights_run, train_rows):
    exact = _exact_moments(train_rows)
    # Every column has values that vary, but precip: no rain in this slice's hours.
    assert [a for a, (_, variance) in exact.items() if variance == 0] == ["precip_z"]
    _assert_within_one_ulp(z_score_moments(RunDir(flights_run.output_dir).tft_output
                                           .transform_savedmodel_dir), exact)


def _z_scores_of_flights(inputs: dict) -> dict:
    """The z-scores of ``transforms.flights.preprocessing_fn``, the same recipe
    calls under the same names, without the rest: a third of its analysis time."""
    outputs = {"distance_log": recipes.log_z_score(recipes.dense(inputs["distance"]),
                                                   name="distance_log")}
    for analyzer, (column, function) in FLIGHTS_Z_SCORES.items():
        if function is None:
            outputs[analyzer] = recipes.z_score_imputed(inputs[column], name=analyzer)
    return outputs


def _uneven(rows: int) -> list[tuple[int, int]]:
    """(start, size) of batches of ``UNEVEN_BATCH_SIZES`` over ``rows`` rows."""
    batches, start, i = [], 0, 0
    while start < rows:
        size = UNEVEN_BATCH_SIZES[i % len(UNEVEN_BATCH_SIZES)]
        batches.append((start, size))
        start, i = start + size, i + 1
    return batches


def test_other_batch_sizes_keep_them_within_a_float32_ulp(flights_run, train_rows, tmp_path):
    run = RunDir(flights_run.output_dir)
    batches = [train_rows.slice(start, size) for start, size in _uneven(train_rows.num_rows)]
    assert sum(b.num_rows for b in batches) == train_rows.num_rows
    config = tensor_adapter_config(train_rows.schema, run.schema())
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        transform_fn = (batches, config) | tft_beam.AnalyzeDataset(_z_scores_of_flights)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "out"))
    _assert_within_one_ulp(z_score_moments(str(tmp_path / "out" / "transform_fn")),
                           _exact_moments(train_rows))


def _user_style_moments(inputs: dict) -> dict:
    """What a user's preprocessing_fn (a TFX module file's) does: TFT's own
    analyzers on the float32 and int64 inputs as they come, no recipe. Each
    constant is an output (the same value on every row) to read back."""
    outputs = {}
    for column in ("temp", "wind_speed", "visib", "dep_delay"):
        x = inputs[column]
        values = x.values if isinstance(x, tf.sparse.SparseTensor) else x  # present values
        ones = tf.ones_like(recipes.dense(inputs[column], default_value=0), dtype=tf.float32)
        outputs[f"{column}_mean"] = ones * tft.mean(values)
        outputs[f"{column}_var"] = ones * tft.var(values)
    return outputs


def _user_style_constants(train_rows, batches, schema, tmp_path, name) -> dict[str, float]:
    config = tensor_adapter_config(train_rows.schema, schema)
    with tft_beam.Context(temp_dir=str(tmp_path / f"tmp-{name}")):
        transformed, _ = (batches, config) | f"Analyze{name}" >> (
            tft_beam.AnalyzeAndTransformDataset(_user_style_moments, output_record_batches=True))
    first = transformed[0]
    while not isinstance(first, pa.RecordBatch):  # (batches, passthrough) pairs
        first = first[0]
    values = {column: first.column(column).to_pylist()[0] for column in first.schema.names}
    return {column: value[0] if isinstance(value, list) else value
            for column, value in values.items()}


def test_tfts_own_analyzers_of_float32_and_integers_are_within_a_float32_ulp(
        flights_run, train_rows, tmp_path):
    """``pipelines.tft_precision``: ``tft.mean``/``tft.var`` of a float32 or int64
    input, as a user's module calls them, analyze in float64 and round once;
    TFT as it ships accumulates in float32 and is further off."""
    run = RunDir(flights_run.output_dir)
    batches = [train_rows.slice(start, size) for start, size in _uneven(train_rows.num_rows)]
    exact = {}
    for column in ("temp", "wind_speed", "visib", "dep_delay"):
        values = present_values(train_rows.column(column))
        exact[f"{column}_mean"], exact[f"{column}_var"] = values.mean(), values.var()
    ours = _user_style_constants(train_rows, batches, run.schema(), tmp_path, "Ours")
    with tft_precision.original():
        theirs = _user_style_constants(train_rows, batches, run.schema(), tmp_path, "Theirs")
    assert ours.keys() == theirs.keys() == exact.keys()
    ulps = {name: float32_ulps(value, exact[name]) for name, value in ours.items()}
    assert max(ulps.values()) <= 1, ulps
    assert max(float32_ulps(value, exact[name]) for name, value in theirs.items()) > 1
