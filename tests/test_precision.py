"""Every mean and variance a flights run's transform_fn holds is within one
float32 ulp of numpy's float64 mean and variance of the training rows it
analyzed, and stays so when the same rows arrive in other batches.

The recipes analyze in float64 (``transforms.recipes``): a float32 accumulation
was up to 4 ulps off on these rows, by an amount that changed with the batch
sizes, which differ between runners. The taxi data's constants are checked in
``tests/test_own_data.py``, which holds its run.
"""

import numpy as np
import pytest
import tensorflow_transform.beam as tft_beam

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


def test_other_batch_sizes_keep_them_within_a_float32_ulp(flights_run, train_rows, tmp_path):
    run = RunDir(flights_run.output_dir)
    batches, start, i = [], 0, 0
    while start < train_rows.num_rows:
        size = UNEVEN_BATCH_SIZES[i % len(UNEVEN_BATCH_SIZES)]
        batches.append(train_rows.slice(start, size))
        start, i = start + size, i + 1
    assert sum(b.num_rows for b in batches) == train_rows.num_rows
    config = tensor_adapter_config(train_rows.schema, run.schema())
    with tft_beam.Context(temp_dir=str(tmp_path / "tmp")):
        transform_fn = (batches, config) | tft_beam.AnalyzeDataset(_z_scores_of_flights)
        _ = transform_fn | tft_beam.WriteTransformFn(str(tmp_path / "out"))
    _assert_within_one_ulp(z_score_moments(str(tmp_path / "out" / "transform_fn")),
                           _exact_moments(train_rows))
