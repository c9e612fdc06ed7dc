"""Input files: matching globs, opening (and decompressing) them, decoding them.

Paths may be local or remote (``gs://``): they go through Beam's file-system
layer (``FileSystems``), the one the workers use, which is the only piece of
Beam this package's decoding touches. No pipeline is built here: the ``ReadRaw``
stage (``pipelines.stages.read``) and the commands that read a sample on the
launching machine (``infer-schema``, ``suggest-thresholds``, ``check-parity``)
decode files with the same functions.
"""

import bz2
import contextlib
import dataclasses
import gzip
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.decode.columns import RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.errors import InputNotFoundError

__all__ = [
    "Decoded", "decode_files", "decoded_table", "match_files", "open_input", "total_bytes",
]

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


def total_bytes(pattern: str) -> int:
    """The size of the files matching ``pattern`` (as stored, compressed or not)."""
    return sum(m.size_in_bytes for m in FileSystems.match([pattern])[0].metadata_list)


@contextlib.contextmanager
def open_input(path: str, on_read: Callable[[int], None] | None = None
               ) -> Iterator[BinaryIO]:
    """The decompressed bytes of ``path`` (local or remote).

    ``.gz``, ``.bz2`` and ``.xz`` go through Python's own decompressors, which
    check the stream's end and checksum: Beam's reader returns a truncated gzip
    file as if it had simply ended. ``on_read`` is told how many bytes of the
    file as stored each read consumed (for progress).
    """
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if on_read is not None:
            raw = _Counting(raw, on_read)
        if path.endswith(".gz"):
            yield _Salvaging(gzip.GzipFile(fileobj=raw))
        elif path.endswith(".bz2"):
            yield _Salvaging(bz2.BZ2File(raw))
        elif path.endswith(".xz"):
            yield _Salvaging(lzma.LZMAFile(raw))
        else:
            yield raw


class _Counting:
    """A stream that reports how many bytes each read returned."""

    def __init__(self, stream: BinaryIO, on_read: Callable[[int], None]):
        self._stream = stream
        self._on_read = on_read

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._on_read(len(data))
        return data

    def readable(self) -> bool:
        return True

    def __getattr__(self, name):  # what the decompressors ask of a file object
        return getattr(self._stream, name)


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
                 limit: int | None = None, on_read: Callable[[int], None] | None = None
                 ) -> Iterator[pa.RecordBatch | RejectedRow]:
    """Decodes files in order; ``limit`` counts data lines, decoded or rejected,
    across all of them ("the first N rows of the input"); ``on_read`` as for
    ``open_input``."""
    remaining = limit
    for path in paths:
        if remaining == 0:
            return
        with open_input(path, on_read) as stream:
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


@dataclasses.dataclass(frozen=True)
class Decoded:
    """Decoded rows gathered in memory, and how many rows were rejected."""

    table: pa.Table
    rejected: int


def decoded_table(decoder: CsvDecoder, paths: list[str] | tuple[str, ...],
                  limit: int | None = None, *,
                  keep: Callable[[pa.RecordBatch], np.ndarray] | None = None,
                  max_rows: int | None = None,
                  prepare: Callable[[pa.Table], pa.Table] | None = None) -> Decoded:
    """Decodes files into one in-memory table, for commands that work on a sample.

    Args:
      decoder: the dataset's decoder.
      paths: the files, decoded in order.
      limit: decode only the first ``limit`` data lines, as ``decode_files``.
      keep: a row mask per batch (e.g. the rows of one split); others are dropped.
      max_rows: stop once this many rows are kept.
      prepare: applied to all the decoded rows before ``keep`` and ``max_rows``
        (e.g. adding the window features, which depend on every row).
    """
    if prepare is not None:
        whole = decoded_table(decoder, paths, limit)
        table = prepare(whole.table)
        if keep is not None and table.num_rows:
            batch = table.combine_chunks().to_batches()[0]
            table = pa.Table.from_batches([batch.filter(pa.array(keep(batch)))])
        if max_rows is not None:
            table = table.slice(0, max_rows)
        return Decoded(table, whole.rejected)
    batches, rows, rejected = [], 0, 0
    for item in decode_files(decoder, paths, limit):
        if isinstance(item, RejectedRow):
            rejected += 1
            continue
        if keep is not None:
            item = item.filter(pa.array(keep(item)))
        if max_rows is not None:
            item = item.slice(0, max_rows - rows)
        batches.append(item)
        rows += item.num_rows
        if rows == max_rows:
            break
    return Decoded(pa.Table.from_batches(batches, decoder.output_schema), rejected)
