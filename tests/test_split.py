"""The train/eval split: BigQuery-compatible fingerprints, determinism, fractions."""

import io

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode import row_keys
from pipelines.decode.bigquery import RowDecoder
from pipelines.decode.columns import Column, CsvFormat
from pipelines.decode.csv_decoder import CsvDecoder
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


# A dataset without key columns: each row is keyed by its whole content.
KEYLESS = [Column("id", schema_pb2.INT, True), Column("score", schema_pb2.FLOAT, False),
           Column("name", schema_pb2.BYTES, False)]


def _decoded_keys(data: bytes) -> list[int]:
    decoder = CsvDecoder(KEYLESS, CsvFormat(null_values=("NA",)))
    return [k for b in decoder.decode(io.BytesIO(data), "keyless.csv")
            if isinstance(b, pa.RecordBatch) for k in _keys(b)]


def test_a_keyless_row_is_keyed_by_its_whole_content_as_bigquery_writes_it():
    keys = _decoded_keys(b"id,score,name\n1,0.1,ab\n2,NA,x\n1,0.1,ab\n3,1e20,NA\n-4,2.50,\n")
    # Integers in decimal, floats as %.17g of the double, NULL as \N, joined with "|".
    texts = ["1|0.10000000000000001|ab", "2|\\N|x", "1|0.10000000000000001|ab",
             "3|1e+20|\\N", "-4|2.5|"]
    assert keys == row_keys.row_keys(texts).tolist()
    assert keys[0] == keys[2]  # duplicate rows land together
    rows = [{"id": 1, "score": 0.1, "name": "ab"}, {"id": 2, "score": None, "name": "x"},
            {"id": 1, "score": 0.1, "name": "ab"}, {"id": 3, "score": 1e20, "name": None},
            {"id": -4, "score": 2.5, "name": ""}]
    (from_bigquery,) = RowDecoder(KEYLESS, ()).decode(rows, "bigquery")
    assert _keys(from_bigquery) == keys


def test_a_keyless_dataset_with_floats_and_missing_values_splits_80_20():
    rng = np.random.default_rng(0)
    lines = [b"id,score,name\n"]
    for _ in range(10_000):
        score = b"NA" if rng.random() < 0.3 else repr(float(rng.normal())).encode()
        name = b"NA" if rng.random() < 0.3 else f"n{rng.integers(50)}".encode()
        lines.append(b"%d,%s,%s\n" % (rng.integers(100), score, name))
    keys = np.array(_decoded_keys(b"".join(lines)))
    assert len(keys) == 10_000
    # One key per distinct row: duplicates share it, different rows do not.
    assert len(set(keys.tolist())) == len(set(lines[1:]))
    share = row_keys.eval_mask(keys, 20).mean()
    assert abs(share - 0.2) < 0.02, share
