"""Hostile files (issue 27, part 5): each gets a rejection or one line, never a
traceback, a hang or a crash, through ``validate`` and the zero-code ``run``
(``init``'s drafting), and a fuzz test of the decoder and of init's reading.

The longer fuzz run is ``benchmarks/fuzz_inputs.py``.
"""

import gzip
import io
import os
import shutil
import socket
import threading
import time

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import datasets, nycflights
from pipelines.commands import infer_schema, init
from pipelines.decode import csv_decoder, dialect
from pipelines.decode.columns import RejectedRow
from pipelines.errors import UserError
from pipelines.reports import history
from references.hostile_inputs import data_lines, mutated
from tests.conftest import run_cli


def _flights(rows: int) -> tuple[bytes, list[bytes]]:
    with open(nycflights.default_inputs()[0], "rb") as f:
        header = f.readline()
        return header, [f.readline() for _ in range(rows)]


def _one_line(result, code: int = 2) -> str:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert (result.returncode, len(lines)) == (code, 1), (result.returncode, lines[-5:])
    return lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, flights_run) -> str:
    """A copy of the session's run for these tests to validate into: the
    session's own must keep only the spans its other users expect."""
    copy = str(tmp_path_factory.mktemp("hostile") / "run")
    shutil.copytree(flights_run.output_dir, copy)
    return copy


def _validate(run_dir: str, serving: str, span: str, *flags: str):
    return run_cli("validate", "--run_dir", run_dir, "--serving_input", serving,
                   "--span", span, *flags)


@pytest.fixture
def small_csv(tmp_path) -> tuple[str, bytes]:
    """A file init drafts in a second or two: 300 rows of three columns."""
    lines = [b"x,y,label"] + [b"%d.5,%s,%d" % (i % 17, b"abc"[i % 3:i % 3 + 1], i % 2)
                              for i in range(300)]
    return str(tmp_path), b"\n".join(lines) + b"\n"


# Not a file: refused before anything opens it.

def _fifo(path: str) -> str:
    os.mkfifo(path)
    # Before the fix, opening the FIFO blocked for ever: a writer comes after 30 s
    # so that the test fails (the file reads as empty) instead of hanging.
    def unblock():
        time.sleep(30)
        with open(path, "wb"):
            pass
    threading.Thread(target=unblock, daemon=True).start()
    return path


def test_validate_refuses_a_directory_fifo_socket_or_device(tmp_path, run_dir):
    os.mkdir(tmp_path / "day.csv")
    fifo = _fifo(str(tmp_path / "pipe.csv"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock.csv"))
    try:
        for path, kind in ((str(tmp_path / "day.csv"), "a directory"),
                           (fifo, "a FIFO (named pipe)"),
                           (str(tmp_path / "sock.csv"), "a socket"),
                           ("/dev/null", "a character device")):
            assert _one_line(_validate(run_dir, path, "not_a_file")) == (
                f"error: {path} is {kind}, not a file: pass CSV files (a directory's as "
                f"DIR/*.csv)")
    finally:
        sock.close()
    assert not os.path.exists(os.path.join(run_dir, "validations", "not_a_file"))


def test_zero_code_run_refuses_a_directory_or_fifo(tmp_path):
    os.mkdir(tmp_path / "day.csv")
    fifo = _fifo(str(tmp_path / "pipe.csv"))
    for path, kind in ((str(tmp_path / "day.csv"), "a directory"), (fifo, "a FIFO (named pipe)")):
        result = run_cli("run", "--train_input", path, "--label", "label",
                         "--output_dir", str(tmp_path / "out"))
        assert _one_line(result).startswith(f"error: {path} is {kind}, not a file")


# Wide rows and headers.

def test_a_line_of_a_million_commas_is_rejected_before_pyarrow_sees_it():
    # pyarrow 10 crashes the process (SIGSEGV) on a line of about 400,000 fields.
    header, rows = _flights(4)
    data = header + b"".join(rows[:2]) + b"," * 1_000_000 + b"\n" + b"".join(rows[2:])
    items = list(datasets.get_dataset("flights").csv_decoder().decode(io.BytesIO(data), "f.csv"))
    rejected = [i for i in items if isinstance(i, RejectedRow)]
    assert sum(i.num_rows for i in items if isinstance(i, pa.RecordBatch)) == 4
    assert [(r.line, r.kind, r.reason) for r in rejected] == [
        (4, "wrong_field_count", "1,000,001 fields, more than the 65,536 a line may have")]


def test_zero_code_run_refuses_a_header_of_100_000_columns(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes(b",".join(b"c%d" % i for i in range(100_000)) + b",label\n"
                     + (b"1," * 100_000 + b"0\n") * 3)
    result = run_cli("run", "--train_input", str(path), "--label", "label",
                     "--output_dir", str(tmp_path / "out"))
    assert _one_line(result) == (
        f"error: {path} has 100,001 columns; init drafts at most 1,000 (each costs seconds "
        f"of drafting): write its dataset directory by hand (docs/datasets.md)")


def test_init_drafts_a_file_with_a_million_comma_row_and_rejects_the_row(small_csv):
    directory, data = small_csv
    path = os.path.join(directory, "commas.csv")
    with open(path, "wb") as f:
        f.write(data + b"," * 1_000_000 + b"\n")
    result = run_cli("init", "--train_input", path, "--dir", os.path.join(directory, "ds"),
                     "--label", "label")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0].endswith("from 300 rows (1 rejected).")


# Header lines.

def test_validate_refuses_a_header_that_names_a_column_twice(tmp_path, run_dir):
    header, rows = _flights(20)
    path = tmp_path / "twice.csv"
    path.write_bytes(header.rstrip(b"\n") + b",carrier\n"
                     + b"".join(r.rstrip(b"\n") + b",UA\n" for r in rows))
    assert _one_line(_validate(run_dir, str(path), "twice")) == (
        f"error: {path}: the CSV header names 'carrier' 2 times (columns 10, 20); each column "
        f"must be named once")


def test_validate_refuses_a_first_line_longer_than_a_line_may_be(tmp_path, run_dir,
                                                                  monkeypatch):
    # The limit (8 MiB) made cheap: 1 MiB, and a first line of 2 MiB.
    monkeypatch.setattr(csv_decoder, "MAX_LINE_BYTES", 1 << 20)
    _, rows = _flights(5)
    path = tmp_path / "long_first.csv"
    path.write_bytes(b"x" * (2 << 20) + b"\n" + b"".join(rows))
    assert _one_line(_validate(run_dir, str(path), "long_first")) == (
        f"error: {path}: the first line is longer than 1,048,576 bytes, which no header is")


# Lines pyarrow never sees, a damaged file: one validate run of a glob holding both.

def test_validate_rejects_wide_overlong_blank_lines_and_a_truncated_gzip(
        tmp_path, run_dir, monkeypatch):
    monkeypatch.setattr(csv_decoder, "MAX_LINE_BYTES", 2 << 20)  # a cheap overlong line
    header, rows = _flights(2000)
    spans = tmp_path / "span"
    spans.mkdir()
    (spans / "lines.csv").write_bytes(
        header + b"".join(rows[:100]) + b"," * 1_000_000 + b"\n" + b"y" * (3 << 20) + b"\n"
        + b"\n" * 1000 + b"".join(rows[100:200]))
    compressed = gzip.compress(header + b"".join(rows[200:]))
    (spans / "cut.csv.gz").write_bytes(compressed[:len(compressed) // 2])
    result = _validate(run_dir, str(spans / "*"), "hostile", "--max_rejected_fraction", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    (entry,) = [v for v in history.load(run_dir) if v.span == "hostile"]
    kept_from_gzip = entry.rows - 200
    assert 0 < kept_from_gzip < 1800
    assert entry.read == entry.rows + entry.rejected
    assert entry.rejected_by_kind == {
        "wrong_field_count": 1, "overlong_line": 1, "empty_line": 1000, "corrupt_file": 1}


def _decode_seconds(data: bytes) -> tuple[float, list]:
    decoder = datasets.get_dataset("flights").csv_decoder()
    started = time.perf_counter()
    items = list(decoder.decode(io.BytesIO(data), "lines.csv"))
    return time.perf_counter() - started, items


def test_blank_lines_cost_what_short_lines_cost():
    """100,000 blank lines (or lines of empty fields) against 100,000 lines of
    one short field, each rejected. Before: 23 s for the blank lines against
    0.7 s, every numeric column probed value by value."""
    header, rows = _flights(10)
    short, _ = _decode_seconds(header + b"".join(rows) + b"x\n" * 100_000)
    for filler, times in ((b"\n", 2), (b"," * 18 + b"\n", 8)):
        seconds, items = _decode_seconds(header + b"".join(rows) + filler * 100_000)
        assert [i.kind for i in items if isinstance(i, RejectedRow)] == ["empty_line"] * 100_000
        assert sum(i.num_rows for i in items if isinstance(i, pa.RecordBatch)) == 10
        assert seconds < times * short + 1, (filler, seconds, short)


def test_init_keeps_the_rows_of_a_truncated_gzip_and_counts_corrupt_file(small_csv):
    directory, data = small_csv
    path = os.path.join(directory, "cut.csv.gz")
    compressed = gzip.compress(data * 20, mtime=0)
    with open(path, "wb") as f:
        f.write(compressed[:len(compressed) // 2])
    drafted = init.init_dataset(path, os.path.join(directory, "ds"), label="label")
    assert 0 < drafted.rows < 6000 and drafted.rejected == 1


def test_a_file_that_is_not_gzip_at_all_is_one_line(tmp_path, run_dir):
    path = tmp_path / "plain.csv.gz"
    path.write_bytes(b"year,month\n2013,1\n")
    assert _one_line(_validate(run_dir, str(path), "not_gzip")) == (
        f"error: {path} cannot be decompressed: BadGzipFile: Not a gzipped file (b'ye')")


# Fuzz: random bytes and mutations of real files, to the decoder and to init's reading.

@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated(), block_bytes=st.sampled_from([64, 1024, 1 << 20]),
       max_line_bytes=st.sampled_from([512, None]))
def test_fuzz_every_line_of_a_mutated_file_is_a_row_or_a_rejection(case, block_bytes,
                                                                   max_line_bytes):
    name, data = case
    dataset = datasets.get_dataset(name)
    decoder = csv_decoder.CsvDecoder(dataset.csv_decoder()._columns, dataset.csv_format,
                                     block_bytes=block_bytes, max_line_bytes=max_line_bytes)
    try:
        items = list(decoder.decode(io.BytesIO(data), "f.csv"))
    except csv_decoder.HeaderMismatchError as error:
        assert dataset.csv_format.has_header and "\n" not in str(error)
        return
    rows = sum(i.num_rows for i in items if isinstance(i, pa.RecordBatch))
    rejected = [i for i in items if isinstance(i, RejectedRow)]
    assert rows + len(rejected) == data_lines(data, dataset.csv_format.has_header)
    assert len({r.line for r in rejected}) == len(rejected)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=mutated())
def test_fuzz_init_reads_any_file_or_says_why_in_one_line(tmp_path_factory, case):
    _, data = case
    path = str(tmp_path_factory.mktemp("fuzz") / "input.csv")
    with open(path, "wb") as f:
        f.write(data)
    try:
        # What init reads, as it reads it: the dialect, then every row decoded.
        csv_format, names, _ = init._dialect(path, None, None, None, None)
        inferred = infer_schema.infer([path], csv_format, names, column_markers=True)
    except UserError as error:
        assert "\n" not in str(error)
        return
    assert inferred.typed.num_rows + inferred.rejected == data_lines(data, csv_format.has_header)
    assert dialect.Detected(csv_format, names).describe()
