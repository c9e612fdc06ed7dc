"""Decoding CSV into typed Arrow batches, and the ``ReadRaw`` stage around it."""

import gzip
import io
import json
import os

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.decode import row_keys
from pipelines.decode.columns import Column, CsvFormat, RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder, HeaderMismatchError
from pipelines.decode.row_keys import ROW_KEY
from pipelines.stages import counters
from pipelines.stages.read import ReadRaw

COLUMNS = [
    Column("id", schema_pb2.INT, required=True, domain=(0, 100), hard_domain=True),
    Column("name", schema_pb2.BYTES, required=False),
    Column("score", schema_pb2.FLOAT, required=False),
]
FORMAT = CsvFormat(null_values=("NA", ""), key_columns=("id", "name"))
CSV = (
    b"id,name,score\n"
    b"1,ann,2.5\n"                 # line 2
    b"2,NA,3\n"                    # line 3: name missing
    b"3,bob\n"                     # line 4: too few fields
    b"4,cy,abc\n"                  # line 5: score is not a number
    b",dee,1\n"                    # line 6: required id missing
    b'5,"e,f",7,8\n'               # line 7: too many fields
    b"\n"                          # line 8: empty
    b"6,gus,1e3\n"                 # line 9
    b"7,\xff,NA\n"                 # line 10: text not UTF-8
    b"x,hal,1\n"                   # line 11: id is not an integer
    b'10,"l ""m"" n",4\n'          # line 12: quoted, with escaped quotes
    b'8,"ida,2\n'                  # line 13: a quote that never closes ...
    b"9,jo,3\n"                    # line 14: ... must not swallow this line
    b"id,name,score\n"             # line 15: the header again
    b"101,kai,1\n"                 # line 16: id outside its hard domain
)
EXPECTED_REJECTED = [
    (4, "wrong_field_count", "expected 3 fields, found 2", "3,bob"),
    (5, "unparsable", "score: cannot parse b'abc' as FLOAT", "4,cy,abc"),
    (6, "missing_required", "id: missing required value", ",dee,1"),
    (7, "wrong_field_count", "expected 3 fields, found 4", '5,"e,f",7,8'),
    (8, "empty_line", "empty line", ""),
    (10, "invalid_utf8", "line is not valid UTF-8", "7,\\xff,NA"),
    (11, "unparsable", "id: cannot parse b'x' as INT", "x,hal,1"),
    (13, "unbalanced_quotes",
     "unbalanced quotes: a quoted value opened on this line never closes", '8,"ida,2'),
    (15, "repeated_header", "repeated header line", "id,name,score"),
    (16, "out_of_domain", "id: 101 is outside the schema's domain [0, 100]", "101,kai,1"),
]
GOOD_IDS = [[1], [2], [6], [10], [9]]


def _decode(data: bytes, limit=None, block_bytes=1 << 20):
    decoder = CsvDecoder(COLUMNS, FORMAT, block_bytes=block_bytes)
    items = list(decoder.decode(io.BytesIO(data), "f.csv", limit))
    batches = [i for i in items if isinstance(i, pa.RecordBatch)]
    rejected = sorted((r.line, r.kind, r.reason, r.text) for r in items
                      if isinstance(r, RejectedRow))
    table = pa.Table.from_batches(batches, decoder.output_schema)
    return table.to_pydict(), rejected


@pytest.mark.parametrize("block_bytes", [1 << 20, 16])  # one block, or one per line
def test_values_are_typed_lists_and_missing_values_null(block_bytes):
    rows, rejected = _decode(CSV, block_bytes=block_bytes)
    assert rows["id"] == GOOD_IDS
    assert rows["name"] == [[b"ann"], None, [b"gus"], [b'l "m" n'], [b"jo"]]
    assert rows["score"] == [[2.5], [3.0], [1000.0], [4.0], [3.0]]
    keys = ["1|ann", "2|NA", "6|gus", '10|l "m" n', "9|jo"]
    assert rows[ROW_KEY] == [[k] for k in row_keys.row_keys(keys).tolist()]
    assert rejected == EXPECTED_REJECTED
    assert len(rows["id"]) + len(rejected) == CSV.count(b"\n") - 1, "every line accounted"


def test_output_schema_is_the_tfxio_layout():
    decoder = CsvDecoder(COLUMNS, FORMAT)
    assert decoder.output_schema == pa.schema([
        ("id", pa.large_list(pa.int64())),
        ("name", pa.large_list(pa.large_binary())),
        ("score", pa.large_list(pa.float32())),
        (ROW_KEY, pa.large_list(pa.int64())),
    ])


@pytest.mark.parametrize("limit, ids, rejected_lines", [
    (1, [[1]], []),
    (3, [[1], [2]], [4]),
    (6, [[1], [2]], [4, 5, 6, 7]),
    (100, GOOD_IDS, [line for line, *_ in EXPECTED_REJECTED]),
])
def test_limit_counts_data_lines_good_or_bad(limit, ids, rejected_lines):
    rows, rejected = _decode(CSV, limit=limit, block_bytes=32)
    assert rows["id"] == ids
    assert [line for line, *_ in rejected] == rejected_lines


def test_a_file_without_trailing_newline_keeps_its_last_row():
    rows, _ = _decode(b"id,name,score\n1,a,1\n2,b,2", block_bytes=8)
    assert rows["id"] == [[1], [2]]


@pytest.mark.parametrize("header, message", [
    (b"id,name\n", r"missing schema columns \['score'\]"),
    (b"id,name,score,extra\n", r"unexpected columns \['extra'\]"),
])
def test_header_must_name_the_schema_columns(header, message):
    with pytest.raises(HeaderMismatchError, match=message):
        _decode(header + b"1,a,2\n")


def test_read_raw_reads_globs_gzip_and_dead_letters(tmp_path):
    (tmp_path / "a.csv").write_bytes(CSV)
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"id,name,score\n18,ivy,4\n19,jo,5\n"))
    (tmp_path / "serving.csv").write_bytes(b"id,name,score\n10,kim,6\n")
    decoder = CsvDecoder(COLUMNS, FORMAT)
    rejected_prefix = str(tmp_path / "out" / "rejected")
    pipeline = test_pipeline.TestPipeline()
    outputs = pipeline | ReadRaw(
        {"train": str(tmp_path / "[ab].csv*"), "serving": str(tmp_path / "serving.csv")},
        decoder, rejected_prefix)
    ids = {name: outputs[name] | f"Ids{name}" >> beam.FlatMap(
        lambda b: b.column("id").flatten().to_pylist()) for name in ("train", "serving")}
    assert_that(ids["train"], equal_to([i for (i,) in GOOD_IDS] + [18, 19]), label="CheckTrain")
    assert_that(ids["serving"], equal_to([10]), label="CheckServing")
    result = pipeline.run()
    rows = counters.row_counts(result)
    assert rows["read"] == len(GOOD_IDS) + 2 + 1 + len(EXPECTED_REJECTED)
    assert rows["rejected"] == len(EXPECTED_REJECTED)
    out_dir = tmp_path / "out"
    written = [json.loads(line) for f in os.listdir(out_dir) for line in open(out_dir / f)]
    assert sorted((r["line"], r["kind"], r["reason"], r["text"]) for r in written) == (
        EXPECTED_REJECTED)
    assert {r["source"] for r in written} == {str(tmp_path / "a.csv")}


def test_read_raw_limit_spans_files_in_order(tmp_path):
    (tmp_path / "1.csv").write_bytes(b"id,name,score\n1,a,1\n2,b,2\n")
    (tmp_path / "2.csv").write_bytes(b"id,name,score\n3,c,3\n4,d,4\n")
    pipeline = test_pipeline.TestPipeline()
    outputs = pipeline | ReadRaw({"train": str(tmp_path / "*.csv")}, CsvDecoder(COLUMNS, FORMAT),
                                 str(tmp_path / "rejected"), limit=3)
    ids = outputs["train"] | beam.FlatMap(lambda b: b.column("id").flatten().to_pylist())
    assert_that(ids, equal_to([1, 2, 3]))
    pipeline.run()
