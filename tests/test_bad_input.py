"""Dirty and hostile input: property-based tests of decoding and splitting, a
corpus of corrupted files, and the one-line errors a user gets."""

import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import cli, datasets, nycflights
from pipelines.decode import row_keys
from pipelines.decode.columns import Column, CsvFormat, RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder, HeaderMismatchError
from tests.conftest import PROJECT_ROOT, run_cli

COLUMNS = [Column("id", schema_pb2.INT, True), Column("name", schema_pb2.BYTES, False),
           Column("score", schema_pb2.FLOAT, False)]
FORMAT = CsvFormat(null_values=("NA",), key_columns=("id",))
# Text a CSV writer can quote: anything printable but line breaks.
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).filter(
    lambda t: t != "NA")
GOOD = st.tuples(st.integers(-2**62, 2**62), TEXT,
                 st.one_of(st.none(), st.floats(-1e6, 1e6, width=32, allow_nan=False)))
# One-line faults. A stray quote (``3,"open,1``) is not one: under RFC 4180 it
# opens a value that runs on into the next lines (tests/test_multiline.py).
BAD = st.sampled_from([
    "1,only two", "1,a,b,c", "x,name,1", "2,name,notafloat", ",missing,1", "",
    "id,name,score"])


def _decode_all(data: bytes, block_bytes: int):
    decoder = CsvDecoder(COLUMNS, FORMAT, block_bytes=block_bytes)
    items = list(decoder.decode(io.BytesIO(data), "f.csv"))
    batches = [i for i in items if isinstance(i, pa.RecordBatch)]
    rows = pa.Table.from_batches(batches, decoder.output_schema).to_pylist()
    return rows, [i for i in items if isinstance(i, RejectedRow)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(st.one_of(GOOD, BAD), max_size=40),
       block_bytes=st.sampled_from([8, 64, 1 << 20]))
def test_every_line_is_decoded_exactly_or_rejected(lines, block_bytes):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "name", "score"])
    good = []
    for number, line in enumerate(lines, start=2):
        if isinstance(line, tuple):
            identifier, name, score = line
            writer.writerow([identifier, name, "NA" if score is None else repr(score)])
            good.append((number, line))
        else:
            out.write(line + "\n")
    rows, rejected = _decode_all(out.getvalue().encode("utf-8"), block_bytes)
    assert len(rows) + len(rejected) == len(lines), "every line accounted for"
    assert len(rows) == len(good)
    assert {r.line for r in rejected} == set(range(2, len(lines) + 2)) - {n for n, _ in good}
    for row, (_, (identifier, name, score)) in zip(rows, good, strict=True):
        assert row["id"] == [identifier]
        assert row["name"] == ([name.encode("utf-8")] if name != "" else [b""])
        assert row["score"] == (None if score is None else [pytest.approx(score, rel=1e-6)])
        assert row["row_key"] == [row_keys.row_keys([str(identifier)])[0]]


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=40), fraction=st.integers(1, 98))
def test_split_is_bigquery_mod_abs_fingerprint(key, fraction):
    (row_key,) = row_keys.row_keys([key])
    # TensorFlow's Fingerprint64, an implementation independent of pyfarmhash.
    fingerprint = tf.fingerprint(tf.constant([key.encode("utf-8")]), method="farmhash64")
    signed = int(fingerprint.numpy().view("<i8")[0, 0])
    assert row_key == signed
    (bucket,) = row_keys.split_buckets(np.array([row_key]))
    assert bucket == abs(signed) % 100
    # The pipeline's own routing: eval exactly when BigQuery's bucket is below the
    # percentage, and a row in eval at some fraction stays in eval at every larger one.
    batch = pa.RecordBatch.from_arrays(
        [pa.array([[row_key]], pa.large_list(pa.int64()))], names=[row_keys.ROW_KEY])
    in_eval = bool(row_keys.is_eval(batch, fraction)[0])
    assert in_eval == (abs(signed) % 100 < fraction)
    assert not in_eval or bool(row_keys.is_eval(batch, fraction + 1)[0])


def _flights_header_and_rows(count: int) -> tuple[bytes, bytes]:
    with open(nycflights.default_inputs()[0], "rb") as f:
        header = f.readline()
        return header, b"".join(f.readline() for _ in range(count))


def _run_decode(path: str) -> dict:
    """Decodes ``path`` as the pipeline does, in a fresh process; its counts and
    peak memory. A hang fails the test through the timeout."""
    script = (
        "import json, resource, sys\n"
        "from pipelines import datasets\n"
        "from pipelines.decode.files import decode_files\n"
        "from pipelines.errors import UserError\n"
        "decoder = datasets.get_dataset('flights').csv_decoder()\n"
        "rows, kinds, error = 0, {}, None\n"
        "try:\n"
        "    for item in decode_files(decoder, [sys.argv[1]]):\n"
        "        if hasattr(item, 'kind'):\n"
        "            kinds[item.kind] = kinds.get(item.kind, 0) + 1\n"
        "        else:\n"
        "            rows += item.num_rows\n"
        "except UserError as e:\n"
        "    error = str(e)\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024\n"
        "print(json.dumps({'rows': rows, 'rejected': kinds, 'error': error, 'peak_mb': peak}))\n")
    result = subprocess.run([sys.executable, "-c", script, path], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def baseline_peak_mb(tmp_path_factory):
    path = tmp_path_factory.mktemp("baseline") / "ok.csv"
    header, rows = _flights_header_and_rows(100)
    path.write_bytes(header + rows)
    return _run_decode(str(path))["peak_mb"]


def test_truncated_gzip_keeps_what_it_can_and_rejects_the_rest(tmp_path):
    header, rows = _flights_header_and_rows(5000)
    compressed = gzip.compress(header + rows)
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(compressed[:len(compressed) // 2])
    result = _run_decode(str(path))
    assert 0 < result["rows"] < 5000
    assert result["rejected"] == {"corrupt_file": 1}


def test_binary_garbage_after_the_header_is_rejected_line_by_line(tmp_path):
    header, _ = _flights_header_and_rows(0)
    garbage = np.random.default_rng(0).bytes(1 << 20)
    path = tmp_path / "garbage.csv"
    path.write_bytes(header + garbage)
    result = _run_decode(str(path))
    assert result["rows"] == 0
    # Every line is accounted for; a lone \r ends a line as \n and \r\n do.
    lines = len(re.findall(rb"\r*\n|\r", garbage)) + 1
    assert sum(result["rejected"].values()) == lines
    assert set(result["rejected"]) <= {"wrong_field_count", "unbalanced_quotes", "empty_line",
                                       "invalid_utf8", "unparsable", "overlong_line"}


def test_binary_garbage_as_the_whole_file_is_a_header_error(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(np.random.default_rng(1).bytes(1 << 20))
    result = _run_decode(str(path))
    assert result["error"].startswith(f"{path}: CSV header has missing schema columns")
    # Bounded, whatever the file holds (the temporary path's length aside).
    assert len(result["error"].removeprefix(str(path))) < 330


def test_a_huge_line_is_rejected_in_bounded_memory(tmp_path, baseline_peak_mb):
    header, rows = _flights_header_and_rows(10)
    path = tmp_path / "huge.csv"
    with open(path, "wb") as f:
        f.write(header + rows)
        for _ in range(100):  # one 100 MB line
            f.write(b"x" * (1 << 20))
        f.write(b"\n" + rows)
    result = _run_decode(str(path))
    assert result["rows"] == 20
    assert result["rejected"] == {"overlong_line": 1}
    assert result["peak_mb"] - baseline_peak_mb < 100, result


def test_a_10_mb_line_is_an_overlong_line(tmp_path):
    header, rows = _flights_header_and_rows(3)
    path = tmp_path / "ten.csv"
    path.write_bytes(header + b"y," * (5 << 20) + b"\n" + rows)
    result = _run_decode(str(path))
    assert (result["rows"], result["rejected"]) == (3, {"overlong_line": 1})


def test_ten_thousand_columns(tmp_path):
    header, rows = _flights_header_and_rows(2)
    wide = b",".join(b"c%d" % i for i in range(10_000)) + b"\n"
    path = tmp_path / "wide_header.csv"
    path.write_bytes(wide + rows)
    error = _run_decode(str(path))["error"]
    assert "and 9,995 more" in error and len(error) < 600
    path = tmp_path / "wide_rows.csv"
    path.write_bytes(header + wide * 3 + rows)
    assert _run_decode(str(path)) | {"peak_mb": 0} == {
        "rows": 2, "rejected": {"wrong_field_count": 3}, "error": None, "peak_mb": 0}


def test_header_mismatch_names_missing_and_unexpected_columns():
    decoder = CsvDecoder(COLUMNS, FORMAT)
    with pytest.raises(HeaderMismatchError, match=r"missing schema columns \['score'\] and "
                                                  r"unexpected columns \['extra'\]"):
        decoder.check_header(io.BytesIO(b"id,name,extra\n"), "f.csv")


def _one_line_error(capsys, *args) -> str:
    assert cli.main(list(args)) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_empty_inputs_are_one_line_errors(tmp_path, capsys):
    header, _ = _flights_header_and_rows(0)
    (tmp_path / "header_only.csv").write_bytes(header)
    (tmp_path / "empty.csv").write_bytes(b"")
    out = str(tmp_path / "out")
    assert "holds no data rows: 1 file(s) with a header only" in _one_line_error(
        capsys, "run", "--dataset", "flights", "--output_dir", out,
        "--train_input", str(tmp_path / "header_only.csv"))
    assert "empty.csv is empty: it has no header line" in _one_line_error(
        capsys, "run", "--dataset", "flights", "--output_dir", out,
        "--train_input", str(tmp_path / "empty.csv"))


def test_a_header_without_a_schema_column_is_a_one_line_error(tmp_path, capsys):
    header, rows = _flights_header_and_rows(5)
    (tmp_path / "renamed.csv").write_bytes(header.replace(b"tailnum", b"tail_number") + rows)
    error = _one_line_error(capsys, "run", "--dataset", "flights", "--output_dir",
                            str(tmp_path / "out"), "--train_input", str(tmp_path / "renamed.csv"))
    assert error.endswith("CSV header has missing schema columns ['tailnum'] and unexpected "
                          "columns ['tail_number']; the header must name exactly the schema's "
                          "columns")


def test_a_schema_that_does_not_parse_is_a_one_line_error(tmp_path, capsys):
    broken = tmp_path / "broken.pbtxt"
    broken.write_text('feature {\n  name: "year"\n  type: INTEGER\n}\n')
    error = _one_line_error(capsys, "run", "--output_dir", str(tmp_path / "out"),
                            "--schema", str(broken))
    assert error.startswith(f"error: {broken} does not parse as a TFMD schema: 3:")


def test_flags_and_paths_are_never_run_as_code(tmp_path, capsys):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    out = str(tmp_path / "out")
    assert "unknown dataset" in _one_line_error(capsys, "run", "--output_dir", out,
                                                "--dataset", str(evil))
    assert "not a pipelines.datasets.Dataset" in _one_line_error(
        capsys, "run", "--output_dir", out, "--dataset", "os:system")
    assert "no input file matches" in _one_line_error(
        capsys, "run", "--dataset", "flights", "--output_dir", out,
        "--train_input", f"$(touch {marker})")
    assert not marker.exists()
    assert not os.path.exists(os.path.join(PROJECT_ROOT, f"$(touch {marker})"))


def test_a_dataset_can_be_named_as_module_attribute(tmp_path, capsys):
    error = _one_line_error(capsys, "run", "--output_dir", str(tmp_path / "out"),
                            "--dataset", "pipelines.datasets:_REGISTRY")
    assert "is a dict, not a pipelines.datasets.Dataset" in error


@pytest.mark.slow
def test_an_empty_training_split_is_a_one_line_error_and_publishes_nothing(tmp_path):
    header, rows = _flights_header_and_rows(200)
    decoder = datasets.get_dataset("flights").csv_decoder()
    (batch,) = [b for b in decoder.decode(io.BytesIO(header + rows), "rows.csv")]
    in_eval = row_keys.is_eval(batch, 20)
    eval_lines = [line for line, e in zip(rows.splitlines(keepends=True), in_eval, strict=True)
                  if e]
    (tmp_path / "train.csv").write_bytes(header + b"".join(eval_lines[:3]))
    (tmp_path / "serving.csv").write_bytes(header + b"".join(eval_lines[3:6]))
    out = tmp_path / "out"
    result = run_cli("run", "--dataset", "flights", "--output_dir", str(out),
                     "--train_input", str(tmp_path / "train.csv"),
                     "--serving_input", str(tmp_path / "serving.csv"))
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the training split is empty: 3 training rows went to eval (--eval_fraction 0.2) "
        "and 0 rows were rejected; nothing was published. Pass more training rows or a smaller "
        "--eval_fraction")
    assert sorted(os.listdir(out)) == [".lock", ".staging"]
    assert not os.path.exists(out / "run_summary.json")
