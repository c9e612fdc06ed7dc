"""The train/eval split: BigQuery-compatible fingerprints, determinism, fractions."""

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from pipelines.decode import row_keys
from pipelines.errors import UserError
from pipelines.stages import counters
from pipelines.stages.split import SplitExamples


def test_row_keys_match_bigquery_farm_fingerprint():
    # The published example of BigQuery's FARM_FINGERPRINT:
    # FARM_FINGERPRINT(CONCAT(CAST(x AS STRING), y, CAST(z AS STRING))) for
    # (1, "foo", true), (2, "apple", false), (3, "", true).
    keys = row_keys.row_keys(["1footrue", "2applefalse", "3true"])
    assert keys.tolist() == [-1541654101129638711, 2794438866806483259, -4880158226897771312]


def test_buckets_are_abs_mod_100_of_the_signed_key():
    keys = np.array([-1541654101129638711, 2794438866806483259, -4880158226897771312,
                     np.iinfo(np.int64).min, 0, -1], dtype=np.int64)
    # MOD(ABS(x), 100); ABS(INT64_MIN) = 2**63 is computed without overflow.
    assert row_keys.split_buckets(keys).tolist() == [11, 59, 12, 2**63 % 100, 0, 1]


def test_split_is_deterministic_and_close_to_the_fraction():
    keys = [f"2013|1|{i % 28 + 1}|UA|{i}|EWR" for i in range(10_000)]
    buckets = row_keys.split_buckets(row_keys.row_keys(keys))
    assert np.array_equal(buckets, row_keys.split_buckets(row_keys.row_keys(keys)))
    for fraction in (0.1, 0.2, 0.5):
        share = np.mean(buckets < row_keys.eval_percent(fraction))
        assert abs(share - fraction) <= 0.02, (fraction, share)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.2, 0.125])
def test_eval_fraction_must_be_a_whole_percentage(fraction):
    with pytest.raises(UserError, match="--eval_fraction"):
        row_keys.eval_percent(fraction)


def _batch(keys: list[int]) -> pa.RecordBatch:
    values = pa.array(keys, pa.int64())
    offsets = pa.array(np.arange(len(keys) + 1), pa.int64())
    return pa.RecordBatch.from_arrays(
        [pa.LargeListArray.from_arrays(offsets, values)], names=[row_keys.ROW_KEY])


def _keys(batch: pa.RecordBatch) -> list[int]:
    return batch.column(row_keys.ROW_KEY).flatten().to_pylist()


def test_split_examples_routes_rows_and_counts_them():
    keys = row_keys.row_keys([f"key-{i}" for i in range(1000)]).tolist()
    is_eval = row_keys.split_buckets(np.array(keys)) < 20
    serving_keys = [7, 8, 9]
    pipeline = test_pipeline.TestPipeline()
    raw = {
        "train": pipeline | "Train" >> beam.Create(
            [_batch(keys[:600]), _batch(keys[600:])]),
        "serving": pipeline | "Serving" >> beam.Create(
            [_batch(serving_keys)]),
    }
    splits = raw | SplitExamples(0.2)
    for name, expected in [
        ("train", [k for k, e in zip(keys, is_eval, strict=True) if not e]),
        ("eval", [k for k, e in zip(keys, is_eval, strict=True) if e]),
        ("serving", serving_keys),
    ]:
        rows = splits[name] | f"Keys{name}" >> beam.FlatMap(_keys)
        assert_that(rows, equal_to(expected), label=f"Check{name}")
    result = pipeline.run()
    rows = counters.row_counts(result)
    assert (rows["train"], rows["eval"], rows["serving"]) == (
        int((~is_eval).sum()), int(is_eval.sum()), len(serving_keys))
