"""Instance selection stages on hand-written rows: exact duplicates counted and
dropped (``Deduplicate``), and minority classes oversampled
(``OversampleMinority``) to the row, deterministically. The census runs in
``test_census.py`` check both on the real file."""

import io

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode.columns import Column, CsvFormat
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.row_keys import ROW_KEY
from pipelines.stages import counters
from pipelines.stages.duplicates import Deduplicate, RepeatedRows, content_fingerprints
from pipelines.stages.oversample import OversampleMinority, mixed_keys, repeat_counts
from tests.conftest import run_cli

COLUMNS = [Column("id", schema_pb2.INT, False), Column("score", schema_pb2.FLOAT, False),
           Column("name", schema_pb2.BYTES, False)]
HEADER = b"id,score,name\n"


def _decoded(lines: bytes, key_columns: tuple[str, ...] = ()) -> list[pa.RecordBatch]:
    decoder = CsvDecoder(COLUMNS, CsvFormat(null_values=("NA",), key_columns=key_columns))
    return [b for b in decoder.decode(io.BytesIO(HEADER + lines), "rows.csv")
            if isinstance(b, pa.RecordBatch)]


def _rows(batch: pa.RecordBatch) -> list[tuple]:
    columns = [batch.column(c.name).to_pylist() for c in COLUMNS]
    return [tuple(v[0] if v else None for v in row) for row in zip(*columns, strict=True)]


def test_rows_share_a_fingerprint_only_when_every_value_is_the_same():
    (batch,) = _decoded(
        b"1,0.5,a|b\n1,0.5,a|b\n"  # the same row twice
        b"1,0.50,a|b\n"  # the same values, written otherwise
        b"1,0.5,a\n"  # a prefix of the first
        b"1,NA,a|b\n"  # a missing score
        b"NA,0.5,a|b\n"  # a missing id
        b"1,0.5,\n1,0.5,NA\n"  # an empty name, and a missing one
        b"11,0.5,a\n1,10.5,a\n")  # digits moved from one value to the next
    fingerprints = [f.tobytes() for f in content_fingerprints(batch)]
    assert fingerprints[0] == fingerprints[1] == fingerprints[2]
    assert len(set(fingerprints)) == len(fingerprints) - 2
    # A keyed dataset's rows differ by their keys as written: 01 and 1 are
    # different keys, so the rows go to their own splits and are not duplicates.
    (keyed,) = _decoded(b"1,0.5,a\n1,0.5,a\n01,0.5,a\n", key_columns=("id",))
    first, again, other = (f.tobytes() for f in content_fingerprints(keyed))
    assert first == again != other


def test_numbers_are_fingerprinted_by_value_and_presence():
    # Numbers enter a fingerprint as a presence byte and their 8 bytes: a
    # missing number differs from 0, the widest integers and -0.0 are values
    # like any other, and a batch of no rows has no fingerprints.
    ids = pa.array([[1], [1], [None], [0], [2**63 - 1], [0]], pa.large_list(pa.int64()))
    scores = pa.array([[0.5], [0.5], [0.5], [0.5], [0.5], [-0.0]], pa.large_list(pa.float32()))
    batch = pa.RecordBatch.from_arrays([ids, scores], ["id", "score"])
    fingerprints = [f.tobytes() for f in content_fingerprints(batch)]
    assert fingerprints[0] == fingerprints[1]
    assert len(set(fingerprints)) == 5
    assert len(content_fingerprints(batch.slice(0, 0))) == 0


def test_duplicates_are_counted_and_one_of_each_is_kept():
    # Three batches; "1,0.5,a" thrice (twice in one batch), "2,NA,b" twice.
    batches = [*_decoded(b"1,0.5,a\n2,NA,b\n1,0.5,a\n3,1.5,c\n"),
               *_decoded(b"1,0.5,a\n4,2.5,d\n"), *_decoded(b"2,NA,b\n")]
    pipeline = test_pipeline.TestPipeline()
    train = pipeline | "Train" >> beam.Create(batches)
    repeated = train | "RepeatedRows" >> RepeatedRows("train")
    kept = train | "Deduplicate" >> Deduplicate(repeated)
    rows = kept | "Rows" >> beam.FlatMap(_rows)
    assert_that(rows, equal_to([(1, 0.5, b"a"), (2, None, b"b"), (3, 1.5, b"c"),
                                (4, 2.5, b"d")]))
    totals = counters.counter_totals(pipeline.run())
    assert totals["rows_duplicates_train"] == 3
    assert totals["rows_duplicates_dropped"] == 3


def test_without_duplicates_every_batch_passes_untouched():
    batches = _decoded(b"1,0.5,a\n2,NA,b\n")
    pipeline = test_pipeline.TestPipeline()
    train = pipeline | "Train" >> beam.Create(batches)
    kept = train | "Deduplicate" >> Deduplicate(train | "RepeatedRows" >> RepeatedRows("train"))
    assert_that(kept | "Rows" >> beam.FlatMap(_rows), equal_to(_rows(batches[0])))
    totals = counters.counter_totals(pipeline.run())
    assert totals.get("rows_duplicates_train", 0) == 0
    assert totals.get("rows_duplicates_dropped", 0) == 0


def test_repeat_counts_bring_every_class_to_the_ratio_of_the_largest():
    keys = {0: np.arange(10), 1: np.arange(100, 103), 2: np.arange(200, 208)}
    # Ratio 1: 10 rows each. Class 1 (3 rows): 3 copies of each, 1 row once more
    # (the smallest key, 100); class 2 (8 rows): 1 copy, 2 rows once more.
    assert repeat_counts(keys, 1.0) == {0: (1, None), 1: (3, 100), 2: (1, 201)}
    # Ratio 0.5: 5 rows. Class 1: 1 copy, 2 more; class 2 is already larger.
    assert repeat_counts(keys, 0.5) == {0: (1, None), 1: (1, 101), 2: (1, None)}
    # 0.6 x 10 = 6 = 2 x 3: whole copies only.
    assert repeat_counts(keys, 0.6) == {0: (1, None), 1: (2, None), 2: (1, None)}


def _transformed(labels: list[int], keys: list[int]) -> tuple[pa.RecordBatch, dict]:
    offsets = pa.array(np.arange(len(labels) + 1), pa.int32())
    batch = pa.RecordBatch.from_arrays(
        [pa.ListArray.from_arrays(offsets, pa.array(labels, pa.int64())),
         pa.ListArray.from_arrays(offsets, pa.array(keys, pa.int64()))],
        names=["label", ROW_KEY])
    return batch, {}


def _label_and_key(transformed: tuple[pa.RecordBatch, dict]):
    batch, _ = transformed
    return zip(batch.column("label").flatten().to_pylist(),
               batch.column(ROW_KEY).flatten().to_pylist(), strict=True)


def test_oversampling_repeats_the_minority_to_the_row():
    keys = list(range(-500, 500, 7))  # 143 rows
    labels = [int(k % 5 == 0) for k in keys]  # 29 of class 1, 114 of class 0
    minority = [k for k, label in zip(keys, labels, strict=True) if label]
    # 114 = 3 x 29 + 27: every minority row 3 times, the 27 with the smallest
    # mixed key a fourth time.
    smallest = sorted(minority, key=lambda k: int(mixed_keys(np.array([k]))[0]))[:27]
    expected = ([(0, k) for k, label in zip(keys, labels, strict=True) if not label]
                + [(1, k) for k in minority for _ in range(3)] + [(1, k) for k in smallest])
    pipeline = test_pipeline.TestPipeline()
    transformed = pipeline | beam.Create(
        [_transformed(labels[:70], keys[:70]), _transformed(labels[70:], keys[70:])])
    oversampled = transformed | OversampleMinority("label", 1.0)
    rows = oversampled | beam.FlatMap(_label_and_key)
    assert_that(rows, equal_to(expected))
    totals = counters.counter_totals(pipeline.run())
    assert totals["rows_oversampled"] == 114 - 29


def test_wrong_oversampling_flags_get_one_line(tmp_path):
    for ratio in ("0", "1.5"):
        result = run_cli("run", "--dataset", "census", "--train_input", "x.csv",
                         "--output_dir", str(tmp_path / "out"), "--oversample_minority", ratio)
        assert result.returncode == 2
        assert result.stderr.strip() == (f"error: --oversample_minority takes a "
                                         f"minority:majority ratio in (0, 1], got {float(ratio)}")


def test_a_number_label_cannot_be_oversampled(tmp_path):
    data = tmp_path / "prices.csv"
    data.write_text("size,price\n" + "".join(f"{i},{i * 1.5}\n" for i in range(50)))
    result = run_cli("run", "--train_input", str(data), "--label", "price",
                     "--output_dir", str(tmp_path / "out"), "--oversample_minority")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --oversample_minority balances classes, and the label 'price' of dataset "
        "'prices' is float32, not an integer class")
