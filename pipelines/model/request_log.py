"""The request log of ``serve --log_dir DIR [--log_sample F]``: a sample of the
instances answered with a 200, as CSV that ``validate`` reads back.

Each logged row holds the instance's serving features as the model received
them, under the features' own names (the CSV's, whatever the signature's
inputs are called; typed as in the schema; a missing value empty), then the
dataset's key columns the model does not take (flights' ``flight``: what the
request carried, checked, empty when it left one out), so that every logged
row carries its key and joins the pipeline's own row by it, then
``logged_prediction`` (the model's output: a number, or a JSON list for class
probabilities) and ``logged_at`` (UTC, ISO 8601, when it was answered). These
two last columns are how ``validate`` recognises a request log and what it
leaves out (``pipelines.decode.request_logs``, which reads logs back). Rows are
written by the ``csv`` module in the log's dialect (``LOG_FORMAT``: quotes and
delimiters inside a value are quoted, so they read back exactly); an empty
text value is written empty, which reads back as a missing value: what the
model received (a missing text input is ``""``) and what the pipeline makes of
an empty field. A row that cannot be written as UTF-8 (a lone surrogate) is
dropped and counted.

What a log can lose, and what it says it lost:

- A request formats its rows as CSV bytes and puts them on a queue bounded by
  rows and by bytes (``QUEUE_ROWS``, ``QUEUE_BYTES``); it never waits. Rows
  that do not fit are dropped and counted (``on_dropped``).
- One thread writes each batch to the current shard as soon as it takes it
  off the queue (straight to the operating system, no buffer of its own) and
  fsyncs the shard every ``SYNC_SECONDS``. So a SIGKILL loses only rows still
  queued, and a crash of the machine at most the last ``SYNC_SECONDS`` of rows
  written, as long as the disk keeps up with the requests.
- Shards are ``requests-<start>-<pid>-NNNNN.csv``, each with its header,
  rotated after the batch that reaches ``rows_per_shard`` rows. A shard is
  written as ``*.csv.partial`` and renamed once complete, so a reader of
  ``DIR/*.csv`` never sees half a shard; ``close`` (on SIGTERM or SIGINT)
  writes what is queued and completes the last shard.
- The writing server holds an advisory lock (``fcntl.flock``) on each shard it
  writes. A ``*.csv.partial`` whose lock can be taken was left by a server that
  died; ``recover`` completes it (kept up to its last whole CSV record and
  renamed), and a ``RequestLog`` opening a directory recovers it first, so the
  next ``serve`` on a log directory completes what the last one left. A shard
  a live server is writing is never touched.
"""

import contextlib
import csv
import dataclasses
import datetime
import fcntl
import glob
import io
import json
import os
import queue
import random
import sys
import threading
import time

import numpy as np

from pipelines.decode.request_logs import LOG_COLUMNS

__all__ = ["QUEUE_BYTES", "QUEUE_ROWS", "ROWS_PER_SHARD", "SYNC_SECONDS", "Recovery",
           "RequestLog", "recover"]

# How often the writer fsyncs: what a crash of the machine may lose.
SYNC_SECONDS = 1.0
# The queue's bounds: what a burst of requests may hold in memory before rows
# are dropped (counted). Rows wait as CSV bytes, so the bytes are the memory.
QUEUE_BYTES = 64 << 20
QUEUE_ROWS = 1_000_000
ROWS_PER_SHARD = 100_000
PARTIAL = ".partial"

_STOP = object()
# Bytes read at a time when recovering a shard.
_SCAN_BYTES = 4 << 20
_QUOTE, _NEWLINE = ord('"'), ord("\n")


class RequestLog:
    """A sampled, asynchronous CSV log of answered instances.

    Opening a directory first completes the shards that dead servers left in
    it (``recover``); ``recovered`` says what was done.

    Args:
      directory: where the shards go (created).
      features: the logged features, in column order, named as the dataset's
        CSV names them (``RequestChecks.names``: the model's features, then
        the key columns it does not take).
      sample: the fraction of instances logged, in (0, 1].
      on_written, on_dropped: called with a number of rows (the metrics).
      queue_rows, queue_bytes: the most rows, and CSV bytes, waiting to be written.
      rows_per_shard: rows per CSV file (a shard ends with the batch that
        reaches it).
      sync_seconds: the longest a written row waits for its fsync.
    """

    def __init__(self, directory: str, features: list[str], sample: float,
                 on_written=lambda n: None, on_dropped=lambda n: None,
                 queue_rows: int = QUEUE_ROWS, queue_bytes: int = QUEUE_BYTES,
                 rows_per_shard: int = ROWS_PER_SHARD, sync_seconds: float = SYNC_SECONDS):
        os.makedirs(directory, exist_ok=True)
        self.recovered = recover(directory)
        if self.recovered.completed or self.recovered.removed:
            print(f"request log: {self.recovered.describe()}", file=sys.stderr, flush=True)
        self._directory = directory
        self._features = list(features)
        self._header = _csv_bytes([[*self._features, *LOG_COLUMNS]])
        self._sample = sample
        self._random = random.Random()
        self._on_written, self._on_dropped = on_written, on_dropped
        self._rows_per_shard = rows_per_shard
        self._sync_seconds = sync_seconds
        # Items are (CSV bytes, rows); the bounds hold what the queue holds.
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._queue_rows, self._queue_bytes = queue_rows, queue_bytes
        self._queued_rows = self._queued_bytes = 0
        self._lock = threading.Lock()
        self._closed = False
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        self._prefix = os.path.join(directory, f"requests-{stamp}-{os.getpid()}")
        self._shard = 0
        self._thread = threading.Thread(target=self._write_all, name="request-log",
                                        daemon=True)
        self._thread.start()

    def offer(self, rows: list[dict], predictions: list) -> None:
        """Queues the sampled ones of ``rows`` (checked instances) with their
        ``predictions``; never blocks."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        if self._sample < 1.0:
            kept = [i for i in range(len(rows)) if self._random.random() < self._sample]
        else:
            kept = range(len(rows))
        lines = [[*(_text(rows[i][f]) for f in self._features), _prediction(predictions[i]),
                  now] for i in kept]
        if not lines:
            return
        data, written, unwritable = _encode(lines)
        if unwritable:
            self._on_dropped(unwritable)
        if not written:
            return
        with self._lock:
            if (self._closed or self._queued_rows + written > self._queue_rows
                    or self._queued_bytes + len(data) > self._queue_bytes):
                self._on_dropped(written)
                return
            self._queued_rows += written
            self._queued_bytes += len(data)
        self._queue.put((data, written))

    def close(self) -> None:
        """Writes what is queued, completes the last shard and stops the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _write_all(self) -> None:
        shard = None
        unsynced_since = None  # when the oldest write not yet fsynced was made
        failing = False
        while True:
            timeout = None if unsynced_since is None else max(
                0.0, unsynced_since + self._sync_seconds - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            try:
                if item is not None:
                    data, rows = item
                    with self._lock:
                        self._queued_rows -= rows
                        self._queued_bytes -= len(data)
                    try:
                        shard = shard or self._open_shard()
                        shard.write(data, rows)
                    except OSError:
                        self._on_dropped(rows)
                        raise
                    self._on_written(rows)
                    failing = False
                    if unsynced_since is None:
                        unsynced_since = time.monotonic()
                    if shard.rows >= self._rows_per_shard:
                        # Let go of it first: a shard that fails to complete stays
                        # partial, for the next server to complete.
                        full, shard, unsynced_since = shard, None, None
                        full.complete()
                if unsynced_since is not None and (
                        time.monotonic() - unsynced_since >= self._sync_seconds):
                    shard.sync()
                    unsynced_since = None
            except OSError as error:
                # A full disk, say: the batch is counted as dropped and the next
                # one tried; said once until writing works again.
                if not failing:
                    print(f"request log: cannot write to {self._directory}: {error}; "
                          "dropping rows (counted) until it can", file=sys.stderr, flush=True)
                failing, unsynced_since = True, None
        if shard is not None:
            try:
                shard.complete()
            except OSError as error:  # left *.csv.partial: the next server completes it
                print(f"request log: cannot complete {shard.path}: {error}", file=sys.stderr,
                      flush=True)

    def _open_shard(self) -> "_Shard":
        shard = _Shard.create(self._prefix, self._shard, self._header)
        self._shard = shard.number + 1
        return shard


class _Shard:
    """One CSV file, written as ``path.partial`` until complete, and locked
    (``fcntl.flock``) by its writer all the while."""

    def __init__(self, descriptor: int, path: str, number: int, size: int):
        self._descriptor = descriptor
        self.path, self.number = path, number
        self.rows, self._size = 0, size

    @classmethod
    def create(cls, prefix: str, number: int, header: bytes) -> "_Shard":
        """The first free shard of ``prefix`` from ``number`` on, its header written.

        The file is made and locked under a hidden name, then linked to its
        ``.partial`` name (which fails rather than replace a file), so nobody
        sees a partial shard its writer does not hold yet.
        """
        directory, stem = os.path.split(prefix)
        while True:
            path = f"{prefix}-{number:05d}.csv"
            hidden = os.path.join(directory, f".{stem}-{number:05d}.csv.new")
            if os.path.exists(path) or os.path.exists(path + PARTIAL):
                number += 1
                continue
            try:
                # Appending: a write undone by a truncation leaves no hole behind.
                descriptor = os.open(hidden, os.O_WRONLY | os.O_APPEND | os.O_CREAT
                                     | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                number += 1
                continue
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
                _write_all(descriptor, header)
                _publish(hidden, path + PARTIAL)
            except BaseException as error:
                os.close(descriptor)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(hidden)
                if not isinstance(error, FileExistsError):
                    raise
                number += 1
                continue
            return cls(descriptor, path, number, len(header))

    def write(self, data: bytes, rows: int) -> None:
        """Appends whole rows; a write that fails is undone, so the shard never
        holds a cut line in its middle."""
        try:
            _write_all(self._descriptor, data)
        except OSError:
            os.ftruncate(self._descriptor, self._size)
            raise
        self._size += len(data)
        self.rows += rows

    def sync(self) -> None:
        os.fsync(self._descriptor)

    def complete(self) -> None:
        """Syncs the shard, gives it its final name and releases it."""
        try:
            os.fsync(self._descriptor)
            os.rename(self.path + PARTIAL, self.path)
            _sync_directory(os.path.dirname(self.path))
        finally:
            os.close(self._descriptor)


@dataclasses.dataclass
class Recovery:
    """What ``recover`` did in a log directory.

    Attributes:
      directory: the log directory.
      completed: the shards completed (their final names).
      rows: the rows they hold.
      cut_lines: how many of them ended in a cut line, which was dropped.
      removed: the partial shards removed, which held no whole row.
      live: the partial shards of live servers, left as they are.
    """

    directory: str
    completed: list[str] = dataclasses.field(default_factory=list)
    rows: int = 0
    cut_lines: int = 0
    removed: list[str] = dataclasses.field(default_factory=list)
    live: list[str] = dataclasses.field(default_factory=list)

    def describe(self) -> str:
        """One line: what was completed, removed and left."""
        done = []
        if self.completed:
            done.append(f"completed {_count(len(self.completed), 'shard')} of a stopped server "
                        f"in {self.directory}: {_count(self.rows, 'row')}"
                        + (f", {_count(self.cut_lines, 'cut last line')} dropped"
                           if self.cut_lines else ""))
        if self.removed:
            done.append(f"removed {_count(len(self.removed), 'shard')} holding no whole row"
                        + ("" if self.completed else f" from {self.directory}"))
        if not done:
            done.append(f"no shard of a stopped server to complete in {self.directory}")
        if self.live:
            done.append(f"{_count(len(self.live), 'shard')} of a live server left as "
                        f"{'it is' if len(self.live) == 1 else 'they are'}")
        return "; ".join(done)


def recover(directory: str) -> Recovery:
    """Completes the ``*.csv.partial`` shards in ``directory`` that no live
    server holds: each is kept up to its last whole CSV record (a line break
    outside quotes) and renamed to its final name, or removed when it holds no
    whole row. A shard whose writer still holds its lock is left alone."""
    recovery = Recovery(directory)
    pattern = os.path.join(glob.escape(directory), "*.csv" + PARTIAL)
    for path in sorted(glob.glob(pattern)):
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # completed meanwhile
            continue
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                recovery.live.append(path)
                continue
            # Its writer may have completed it (renamed, then released) between
            # the open and the lock: then the path names another file, or none.
            try:
                same = os.path.samestat(os.stat(path), os.fstat(descriptor))
            except FileNotFoundError:
                same = False
            if same:
                _complete(descriptor, path, recovery)
        finally:
            os.close(descriptor)
    if recovery.completed or recovery.removed:
        _sync_directory(directory)
    return recovery


def _complete(descriptor: int, path: str, recovery: Recovery) -> None:
    end, records = _whole_records(descriptor)
    if records < 2:  # the header, at most
        os.unlink(path)
        recovery.removed.append(path)
        return
    if end < os.fstat(descriptor).st_size:
        os.ftruncate(descriptor, end)
        recovery.cut_lines += 1
    os.fsync(descriptor)
    final = path.removesuffix(PARTIAL)
    os.rename(path, final)
    recovery.completed.append(final)
    recovery.rows += records - 1


def _whole_records(descriptor: int) -> tuple[int, int]:
    """(the end of the last whole CSV record, the number of records) of a file:
    a record ends at a line break with an even number of quotes before it, so
    a line break inside a quoted value does not end one."""
    offset, odd, end, records = 0, 0, 0, 0
    while chunk := os.pread(descriptor, _SCAN_BYTES, offset):
        data = np.frombuffer(chunk, dtype=np.uint8)
        # The running count of quotes, modulo 256: its parity is all that matters.
        quotes = np.cumsum(data == _QUOTE, dtype=np.uint8)
        breaks = np.flatnonzero(data == _NEWLINE)
        ends = breaks[((quotes[breaks] + odd) & 1) == 0]
        if len(ends):
            records += len(ends)
            end = offset + int(ends[-1]) + 1
        odd = (odd + int(quotes[-1])) & 1
        offset += len(chunk)
    return end, records


def _encode(lines: list[list[str]]) -> tuple[bytes, int, int]:
    """(the CSV bytes of the lines that UTF-8 can hold, how many, how many not)."""
    try:
        return _csv_bytes(lines), len(lines), 0
    except UnicodeEncodeError:  # a lone surrogate, somewhere
        pieces = []
        for line in lines:
            try:
                pieces.append(_csv_bytes([line]))
            except UnicodeEncodeError:
                pass
        return b"".join(pieces), len(pieces), len(lines) - len(pieces)


def _csv_bytes(lines: list[list[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text).writerows(lines)
    return text.getvalue().encode("utf-8")


def _publish(hidden: str, path: str) -> None:
    """Renames ``hidden`` to ``path``, raising FileExistsError rather than
    replacing a file of that name."""
    try:
        os.link(hidden, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: a rename, checked first
        if os.path.exists(path):
            raise FileExistsError(path) from None
        os.rename(hidden, path)
        return
    os.unlink(hidden)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def _sync_directory(directory: str) -> None:
    """Makes a rename in ``directory`` survive a crash."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _text(value) -> str:
    """A value as the CSV holds it: missing empty, floats exactly (repr)."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _prediction(value) -> str:
    return json.dumps(value) if isinstance(value, list) else repr(float(value))
