"""``serve --log_dir``: answered instances logged as CSV, stopped by SIGTERM
without losing any, and ``validate`` checking the log against training; what
the log loses when it is full or killed (and says so), the recovery of a
killed server's shards, and values that read back exactly as they were sent."""

import csv
import errno
import glob
import http.client
import inspect
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import layout
from pipelines.datasets import get_dataset
from pipelines.decode import csv_decoder
from pipelines.decode.columns import RejectedRow
from pipelines.decode.request_logs import (
    LOG_COLUMNS,
    LOG_FORMAT,
    PREDICTION_COLUMN,
    is_request_log,
    log_decoder,
    logged_schema,
)
from pipelines.model import request_log
from pipelines.model.request_log import RequestLog
from tests.conftest import PROJECT_ROOT, raw_rows, run_cli
from tests.test_rest import _instances
from transforms import flights

DELAY_SHIFT_MINUTES = 90
BATCH = 100


def _start(model_dir: str, log_dir: str) -> tuple[subprocess.Popen, tuple[str, int]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines", "serve", "--model", model_dir, "--port", "0",
         "--log_dir", log_dir, "--log_sample", "1.0"],
        cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stderr:
        lines.append(line)
        match = re.search(r"at http://([\d.]+):(\d+)/v1/models/flights", line)
        if match:
            return process, (match.group(1), int(match.group(2)))
    pytest.fail("the server did not start:\n" + "".join(lines))


def _serve_and_log(model_dir: str, log_dir: str, instances: list[dict],
                   killed: bool = False) -> list[float]:
    """Sends the instances in batches, stops the server with SIGTERM (or, when
    ``killed``, SIGKILL once the log's fsync interval has passed); returns the
    predictions."""
    process, address = _start(model_dir, log_dir)
    predictions = []
    try:
        for start in range(0, len(instances), BATCH):
            connection = http.client.HTTPConnection(*address, timeout=60)
            connection.request("POST", "/v1/models/flights:predict", body=json.dumps(
                {"instances": instances[start:start + BATCH]}))
            response = connection.getresponse()
            assert response.status == 200
            predictions += json.loads(response.read())["predictions"]
            connection.close()
    finally:
        if killed:
            time.sleep(request_log.SYNC_SECONDS + 0.5)
        process.send_signal(signal.SIGKILL if killed else signal.SIGTERM)
        assert process.wait(timeout=60) == (-signal.SIGKILL if killed else 0)
    return predictions


def _logged(log_dir: str) -> tuple[list[str], list[dict]]:
    header, rows = None, []
    for path in sorted(glob.glob(os.path.join(log_dir, "*.csv"))):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames
            rows += list(reader)
    assert not glob.glob(os.path.join(log_dir, "*.partial")), "a shard was left incomplete"
    return header, rows


def _as_sent(row: dict) -> dict:
    """A logged row's features (the model's and the key columns) back as a
    JSON client sent them."""
    sent = {}
    for name, text in row.items():
        if text == "" or name in LOG_COLUMNS:
            continue
        if name in ("carrier", "origin", "dest", "tailnum"):
            sent[name] = text
        elif re.fullmatch(r"-?\d+", text):
            sent[name] = int(text)
        else:
            sent[name] = float(text)
    return sent


def _validate(run_dir: str, log_dir: str, span: str, *flags: str):
    return run_cli("validate", "--run_dir", run_dir, "--serving_input",
                   os.path.join(log_dir, "*.csv"), "--span", span, "--fail_on_anomalies",
                   *flags)


@pytest.mark.slow  # a full pipeline run and a trained model
def test_logged_requests_are_what_was_sent_and_validate_as_serving_data(
        tmp_path, trained_model, flights_run):
    raw, _ = raw_rows(flights_run.output_dir, "eval", 1000)
    # With each row's flight number too: a key column the model does not take,
    # logged so that the row joins the pipeline's own by its key.
    flight_numbers = raw.column("flight").to_pylist()
    instances = [{**row, "flight": flight_numbers[i][0]}
                 for i, row in enumerate(_instances(raw))]
    log_dir = str(tmp_path / "log")
    predictions = _serve_and_log(trained_model.serving_dir, log_dir, instances)

    header, logged = _logged(log_dir)
    # The model's features in the schema's order, then the key columns it does not take.
    model_features = [f.name for f in get_dataset("flights").schema().feature
                      if f.name in flights.SERVING_INPUTS]
    assert header == [*model_features, "flight", *LOG_COLUMNS]
    assert len(logged) == len(instances)  # every row, none lost at SIGTERM
    # One server thread answers a connection's requests in order: the log
    # holds them in the order sent.
    assert [_as_sent(row) for row in logged] == instances
    assert [float(row[PREDICTION_COLUMN]) for row in logged] == predictions

    # validate writes into the run directory: a copy keeps the shared run intact.
    run_dir = str(tmp_path / "run")
    shutil.copytree(flights_run.output_dir, run_dir)
    result = _validate(run_dir, log_dir, "logged")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "a request log of 20 features" in result.stdout  # 19 inputs and flight
    assert f"span logged: {len(instances):,} rows, 0 rejected, no anomalies" in result.stdout

    shifted_dir = str(tmp_path / "shifted")
    # Without the flight numbers this time, as a client that does not know them
    # sends: logged empty, and read back as missing, not rejected.
    unkeyed = [{k: v for k, v in row.items() if k != "flight"} for row in instances]
    shifted = [{**row, "dep_delay": row["dep_delay"] + DELAY_SHIFT_MINUTES}
               if "dep_delay" in row else row for row in unkeyed]
    # Killed: its shard is completed by the command, and validate reads every row.
    _serve_and_log(trained_model.serving_dir, shifted_dir, shifted, killed=True)
    assert glob.glob(os.path.join(shifted_dir, "*.csv")) == []
    recovered = run_cli("recover-log", "--log_dir", shifted_dir)
    assert recovered.stdout.startswith("completed 1 shard of a stopped server in "
                                       f"{shifted_dir}: {len(shifted):,} rows"), recovered
    previous = layout.stats_file(layout.validation_dir(run_dir, "logged"), "serving")
    result = _validate(run_dir, shifted_dir, "shifted", "--previous_stats", previous)
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    assert f"span shifted: {len(shifted):,} rows, 0 rejected" in result.stdout
    anomalous = re.search(r"anomalies in \d+ features?\n((?:  .*\n)+)", result.stdout)
    assert anomalous, result.stdout
    named = {line.split(":")[0].strip() for line in anomalous.group(1).splitlines()}
    assert named == {"dep_delay"}, result.stdout
    assert "between training and serving" in result.stdout  # skew
    assert re.search(r"drift: .*over: dep_delay", result.stdout)  # against the first span


# What the log's own tests write: a few features of each kind, one name needing quotes.
NAME, NOTE, COUNT, SCORE = "name", 'note, "quoted"', "count", "score"
LOGGED = [NAME, NOTE, COUNT, SCORE]
# Text with no lone surrogate (it has no UTF-8 and is dropped) and no carriage
# return: a line break in a value is quoted (RFC 4180) and reads back, but as
# "\n" whichever way it was written (the decoder reads every line end as one).
LOGGABLE_TEXT = st.text(st.characters(blacklist_categories=("Cs",),
                                      blacklist_characters="\r"), max_size=12)


def _schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    for name, kind, required in ((NAME, schema_pb2.BYTES, False),
                                 (NOTE, schema_pb2.BYTES, False),
                                 (COUNT, schema_pb2.INT, True),
                                 (SCORE, schema_pb2.FLOAT, False)):
        feature = schema.feature.add(name=name, type=kind)
        if required:
            feature.presence.min_fraction = 1.0
    return schema


def _rows(start: int, count: int, name=lambda i: f'"{i}", a; b\tc é ✓') -> list[dict]:
    return [{NAME: name(i), NOTE: None if i % 3 else "", COUNT: i, SCORE: i / 4}
            for i in range(start, start + count)]


def _read_back(log_dir: str) -> tuple[list[dict], list]:
    """Every row of ``LOG/*.csv`` as ``validate`` decodes it (its decoder of
    request logs), by feature, and the rejected rows."""
    rows, rejected = [], []
    for path in sorted(glob.glob(os.path.join(log_dir, "*.csv"))):
        with open(path, "rb") as stream:
            header = csv_decoder.header_names(stream, LOG_FORMAT)
        assert is_request_log(header)
        decoder = log_decoder(logged_schema(_schema(), header)).for_serving()
        with open(path, "rb") as stream:
            for item in decoder.decode(stream, path):
                if isinstance(item, RejectedRow):
                    rejected.append(item)
                    continue
                columns = {n: item.column(n).to_pylist() for n in LOGGED}
                rows += [{n: None if columns[n][i] is None else columns[n][i][0]
                          for n in LOGGED} for i in range(item.num_rows)]
    return rows, rejected


def _as_decoded(row: dict) -> dict:
    """A sent row as the decoder gives it back: text as UTF-8 bytes, an empty
    text missing (as the pipeline reads an empty field), floats as float32."""
    return {NAME: row[NAME].encode() if row[NAME] else None,
            NOTE: row[NOTE].encode() if row[NOTE] else None,
            COUNT: row[COUNT], SCORE: float(np.float32(row[SCORE]))}


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("bound", ["bytes", "rows"])
def test_a_full_queue_drops_and_counts_whole_batches_by_bytes_and_by_rows(tmp_path, bound):
    written, dropped, release = [], [], threading.Event()

    def on_written(rows: int) -> None:
        written.append(rows)
        release.wait(10)  # holds the writer: what is offered meanwhile stays queued

    limits = {"queue_bytes": 10_000} if bound == "bytes" else {"queue_rows": 5}
    log = RequestLog(str(tmp_path), LOGGED, 1.0, on_written=on_written,
                     on_dropped=dropped.append, **limits)
    log.offer(_rows(0, 1), [0.5])
    _wait_for(lambda: written == [1])
    if bound == "bytes":
        wide = lambda i: f"{i}" * 4000  # noqa: E731  about 4 KB a row
        log.offer(_rows(1, 2, wide), [0.5] * 2)  # 8 KB of 10 KB: queued
        log.offer(_rows(3, 2, wide), [0.5] * 2)  # 16 KB: dropped
        log.offer(_rows(5, 1, lambda i: "x" * 20_000), [0.5])  # more than the bound alone
        assert dropped == [2, 1]
    else:
        log.offer(_rows(1, 2), [0.5] * 2)  # 2 of 5 rows: queued
        log.offer(_rows(3, 4), [0.5] * 4)  # 6: dropped
        log.offer(_rows(7, 3), [0.5] * 3)  # 5: queued
        assert dropped == [4]
    release.set()
    log.close()
    kept = [0, 1, 2] if bound == "bytes" else [0, 1, 2, 7, 8, 9]
    rows, rejected = _read_back(str(tmp_path))
    assert not rejected
    assert [row[COUNT] for row in rows] == kept
    assert sum(written) == len(kept)


# A process that logs through RequestLog as a server does, then is killed; its
# rows are ``_rows``' (this module's imports are too slow for it).
_KILLED_WRITER = """
import sys, time
from pipelines.model import request_log
NAME, NOTE, COUNT, SCORE = sys.argv[2:]
{rows}
log = request_log.RequestLog(sys.argv[1], sys.argv[2:], 1.0)
for start in range(0, 6_000, 2_000):
    log.offer(_rows(start, 2_000), [0.5] * 2_000)
print(6_000, flush=True)  # answered
time.sleep(request_log.SYNC_SECONDS + 0.5)
log.offer(_rows(6_000, 20_000), [0.5] * 20_000)
print(26_000, flush=True)  # answered, and killed right away
time.sleep(60)
"""


def test_sigkill_loses_only_the_last_interval_and_recovery_completes_the_shard(tmp_path, capsys):
    log_dir = str(tmp_path / "log")
    script = _KILLED_WRITER.format(rows=inspect.getsource(_rows))
    process = subprocess.Popen([sys.executable, "-c", script, log_dir, *LOGGED],
                               cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        answered_before = int(process.stdout.readline())
        answered = int(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert answered == 26_000
    (partial,) = glob.glob(os.path.join(log_dir, "*"))
    assert partial.endswith(".csv.partial")  # what validate 'LOG/*.csv' does not read
    copy = str(tmp_path / "copy")
    shutil.copytree(log_dir, copy)

    # The next server on the directory completes the shard before it logs, and says so.
    log = RequestLog(log_dir, LOGGED, 1.0)
    log.close()
    recovered = log.recovered
    assert recovered.completed == [partial.removesuffix(".partial")]
    assert answered_before <= recovered.rows <= answered
    assert capsys.readouterr().err == f"request log: {recovered.describe()}\n"
    rows, rejected = _read_back(log_dir)
    assert not rejected
    assert rows == [_as_decoded(row) for row in _rows(0, recovered.rows)]

    # So does the command, alike.
    result = run_cli("recover-log", "--log_dir", copy)
    assert result.returncode == 0, result.stderr
    cut = ", 1 cut last line dropped" if recovered.cut_lines else ""
    assert result.stdout == (f"completed 1 shard of a stopped server in {copy}: "
                             f"{recovered.rows:,} rows{cut}\n")
    assert _read_back(copy) == (rows, [])


def test_a_cut_last_line_is_dropped_not_rejected_and_an_empty_shard_removed(tmp_path):
    header = _csv_line([*LOGGED, *LOG_COLUMNS])
    whole = [_csv_line([f'a,"{i}"', "", str(i), "0.5", "0.25", "2026-12-02T10:00:00.000+00:00"])
             for i in range(3)]
    # Cut inside a quoted value holding a delimiter.
    (tmp_path / "requests-20261202T100000-7-00000.csv.partial").write_bytes(
        header + b"".join(whole) + b'"a,"')
    (tmp_path / "requests-20261202T100000-7-00001.csv.partial").write_bytes(header[:-3])
    result = run_cli("recover-log", "--log_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"completed 1 shard of a stopped server in {tmp_path}: 3 rows, "
                             "1 cut last line dropped; removed 1 shard holding no whole row\n")
    assert sorted(os.listdir(tmp_path)) == ["requests-20261202T100000-7-00000.csv"]
    rows, rejected = _read_back(str(tmp_path))
    assert not rejected
    assert [row[NAME] for row in rows] == [b'a,"0"', b'a,"1"', b'a,"2"']


def test_a_live_servers_shard_is_left_as_it_is(tmp_path):
    written = []
    live = RequestLog(str(tmp_path), LOGGED, 1.0, on_written=written.append)
    live.offer(_rows(0, 10), [0.5] * 10)
    _wait_for(lambda: written == [10])
    (partial,) = glob.glob(str(tmp_path / "*.csv.partial"))
    with open(partial, "rb") as f:
        before = f.read()

    other = RequestLog(str(tmp_path), LOGGED, 1.0)  # another server on the same directory
    result = run_cli("recover-log", "--log_dir", str(tmp_path))
    other.close()
    assert other.recovered.live == [partial] and not other.recovered.completed
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"no shard of a stopped server to complete in {tmp_path}; "
                             "1 shard of a live server left as it is\n")
    with open(partial, "rb") as f:
        assert f.read() == before

    live.offer(_rows(10, 5), [0.5] * 5)
    live.close()
    rows, rejected = _read_back(str(tmp_path))
    assert not rejected
    assert [row[COUNT] for row in rows] == list(range(15))


def test_recover_log_of_a_missing_directory_is_one_line(tmp_path):
    result = run_cli("recover-log", "--log_dir", str(tmp_path / "nowhere"))
    assert (result.returncode, result.stderr) == (
        2, f"error: --log_dir {tmp_path / 'nowhere'} is not a directory\n")


@settings(max_examples=40, deadline=None)
@given(names=st.lists(LOGGABLE_TEXT, min_size=1, max_size=6), note=LOGGABLE_TEXT)
def test_text_values_read_back_as_sent(names, note):
    sent = [{NAME: name, NOTE: note, COUNT: i, SCORE: 0.1} for i, name in enumerate(names)]
    with tempfile.TemporaryDirectory() as log_dir:
        log = RequestLog(log_dir, LOGGED, 1.0)
        log.offer(sent, [0.5] * len(sent))
        log.close()
        rows, rejected = _read_back(log_dir)
    assert not rejected
    assert rows == [_as_decoded(row) for row in sent]


def test_a_row_utf8_cannot_hold_is_dropped_and_counted(tmp_path):
    dropped = []
    log = RequestLog(str(tmp_path), LOGGED, 1.0, on_dropped=dropped.append)
    sent = _rows(0, 3)
    sent[1][NAME] = "lone \ud800 surrogate"  # what a JSON "\\ud800" decodes to
    log.offer(sent, [0.5] * 3)
    log.close()
    assert dropped == [1]
    rows, rejected = _read_back(str(tmp_path))
    assert not rejected
    assert rows == [_as_decoded(sent[0]), _as_decoded(sent[2])]


def _csv_line(fields: list[str]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerow(fields)
    return text.getvalue().encode()


def test_a_full_disk_drops_and_counts_its_rows_and_leaves_no_cut_line(tmp_path, monkeypatch,
                                                                      capsys):
    written, dropped = [], []
    log = RequestLog(str(tmp_path), LOGGED, 1.0, on_written=written.append,
                     on_dropped=dropped.append)
    log.offer(_rows(0, 2), [0.5] * 2)
    _wait_for(lambda: written == [2])
    real_write = request_log._write_all

    def half_then_full(descriptor, data):  # as a disk that fills mid-batch
        real_write(descriptor, data[:len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(request_log, "_write_all", half_then_full)
    log.offer(_rows(2, 3), [0.5] * 3)
    _wait_for(lambda: dropped == [3])
    monkeypatch.setattr(request_log, "_write_all", real_write)
    log.offer(_rows(5, 1), [0.5])
    log.close()
    assert written == [2, 1]
    assert capsys.readouterr().err == (
        f"request log: cannot write to {tmp_path}: [Errno 28] No space left on device; "
        "dropping rows (counted) until it can\n")
    rows, rejected = _read_back(str(tmp_path))
    assert not rejected
    assert [row[COUNT] for row in rows] == [0, 1, 5]


def test_a_filesystem_without_hard_links_still_gets_its_shards(tmp_path, monkeypatch):
    def no_links(source, destination):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    log = RequestLog(str(tmp_path), LOGGED, 1.0)
    log.offer(_rows(0, 4), [0.5] * 4)
    log.close()
    assert [name for name in os.listdir(tmp_path) if not name.endswith(".csv")] == []
    assert _read_back(str(tmp_path)) == ([_as_decoded(row) for row in _rows(0, 4)], [])


def test_shards_rotate_after_the_batch_that_fills_them(tmp_path):
    log = RequestLog(str(tmp_path), LOGGED, 1.0, rows_per_shard=3)
    for start in range(0, 10, 2):
        log.offer(_rows(start, 2), [0.5] * 2)
    log.close()
    shards = sorted(os.listdir(tmp_path))
    assert [re.sub(r".*-(\d{5}\.csv)$", r"\1", name) for name in shards] == [
        "00000.csv", "00001.csv", "00002.csv"]
    lines = [(tmp_path / name).read_bytes().count(b"\n") - 1 for name in shards]
    assert lines == [4, 4, 2]
    assert _read_back(str(tmp_path)) == ([_as_decoded(row) for row in _rows(0, 10)], [])
