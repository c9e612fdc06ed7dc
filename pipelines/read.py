"""``ReadRaw``: CSV inputs (local or ``gs://``) to typed Arrow RecordBatches.

Each named input is a glob. It is matched when the pipeline runs, not when it is
built, so a job can be constructed without reaching the files; the matched files
are spread over workers and each is decoded block by block with pyarrow
(``csv_arrow``). Rejected rows go to a JSON-lines dead-letter output with their
source, line and reason, and every row is counted.
"""

import bz2
import contextlib
import gzip
import lzma
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines import metrics, progress
from pipelines.csv_arrow import CsvDecoder, RejectedRow
from pipelines.errors import InputNotFoundError

__all__ = ["ReadRaw", "decode_files", "match_files", "open_input"]

_REJECTED = "rejected"
# What reading a damaged compressed stream raises (gzip, zlib, bz2, lzma).
_CORRUPT_STREAM = (EOFError, OSError, zlib.error, lzma.LZMAError)


def match_files(pattern: str) -> list[str]:
    """The files matching ``pattern``, sorted.

    Raises:
      InputNotFoundError: nothing matches.
    """
    matches = FileSystems.match([pattern])[0].metadata_list
    if not matches:
        raise InputNotFoundError(f"no input file matches {pattern}")
    return sorted(m.path for m in matches)


def _file_groups(pattern: str, limit: int | None) -> Iterator[tuple[str, ...]]:
    files = match_files(pattern)
    if limit is None:
        yield from ((path,) for path in files)
    else:
        yield tuple(files)  # "the first N rows" spans files in order: one reader


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """The decompressed bytes of ``path`` (local or remote).

    ``.gz``, ``.bz2`` and ``.xz`` go through Python's own decompressors, which
    check the stream's end and checksum: Beam's reader returns a truncated gzip
    file as if it had simply ended.
    """
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if path.endswith(".gz"):
            yield _Salvaging(gzip.GzipFile(fileobj=raw))
        elif path.endswith(".bz2"):
            yield _Salvaging(bz2.BZ2File(raw))
        elif path.endswith(".xz"):
            yield _Salvaging(lzma.LZMAFile(raw))
        else:
            yield raw


class _Salvaging:
    """Reads a decompressing stream in small steps, so that when it turns out to
    be damaged everything before the damage is still returned; the error comes
    with the next read."""

    _STEP = 1 << 16

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._error: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        if self._error is not None:
            raise self._error
        pieces, wanted = [], size if size >= 0 else float("inf")
        while wanted > 0:
            try:
                piece = self._stream.read(int(min(self._STEP, wanted)))
            except _CORRUPT_STREAM as error:
                self._error = error
                break
            if not piece:
                break
            pieces.append(piece)
            wanted -= len(piece)
        if self._error is not None and not pieces:
            raise self._error
        return b"".join(pieces)


def decode_files(decoder: CsvDecoder, paths: list[str] | tuple[str, ...],
                 limit: int | None = None) -> Iterator[pa.RecordBatch | RejectedRow]:
    """Decodes files in order; ``limit`` counts data lines, decoded or rejected,
    across all of them ("the first N rows of the input")."""
    remaining = limit
    for path in paths:
        if remaining == 0:
            return
        with open_input(path) as stream:
            items = decoder.decode(stream, path, remaining)
            while True:
                try:
                    item = next(items)
                except StopIteration:
                    break
                except _CORRUPT_STREAM as error:
                    # A truncated or damaged compressed file: what could be read is
                    # kept; the unreadable rest is one rejected "row".
                    yield RejectedRow(path, None, "corrupt_file",
                                      f"the rest of the file is unreadable: "
                                      f"{type(error).__name__}: {error}", "")
                    break
                if remaining is not None:
                    remaining -= 1 if isinstance(item, RejectedRow) else item.num_rows
                yield item


class _DecodeFiles(beam.DoFn):
    """Decodes a group of files in order, stopping after ``limit`` rows in all.

    An uncounted decoder (a second pass over the same files) neither counts
    rows nor outputs the rejected ones again.
    """

    def __init__(self, decoder: CsvDecoder, limit: int | None, counted: bool = True):
        self._decoder = decoder
        self._limit = limit
        self._counted = counted

    def process(self, paths: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
        for item in decode_files(self._decoder, paths, self._limit):
            if isinstance(item, RejectedRow):
                if self._counted:
                    metrics.count("read", 1)
                    metrics.count_rejected(item.kind)
                    yield beam.pvalue.TaggedOutput(_REJECTED, item.to_json())
            else:
                if self._counted:
                    metrics.count("read", item.num_rows)
                    progress.advance("read", item.num_rows)
                yield item


class ReadRaw(beam.PTransform):
    """Reads named CSV globs (and BigQuery); outputs a dict of RecordBatch
    PCollections by name.

    ``bigquery``, when given, is a transform that yields its own named outputs
    (``pipelines.bigquery.ReadBigQuery``). The dead-letter rows of all inputs are
    written as JSON lines under ``rejected_prefix`` and also returned under the
    key ``"rejected"``. Without ``rejected_prefix`` the read is a second,
    uncounted pass over CSV inputs already read and counted once.
    """

    def __init__(self, inputs: dict[str, str], decoder: CsvDecoder,
                 rejected_prefix: str | None, limit: int | None = None,
                 bigquery: beam.PTransform | None = None):
        super().__init__()
        self._inputs = inputs
        self._decoder = decoder
        self._rejected_prefix = rejected_prefix
        self._limit = limit
        self._bigquery = bigquery

    def expand(self, pbegin):
        counted = self._rejected_prefix is not None
        outputs, rejected = {}, []
        if self._bigquery is not None:
            outputs = dict(pbegin | "BigQuery" >> self._bigquery)
            rejected.append(outputs.pop(_REJECTED))
        for name, pattern in self._inputs.items():
            label = name.capitalize()
            decoded = (
                pbegin
                | f"Glob{label}" >> beam.Create([pattern])
                | f"Match{label}" >> beam.FlatMap(_file_groups, self._limit)
                | f"Distribute{label}" >> beam.Reshuffle()
                | f"Decode{label}" >> beam.ParDo(
                    _DecodeFiles(self._decoder, self._limit, counted)
                ).with_outputs(_REJECTED, main="batches"))
            outputs[name] = decoded.batches
            rejected.append(decoded[_REJECTED])
        if counted:
            outputs[_REJECTED] = rejected | "FlattenRejected" >> beam.Flatten()
            _ = outputs[_REJECTED] | "WriteRejected" >> beam.io.WriteToText(
                self._rejected_prefix, file_name_suffix=".jsonl")
        return outputs
