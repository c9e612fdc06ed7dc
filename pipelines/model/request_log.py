"""The request log of ``serve --log_dir DIR [--log_sample F]``: a sample of the
instances answered with a 200, as CSV that ``validate`` reads back.

Each logged row holds the instance's serving features as the model received
them, under the features' own names (the CSV's, whatever the signature's
inputs are called; typed as in the schema; a missing value empty), then
``logged_prediction`` (the model's output: a number, or a JSON list for class
probabilities) and ``logged_at`` (UTC, ISO 8601, when it was answered). These
two last columns are how ``validate`` recognises a request log and what it
leaves out (``pipelines.decode.request_logs``, which reads logs back).

Rows are written off the request path: a request puts its rows on a bounded
queue and never waits; when the queue is full the rows are dropped and
counted. One thread writes them to ``requests-<start>-<pid>-NNNNN.csv``
shards, each with its header, rotated every ``rows_per_shard`` rows. A shard
is written as ``*.csv.partial`` and renamed once complete, so a reader of
``DIR/*.csv`` never sees half a shard; ``close`` (on SIGTERM or SIGINT) writes
what is queued and completes the last shard.
"""

import csv
import datetime
import json
import os
import queue
import random
import threading

from pipelines.decode.request_logs import LOG_COLUMNS

__all__ = ["RequestLog"]

_STOP = object()


class RequestLog:
    """A sampled, asynchronous CSV log of answered instances.

    Args:
      directory: where the shards go (created).
      features: the logged features, in column order, named as the dataset's
        CSV names them (``RequestChecks.names``).
      sample: the fraction of instances logged, in (0, 1].
      on_written, on_dropped: called with a number of rows (the metrics).
      queue_rows: the most rows waiting to be written.
      rows_per_shard: rows per CSV file.
    """

    def __init__(self, directory: str, features: list[str], sample: float,
                 on_written=lambda n: None, on_dropped=lambda n: None,
                 queue_rows: int = 100_000, rows_per_shard: int = 100_000):
        os.makedirs(directory, exist_ok=True)
        self._directory = directory
        self._features = list(features)
        self._sample = sample
        self._random = random.Random()
        self._on_written, self._on_dropped = on_written, on_dropped
        self._rows_per_shard = rows_per_shard
        # Items are lists of rows; the bound is in rows (``_queued``).
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._queue_rows = queue_rows
        self._queued = 0
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
        with self._lock:
            if self._closed or self._queued + len(lines) > self._queue_rows:
                self._on_dropped(len(lines))
                return
            self._queued += len(lines)
        self._queue.put(lines)

    def close(self) -> None:
        """Writes what is queued, completes the last shard and stops the writer."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def _write_all(self) -> None:
        writer = None
        while True:
            item = self._queue.get()
            if item is _STOP:
                break
            for line in item:
                if writer is None:
                    writer = _Shard(self._path(self._shard), self._features)
                writer.write(line)
                if writer.rows >= self._rows_per_shard:
                    writer.complete()
                    writer, self._shard = None, self._shard + 1
            with self._lock:
                self._queued -= len(item)
            self._on_written(len(item))
            if writer is not None and self._queue.empty():
                writer.flush()
        if writer is not None:
            writer.complete()

    def _path(self, shard: int) -> str:
        return f"{self._prefix}-{shard:05d}.csv"


class _Shard:
    """One CSV file, written as ``path.partial`` until complete."""

    def __init__(self, path: str, features: list[str]):
        self.path = path
        self.rows = 0
        self._file = open(path + ".partial", "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow([*features, *LOG_COLUMNS])

    def write(self, line: list[str]) -> None:
        self._csv.writerow(line)
        self.rows += 1

    def flush(self) -> None:
        self._file.flush()

    def complete(self) -> None:
        self._file.close()
        os.replace(self.path + ".partial", self.path)


def _text(value) -> str:
    """A value as the CSV holds it: missing empty, floats exactly (repr)."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _prediction(value) -> str:
    return json.dumps(value) if isinstance(value, list) else repr(float(value))
